"""A loopback mock of the Hugging Face Hub endpoints that ``huggingface_hub`` calls to create a
dataset repo and commit files to it, for tests: real HTTP, the real client pointed at it with
``HF_ENDPOINT`` or ``HfApi(endpoint=...)``.

Endpoints (the minimal API): ``GET /api/whoami-v2``, ``POST /api/repos/create``,
``POST /api/validate-yaml``, ``POST /api/{type}s/{owner}/{name}/preupload/{rev}`` (every file
"regular", with the stored file's git oid so unchanged files are skipped),
``POST /api/{type}s/{owner}/{name}/commit/{rev}`` (NDJSON: header, file, deletedFile),
``PUT /api/{type}s/{owner}/{name}/settings`` (visibility),
``GET /api/{type}s/{owner}/{name}[/revision/{rev}]`` (repo info) and
``GET /{type}s/{owner}/{name}/resolve/{rev}/{path}`` (file download). Large-file (LFS/Xet)
uploads are not spoken: the mock tells the client every file is a regular one.

    hub = start_hub_mock(token="hf_test", user="alice"); ...; hub.stop()
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def git_oid(content: bytes) -> str:
    """Git's blob id of ``content`` (what the Hub reports as a regular file's oid)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Repo:
    """One repository: its files at the head commit and its commits (newest last)."""

    repo_id: str
    repo_type: str
    private: bool
    files: dict[str, bytes] = field(default_factory=dict)
    commits: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sha(self) -> str:
        return self.commits[-1]["oid"] if self.commits else "0" * 40


class HubState:
    """What the mock holds: repos, the accepted token, and the requests seen (without headers)."""

    def __init__(self, token: str, user: str):
        self.token, self.user = token, user
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.bodies: list[bytes] = []
        self.lock = threading.Lock()

    def repo(self, repo_type: str, repo_id: str) -> Repo | None:
        return self.repos.get((repo_type, repo_id))


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers={"X-Error-Message": message})


