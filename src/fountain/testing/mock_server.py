"""A loopback mock of three model APIs, for tests and the throughput benchmark.

It speaks just enough of each wire protocol for the real clients (fountain's adapters and the
official SDKs pointed at it through their base-URL option) to work unchanged:

- OpenAI chat completions: ``POST /v1/chat/completions`` (also ``/chat/completions``)
- Anthropic messages: ``POST /v1/messages``
- Gemini generateContent: ``POST /v1beta/models/{model}:generateContent`` (also ``/v1/...``)

Every answer is a conversation JSON derived deterministically from the request (from the JSON
schema the request carries when it has one), so an engine run against this server produces valid
data. Latency, jitter and faults (429 with ``Retry-After``, 500, timeouts, malformed JSON, quota,
401, 404, 400) are configurable, as rates or as a script of faults for the next requests.

Three ways to use it::

    python -m fountain.testing.mock_server --port 8011 --latency-ms 100 --error-rate 0.2
    handle = start_in_thread(latency_ms=5); ...; handle.stop()     # programmatic
    def test_x(mock_server): mock_server.configure(faults=["429"])  # pytest fixture (conftest)

While running it also answers ``GET /__mock__/stats``, ``POST /__mock__/configure`` (a JSON
object of options) and ``POST /__mock__/reset``, so a benchmark in another process can drive it.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import signal
import socket
import threading
import time
from typing import Any

from aiohttp import web

from fountain import aio, fastjson
from fountain.testing.mock_apis import _ANTHROPIC, _GEMINI, _OPENAI, _Api, _error, _format_refusal
from fountain.testing.mock_judge import judge_envelope, judge_reply
from fountain.testing.mock_state import FAULTS, MockOptions, MockState, RecordedRequest, _sleep_until

_AUTH_HEADERS = frozenset({"authorization", "x-api-key", "x-goog-api-key", "api-key"})


class MockServer:
    """The aiohttp application around a :class:`MockState`."""

    def __init__(self, state: MockState):
        self.state = state
        self.stopping: asyncio.Event | None = None
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        for prefix in ("/v1", ""):
            self.app.router.add_post(prefix + "/chat/completions", self._handler(_OPENAI))
        self.app.router.add_post("/v1/messages", self._handler(_ANTHROPIC))
        for version in ("v1beta", "v1", "v1alpha"):
            self.app.router.add_post(f"/{version}/models/{{model}}:generateContent", self._handler(_GEMINI))
        from fountain.testing.batch_mock import BatchRoutes

        self.batch = BatchRoutes(self)  # the three batch APIs (state in self.state.batch)
        self.app.router.add_get("/__mock__/stats", self._stats)
        self.app.router.add_post("/__mock__/configure", self._configure)
        self.app.router.add_post("/__mock__/reset", self._reset)

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.state.stats())

    async def _configure(self, request: web.Request) -> web.Response:
        try:
            self.state.configure(**(await request.json()))
        except (TypeError, ValueError) as error:
            return web.json_response({"error": str(error)}, status=400)
        return web.json_response({"ok": True})

    async def _reset(self, request: web.Request) -> web.Response:
        self.state.reset()
        return web.json_response({"ok": True})

    def _handler(self, api: _Api):
        async def handle(request: web.Request) -> web.Response:
            record: list[RecordedRequest] = []
            response = await self._serve(api, request, record)
            if record:
                record[0].status = response.status
            self.state.statuses[response.status] += 1
            return response

        return handle

    async def _serve(self, api: _Api, request: web.Request, record_out: list[RecordedRequest]) -> web.Response:
        state = self.state
        opts = state.options
        loop = asyncio.get_running_loop()
        # The configured latency runs from the moment this handler starts: the answer is built
        # while it runs, so the mock's own CPU per request does not add to what a client sees.
        arrived = loop.time()
        raw = await request.read()
        state.received += 1
        if state.first_received_at is None:
            state.first_received_at = time.time()
        request_hash = hashlib.blake2b(request.path.encode() + b"\0" + raw, digest_size=16).hexdigest()
        try:
            body = fastjson.loads(raw) if raw else {}
        except ValueError:
            return api.error(400, "400", "the request body is not valid JSON")
        if opts.record:
            record = RecordedRequest(
                request.method,
                request.path,
                {k: v for k, v in request.headers.items() if k.lower() not in _AUTH_HEADERS},
                {k: v for k, v in request.query.items() if k != "key"},
                body,
                request_hash,
                api.name,
                has_key=bool(api.key(request)),
                received_at=time.time(),
            )
            state.requests.append(record)
            record_out.append(record)
        model = api.model(request, body)
        raw_answer = state.next_raw()
        if raw_answer is not None:
            status, headers, payload = raw_answer
            return web.Response(status=status, headers=headers, body=payload)

        if opts.api_key is not None and api.key(request) != opts.api_key:
            if api is _GEMINI:  # the real Gemini API answers a bad key with 400 API_KEY_INVALID
                return _error(
                    400,
                    {
                        "error": {
                            "code": 400,
                            "status": "INVALID_ARGUMENT",
                            "message": "API key not valid. Please pass a valid API key.",
                            "details": [
                                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
                            ],
                        }
                    },
                )
            return api.error(401, "401", "Incorrect API key provided.")
        if opts.models is not None and model not in opts.models:
            return api.error(404, "404", f"The model `{model}` does not exist or you do not have access to it.")
        if (
            api is _OPENAI
            and opts.reject_json_schema
            and (body.get("response_format") or {}).get("type") == "json_schema"
        ):
            return api.error(400, "400", "response_format type 'json_schema' is not supported by this server")
        if api is _OPENAI and opts.format_refusals:
            refusal = _format_refusal(body.get("response_format"), opts.format_refusals)
            if refusal is not None:
                return refusal

        fault = state.next_fault()
        delay = state.delay()
        if fault == "timeout":
            await self._hang(opts.timeout_s)
            delay = 0.0
        deadline = arrived + delay
        if fault is not None and fault != "timeout":
            await _sleep_until(deadline)
            return self._fault(api, fault, model)
        # A "timeout" answers normally after its hang, to a client that is usually gone by then.
        verdict = judge_reply(body, opts, api.name)  # fountain's judge (mock_judge), in the API's shape
        if verdict is not None:
            envelope = judge_envelope(api.name, body, verdict, model, random.Random(request_hash), len(raw))
            answer = fastjson.dumps_bytes(envelope)
        else:
            answer = fastjson.dumps_bytes(api.answer(body, model, random.Random(request_hash), len(raw)))
        await _sleep_until(deadline)
        transport = request.transport
        # Count an answer as completed only if the client is still there to receive it: a client
        # that gave up (timeout) or was killed will send the request again, legitimately.
        if transport is not None and not transport.is_closing():
            state.completed[request_hash] += 1
        return web.Response(body=answer, content_type="application/json")

    async def _hang(self, seconds: float) -> None:
        assert self.stopping is not None
        try:
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    def _fault(self, api: _Api, fault: str, model: str) -> web.Response:
        opts = self.state.options
        if fault == "429":
            headers = {"Retry-After": opts.retry_after} if opts.retry_after is not None else None
            return api.error(429, "429", "Rate limit reached for requests. Please try again later.", headers)
        if fault == "quota" and api is _ANTHROPIC:  # Anthropic reports exhausted credit as a 400
            return api.error(400, "quota", "Your credit balance is too low to access the Anthropic API.")
        if fault == "quota":
            return api.error(
                429, "quota", "You exceeded your current quota, please check your plan and billing details."
            )
        if fault == "500":
            return api.error(500, "500", "The server had an error while processing your request.")
        if fault == "malformed":
            return web.Response(
                body=b'{"id": "x", "choices": [{"message": {"content": "{\\"conv', content_type="application/json"
            )
        if fault == "401":
            return api.error(401, "401", "Incorrect API key provided.")
        if fault == "404":
            return api.error(404, "404", f"The model `{model}` does not exist or you do not have access to it.")
        return api.error(400, "400", "Invalid request: injected bad request.")


# --- running it ------------------------------------------------------------------------------------


def _new_loop() -> asyncio.AbstractEventLoop:
    """The loop fountain runs on (uvloop when installed): the server's own CPU per request is
    then smaller, so its answers keep closer to the configured latency when a benchmark shares
    few cores with it."""
    factory = aio.loop_factory()
    return factory() if factory is not None else asyncio.new_event_loop()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class MockServerHandle:
    """A server running on its own event loop in a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, **options: Any):
        self.state = MockState(**options)
        self.host = host
        self.port = port or 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._server: MockServer | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fountain-mock-server", daemon=True)

    @property
    def url(self) -> str:
        """Base URL without a path: Anthropic's and Gemini's SDKs take it as is."""
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.state.requests

    @property
    def options(self) -> MockOptions:
        return self.state.options

    def configure(self, **options: Any) -> None:
        self.state.configure(**options)

    def reset(self) -> None:
        self.state.reset()

    def duplicates(self) -> dict[str, int]:
        return self.state.duplicates()

    def stats(self) -> dict[str, Any]:
        return self.state.stats()

    def start(self) -> MockServerHandle:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise RuntimeError(f"mock server failed to start: {self._error}") from self._error
        if not self._ready.is_set():
            raise RuntimeError("mock server did not start within 10 s")
        return self

    def _run(self) -> None:
        loop = _new_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._start())
        except BaseException as error:  # reported to the thread that called start()
            self._error = error
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._runner.cleanup())  # type: ignore[union-attr]
            loop.close()

    async def _start(self) -> None:
        self._server = MockServer(self.state)
        self._server.stopping = asyncio.Event()
        self._runner = web.AppRunner(self._server.app, access_log=None, shutdown_timeout=1.0, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=4096)
        await site.start()
        if not self.port:
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        """Stop the server (hanging "timeout" answers end at once) and join its thread."""
        loop = self._loop
        if loop is None or not self._thread.is_alive():
            return

        def _stop() -> None:
            if self._server is not None and self._server.stopping is not None:
                self._server.stopping.set()
            loop.stop()

        loop.call_soon_threadsafe(_stop)
        self._thread.join(10)

    def __enter__(self) -> MockServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(host: str = "127.0.0.1", port: int | None = None, **options: Any) -> MockServerHandle:
    """Start a mock server in a background thread; ``port=None`` picks a free port."""
    return MockServerHandle(host, port, **options).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument(
        "--error-rate",
        type=float,
        default=0.0,
        help="share of requests that fail, spread over 429/500/timeout/malformed",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME=RATE",
        help=f"rate of one fault ({', '.join(FAULTS)}); repeatable",
    )
    parser.add_argument("--retry-after", default="1", help="Retry-After value sent with 429")
    parser.add_argument("--timeout-s", type=float, default=30.0, help="how long a timeout fault hangs")
    parser.add_argument("--api-key", default=None, help="accept only this key (the others get 401)")
    parser.add_argument("--record", action="store_true", help="keep every request body in memory")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the mock server listens on loopback only")
    rates = {}
    for item in args.fault:
        name, _, rate = item.partition("=")
        rates[name] = float(rate or 0)
    handle = MockServerHandle(
        args.host,
        args.port,
        latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms,
        error_rate=args.error_rate,
        fault_rates=rates,
        retry_after=args.retry_after,
        timeout_s=args.timeout_s,
        api_key=args.api_key,
        record=args.record,
        seed=args.seed,
    )
    handle.start()

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # SIGTERM (what a benchmark's Popen.terminate() sends) also stops cleanly and prints the stats.
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    print(f"mock server listening on {handle.url} (OpenAI base URL {handle.openai_base_url})", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()
        print(json.dumps(handle.stats()), flush=True)


if __name__ == "__main__":
    main()
