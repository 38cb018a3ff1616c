"""``--provider vllm``: vLLM's offline engine in this process, for GPU hosts (``fountain[vllm]``).

No server: the model is loaded with ``vllm.LLM(model=...)`` and answered with ``LLM.chat``, the
chat template applied by vLLM. The engine's throughput comes from batching, so requests are not
sent one by one: those that arrive while a batch runs are collected and sent together as the next
``LLM.chat`` call (one conversation and one ``SamplingParams`` each), in a worker thread so the
event loop stays free. Structured output: the request's JSON schema as vLLM's structured-output
(guided decoding) parameter, ``StructuredOutputsParams(json=schema)`` in recent vLLM,
``GuidedDecodingParams(json=schema)`` in older ones.

On the Ray executor each actor loads one engine on its own GPU (``num_gpus=1``).
vLLM (and CUDA) are imported only when this provider is created.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fountain.errors import FountainError, MissingDependencyError, ProviderError
from fountain.fastjson import loads
from fountain.providers.base import Completion, ProviderConfig, Request
from fountain.providers.http import combined_seed, merged_sampling
from fountain.types import Usage


def _import_vllm() -> Any:
    try:
        import vllm  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise MissingDependencyError(
            "the vllm provider needs vLLM, which is not installed",
            hint="pip install 'fountain[vllm]' on a host with a CUDA GPU, or serve the model with "
            "`vllm serve` and use --provider openai --base-url",
        ) from None
    return vllm


def vllm_sampling_params(vllm: Any) -> Callable[..., Any]:
    """A builder of ``SamplingParams`` with an optional JSON schema, for this vLLM version."""
    params_module = vllm.sampling_params
    structured = getattr(params_module, "StructuredOutputsParams", None)
    guided = getattr(params_module, "GuidedDecodingParams", None)

    def build(schema: dict[str, Any] | None = None, **sampling: Any) -> Any:
        if schema is not None and structured is not None:
            sampling["structured_outputs"] = structured(json=schema)
        elif schema is not None and guided is not None:
            sampling["guided_decoding"] = guided(json=schema)
        return vllm.SamplingParams(**sampling)

    return build


class VLLMProvider:
    """The ``vllm`` provider. ``engine`` and ``params`` replace ``vllm.LLM(...)`` and the
    ``SamplingParams`` builder (tests use a stand-in with ``LLM.chat``'s signature)."""

    name = "vllm"

    def __init__(self, config: ProviderConfig, *, engine: Any = None, params: Callable[..., Any] | None = None) -> None:
        if not config.model:
            raise FountainError(
                "the vllm provider needs a model",
                location="--model",
                hint="a Hugging Face model name or a local folder, e.g. --model Qwen/Qwen2.5-1.5B-Instruct",
            )
        self.model = config.model
        self.sampling = config.sampling
        self.max_batch = int(config.extra.get("max_batch", 256))
        if engine is None or params is None:
            vllm = _import_vllm()
            if params is None:
                params = vllm_sampling_params(vllm)
            if engine is None:
                options = dict(config.extra.get("engine_args") or {})
                engine = vllm.LLM(model=self.model, **options)
        self.engine = engine
        self.params = params
        self._queue: list[tuple[Request, asyncio.Future[Completion]]] = []
        self._draining: asyncio.Task[None] | None = None
        self.batches: list[int] = []  # sizes of the LLM.chat calls made (for tests and logs)

    def __repr__(self) -> str:
        return f"VLLMProvider(model={self.model!r})"

    def identity(self) -> dict[str, Any]:
        return {"provider": self.name, "model": self.model}

    async def complete(self, request: Request) -> Completion:
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        self._queue.append((request, future))
        if self._draining is None or self._draining.done():
            self._draining = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        """Send what is queued as one batch, then what queued meanwhile, until none is left."""
        while self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            self.batches.append(len(batch))
            try:
                answers = await asyncio.to_thread(self._chat, [request for request, _ in batch])
            except Exception as error:  # noqa: BLE001 - every waiting request hears of it
                failure = (
                    error
                    if isinstance(error, ProviderError)
                    else ProviderError(
                        f"vllm: the engine failed: {type(error).__name__}: {error}",
                        hint="check the model and the GPU (out of memory? lower max_model_len or the batch)",
                    )
                )
                for _, future in batch:
                    if not future.done():
                        future.set_exception(failure)
                continue
            for (_, future), answer in zip(batch, answers):
                if not future.done():
                    future.set_result(answer)

    def _chat(self, requests: list[Request]) -> list[Completion]:
        conversations = [[{"role": m.role, "content": m.content} for m in r.messages] for r in requests]
        sampling = [self._sampling_params(r) for r in requests]
        outputs = self.engine.chat(conversations, sampling_params=sampling, use_tqdm=False)
        return [self._completion(r, output) for r, output in zip(requests, outputs)]

    def _sampling_params(self, request: Request) -> Any:
        values = merged_sampling(self.sampling, request.sampling)
        seed = combined_seed(request)
        if seed is not None:
            values["seed"] = seed
        return self.params(schema=request.schema, **values)

    def _completion(self, request: Request, output: Any) -> Completion:
        first = output.outputs[0]
        text = str(first.text or "")
        data = None
        if request.schema is not None:
            try:
                data = loads(text)
            except ValueError:
                data = None
        usage = Usage(len(output.prompt_token_ids or ()), len(first.token_ids or ()))
        return Completion(text=text, data=data, finish_reason=first.finish_reason, usage=usage, model=self.model)

    async def aclose(self) -> None:
        if self._draining is not None and not self._draining.done():
            await self._draining