class _HubApp:
    """The mock Hub's request handlers."""

    def __init__(self, state: HubState):
        self.state = state

    def authorised(self, request: Request) -> bool:
        return request.headers.get("authorization", "") == f"Bearer {self.state.token}"

    async def record(self, request: Request) -> bytes:
        body = await request.body()
        with self.state.lock:
            self.state.requests.append((request.method, request.url.path))
            self.state.bodies.append(body)
        return body

    def base(self, request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def whoami(self, request: Request) -> Response:
        await self.record(request)
        if not self.authorised(request):
            return _error(401, "Invalid credentials in Authorization header")
        return JSONResponse(
            {"type": "user", "name": self.state.user, "orgs": [], "auth": {"accessToken": {"role": "write"}}}
        )

    async def create(self, request: Request) -> Response:
        body = json.loads(await self.record(request) or b"{}")
        if not self.authorised(request):
            return _error(401, "Invalid credentials in Authorization header")
        owner = body.get("organization") or self.state.user
        if owner != self.state.user:
            return _error(403, f"You don't have the rights to create a repo under {owner}")
        repo_type = body.get("type") or "model"
        repo_id = f"{owner}/{body['name']}"
        with self.state.lock:
            url = f"{self.base(request)}/{repo_type}s/{repo_id}"
            if self.state.repo(repo_type, repo_id) is not None:
                message = f"You already created this {repo_type} repo"
                return JSONResponse(
                    {"error": message, "url": url}, status_code=409, headers={"X-Error-Message": message}
                )
            private = bool(body.get("private")) or body.get("visibility") == "private"
            self.state.repos[(repo_type, repo_id)] = Repo(repo_id, repo_type, private)
        return JSONResponse({"url": url, "name": repo_id})

    async def validate_yaml(self, request: Request) -> Response:
        body = json.loads(await self.record(request) or b"{}")
        content = str(body.get("content", ""))
        if content.startswith("---"):
            header = content.split("---", 2)[1] if content.count("---") >= 2 else ""
            try:
                yaml.safe_load(header)
            except yaml.YAMLError as error:
                return JSONResponse({"errors": [{"message": str(error)}], "warnings": []}, status_code=400)
        return JSONResponse({"errors": [], "warnings": []})

    def find(self, request: Request) -> tuple[Repo | None, Response | None]:
        params = request.path_params
        repo = self.state.repo(params["type"][:-1], f"{params['owner']}/{params['name']}")
        if repo is None or (repo.private and not self.authorised(request)):
            return None, _error(404, "Repository not found")
        return repo, None

    async def preupload(self, request: Request) -> Response:
        body = json.loads(await self.record(request) or b"{}")
        if not self.authorised(request):
            return _error(401, "Invalid credentials in Authorization header")
        repo, missing = self.find(request)
        if repo is None:
            return missing or _error(404, "Repository not found")
        files = []
        for item in body.get("files", []):
            stored = repo.files.get(item["path"])
            files.append(
                {
                    "path": item["path"],
                    "uploadMode": "regular",
                    "shouldIgnore": False,
                    "oid": git_oid(stored) if stored is not None else None,
                }
            )
        return JSONResponse({"files": files, "commitOid": repo.sha})

    async def commit(self, request: Request) -> Response:
        body = await self.record(request)
        if not self.authorised(request):
            return _error(401, "Invalid credentials in Authorization header")
        repo, missing = self.find(request)
        if repo is None:
            return missing or _error(404, "Repository not found")
        header: dict[str, Any] = {}
        changes: dict[str, bytes | None] = {}
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item.get("key"), item.get("value") or {}
            if key == "header":
                header = value
            elif key == "file":
                if value.get("encoding") != "base64":
                    return _error(400, "file content must be base64")
                changes[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                changes[value["path"]] = None
            else:
                return _error(400, f"this mock does not accept {key!r} operations")
        if not header.get("summary"):
            return _error(400, "the commit has no summary")
        with self.state.lock:
            for path, content in changes.items():
                if content is None:
                    repo.files.pop(path, None)
                else:
                    repo.files[path] = content
            seed = f"{repo.sha}{header['summary']}{time.time_ns()}{sorted(changes)}".encode()
            oid = hashlib.sha1(seed).hexdigest()
            repo.commits.append({"oid": oid, "summary": header["summary"], "files": sorted(changes)})
        url = f"{self.base(request)}/{repo.repo_type}s/{repo.repo_id}/commit/{oid}"
        return JSONResponse({"commitUrl": url, "commitOid": oid, "success": True, "pullRequestUrl": None})

    async def settings(self, request: Request) -> Response:
        body = json.loads(await self.record(request) or b"{}")
        if not self.authorised(request):
            return _error(401, "Invalid credentials in Authorization header")
        repo, missing = self.find(request)
        if repo is None:
            return missing or _error(404, "Repository not found")
        if "private" in body or "visibility" in body:
            repo.private = bool(body.get("private")) or body.get("visibility") == "private"
        return JSONResponse({"private": repo.private})

    async def info(self, request: Request) -> Response:
        await self.record(request)
        repo, missing = self.find(request)
        if repo is None:
            return missing or _error(404, "Repository not found")
        return JSONResponse(
            {
                "id": repo.repo_id,
                "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
                "author": repo.repo_id.split("/")[0],
                "sha": repo.sha,
                "private": repo.private,
                "disabled": False,
                "gated": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "siblings": [{"rfilename": name} for name in sorted(repo.files)],
            }
        )

    async def resolve(self, request: Request) -> Response:
        await self.record(request)
        repo, missing = self.find(request)
        if repo is None:
            return missing or _error(404, "Repository not found")
        content = repo.files.get(request.path_params["path"])
        if content is None:
            return _error(404, "Entry not found")
        return Response(content, headers={"X-Repo-Commit": repo.sha, "ETag": f'"{git_oid(content)}"'})


def build_app(state: HubState) -> Starlette:
    """The ASGI app of the mock Hub."""
    app = _HubApp(state)
    repo_path = "/api/{type:str}/{owner:str}/{name:str}"
    return Starlette(
        routes=[
            Route("/api/whoami-v2", app.whoami),
            Route("/api/repos/create", app.create, methods=["POST"]),
            Route("/api/validate-yaml", app.validate_yaml, methods=["POST"]),
            Route(repo_path + "/preupload/{rev:str}", app.preupload, methods=["POST"]),
            Route(repo_path + "/commit/{rev:str}", app.commit, methods=["POST"]),
            Route(repo_path + "/settings", app.settings, methods=["PUT"]),
            Route(repo_path, app.info),
            Route(repo_path + "/revision/{rev:str}", app.info),
            Route("/{type:str}/{owner:str}/{name:str}/resolve/{rev:str}/{path:path}", app.resolve),
        ]
    )


class HubMock:
    """A running mock Hub: ``.url`` (the endpoint), ``.state`` (repos, requests), ``.stop()``."""

    def __init__(self, token: str = "hf_mock_token", user: str = "fountain-user"):
        self.state = HubState(token, user)
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self.url = ""

    def start(self) -> HubMock:
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(build_app(self.state), log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)


def start_hub_mock(token: str = "hf_mock_token", user: str = "fountain-user") -> HubMock:
    """Start a mock Hub on a free loopback port in a background thread."""
    return HubMock(token, user).start()
