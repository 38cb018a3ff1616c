"""`fountain studio`: the local web app (fountain.studio) over one or more spec folders."""

from __future__ import annotations

import click

from fountain.cli.app import _console, cli


@cli.command("studio")
@click.argument("folders", nargs=-1, type=click.Path(file_okay=False, exists=True, path_type=str))
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (loopback by default).")
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True, help="Port to listen on.")
def studio_command(folders: tuple[str, ...], host: str, port: int) -> None:
    """Open FOLDERS (spec folders; default: the current one) in a local web app: edit and check
    the spec, start and watch runs, review the data.

    Bound to another interface than loopback, every request needs the token printed at start
    (or set FOUNTAIN_STUDIO_TOKEN).
    """
    import os

    from fountain.errors import MissingDependencyError

    try:
        import uvicorn

        from fountain.studio.app import create_app
        from fountain.studio.security import TOKEN_ENV, is_loopback, new_token
    except ImportError as error:
        raise MissingDependencyError(
            f"fountain studio needs {error.name or 'starlette and uvicorn'}",
            hint="pip install 'fountain[studio]'",
        ) from None
    token = os.environ.get(TOKEN_ENV) or new_token()
    app = create_app(list(folders) or ["."], token=token, host=host)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    console = _console(stderr=True)
    if is_loopback(host):
        console.print(f"fountain studio on {url}  (Ctrl-C stops it)")
    else:
        console.print(f"fountain studio on {url}?token={token}  (the token is needed from any other machine)")

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):  # Ctrl-C: the open event streams (browser tabs) end first
            app.studio.closing.set()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
    Server(config).run()
