"""Run an edge service with uvicorn: in the foreground (``fountain edge serve``) or in a thread
(tests, notebooks). The private data is read and embedded before the port opens."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from fountain.edge.config import EdgeConfig
from fountain.edge.votes import VoteBox
from fountain.errors import FountainError, MissingDependencyError


def _uvicorn() -> Any:
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError as error:
        raise MissingDependencyError(
            f"the edge service needs starlette and uvicorn ({error})", hint="pip install 'fountain[edge]'"
        ) from error
    return uvicorn


def build(config: EdgeConfig, *, embedder: Any = None) -> tuple[VoteBox, Any]:
    """Open the vote box (reads and embeds the private data) and its ASGI app."""
    from fountain.edge.app import create_app

    _uvicorn()
    box = VoteBox.open(config, embedder=embedder)
    app = create_app(box, token=config.token, max_body_bytes=config.max_body_bytes, public=config.public())
    return box, app


def _uvicorn_config(app: Any, config: EdgeConfig, *, log_level: str = "info") -> Any:
    uvicorn = _uvicorn()
    return uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        ssl_certfile=str(config.tls_cert) if config.tls_cert else None,
        ssl_keyfile=str(config.tls_key) if config.tls_key else None,
        log_level=log_level,
        server_header=False,
        proxy_headers=False,
    )


def serve(config: EdgeConfig, *, embedder: Any = None, on_ready: Any = None) -> None:
    """Serve in the foreground until Ctrl-C."""
    box, app = build(config, embedder=embedder)
    if on_ready is not None:
        on_ready(box)
    server = _uvicorn().Server(_uvicorn_config(app, config))
    server.run()


class EdgeThread:
    """An edge service on a free loopback port, in a background thread (``with EdgeThread(...)``).

    ``url`` is where it listens; ``stop()`` (or leaving the block) shuts it down cleanly."""

    def __init__(self, config: EdgeConfig, *, embedder: Any = None, box: VoteBox | None = None):
        from fountain.edge.app import create_app

        if box is None:
            box, app = build(config, embedder=embedder)
        else:
            app = create_app(box, token=config.token, max_body_bytes=config.max_body_bytes, public=config.public())
        self.box = box
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((config.host, 0))
        port = self._sock.getsockname()[1]
        scheme = "https" if config.tls else "http"
        self.url = f"{scheme}://{config.host}:{port}"
        self._server = _uvicorn().Server(_uvicorn_config(app, config, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def start(self) -> EdgeThread:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise FountainError("the edge service did not start", location=self.url)
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> EdgeThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
