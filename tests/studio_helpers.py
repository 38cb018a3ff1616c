"""The studio tests' server: the app served by uvicorn in a thread on a free loopback port,
over a copy of samples/marriage_counsel; and Debian's chromium for Playwright."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "marriage_counsel"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def copy_sample(root: Path, name: str = "marriage_counsel") -> Path:
    folder = root / name
    shutil.copytree(SAMPLE, folder)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServedStudio:
    """``create_app(folders)`` served on http://127.0.0.1:<port> until :meth:`stop`."""

    def __init__(self, folders: list[Path], token: str = "test-token") -> None:
        import uvicorn

        from fountain.studio.app import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(folders, token=token), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the studio did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)


def chromium_browser(playwright):
    """Debian's chromium through Playwright, or a skip saying how to get it (never a download)."""
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed (apt-get install -y chromium): the studio's browser tests are skipped")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
