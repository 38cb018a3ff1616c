"""The vllm provider's request/response mapping, against a stand-in for ``vllm.LLM`` (vLLM needs a
CUDA GPU and is not installed here); the real engine runs in the ``gpu``-marked test."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from fountain.errors import FountainError, MissingDependencyError, ProviderError
from fountain.providers import create_provider
from fountain.providers.base import Message, ProviderConfig, Request, Sampling
from fountain.providers.vllm import VLLMProvider

SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}


@dataclass
class _StandInCompletionOutput:  # vllm.outputs.CompletionOutput's fields that fountain reads
    text: str
    token_ids: list[int]
    finish_reason: str | None = "stop"


@dataclass
class _StandInRequestOutput:  # vllm.outputs.RequestOutput's fields that fountain reads
    prompt_token_ids: list[int]
    outputs: list[_StandInCompletionOutput]


@dataclass
class StandInLLM:
    """NOT vLLM: an object with ``vllm.LLM.chat``'s signature that records its calls and answers
    each conversation with a JSON object naming its last message."""

    calls: list[tuple[list[list[dict[str, str]]], list[Any]]] = field(default_factory=list)
    fail: bool = False

    def chat(self, messages, sampling_params=None, use_tqdm=True, lora_request=None, chat_template=None, **kwargs):
        if self.fail:
            raise RuntimeError("CUDA out of memory")
        self.calls.append((messages, sampling_params))
        return [
            _StandInRequestOutput(
                prompt_token_ids=list(range(len(conversation[-1]["content"]))),
                outputs=[_StandInCompletionOutput(json.dumps({"a": conversation[-1]["content"]}), [1, 2, 3])],
            )
            for conversation in messages
        ]


def stand_in_params(schema=None, **sampling):
    """NOT vLLM's SamplingParams: what the provider would pass to it, as a dict."""
    return {"schema": schema, **sampling}


def _provider(engine=None, **config) -> VLLMProvider:
    config.setdefault("model", "Qwen/Qwen2.5-0.5B-Instruct")
    return VLLMProvider(
        ProviderConfig(provider="vllm", **config), engine=engine or StandInLLM(), params=stand_in_params
    )


def _request(text: str, index: int = 0, schema=SCHEMA) -> Request:
    return Request(
        messages=(Message("system", "Be brief."), Message("user", text)),
        schema=schema,
        sampling=Sampling(temperature=0.3, max_tokens=50),
        seed=7,
        sample_index=index,
    )


async def test_request_maps_to_chat_messages_sampling_seed_and_schema():
    engine = StandInLLM()
    provider = _provider(engine, sampling=Sampling(top_p=0.9, temperature=1.0))
    completion = await provider.complete(_request("hello"))
    ((messages, params),) = engine.calls
    assert messages == [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}]]
    assert params == [{"schema": SCHEMA, "temperature": 0.3, "top_p": 0.9, "max_tokens": 50, "seed": 7 * 1_000_003}]
    assert completion.data == {"a": "hello"} and completion.finish_reason == "stop"
    assert completion.usage.prompt_tokens == 5 and completion.usage.completion_tokens == 3
    assert completion.model == "Qwen/Qwen2.5-0.5B-Instruct"


async def test_concurrent_requests_are_batched_into_chat_calls():
    engine = StandInLLM()
    provider = _provider(engine)
    answers = await asyncio.gather(*(provider.complete(_request(f"m{i}", i)) for i in range(20)))
    assert [a.data["a"] for a in answers] == [f"m{i}" for i in range(20)]
    # all twenty queue before the engine is free: one LLM.chat call; then requests that come
    # while a batch runs make the next batch
    assert provider.batches == [20] and len(engine.calls[0][0]) == 20
    first = asyncio.ensure_future(provider.complete(_request("a", 100)))
    await asyncio.sleep(0)  # the batch of one is on its way to the engine
    more = [provider.complete(_request(f"b{i}", 200 + i)) for i in range(5)]
    await asyncio.gather(first, *more)
    assert provider.batches == [20, 1, 5]


async def test_without_a_schema_no_structured_output_is_asked():
    engine = StandInLLM()
    provider = _provider(engine)
    completion = await provider.complete(_request("x", schema=None))
    assert engine.calls[0][1][0]["schema"] is None and completion.data is None


async def test_an_engine_failure_fails_every_request_of_the_batch():
    provider = _provider(StandInLLM(fail=True))
    results = await asyncio.gather(*(provider.complete(_request(str(i), i)) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, ProviderError) and "CUDA out of memory" in r.message for r in results)


def test_missing_vllm_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_vllm(name, *args, **kwargs):
        if name == "vllm" or name.startswith("vllm."):
            raise ImportError("No module named 'vllm'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_vllm)
    with pytest.raises(MissingDependencyError, match="vLLM") as info:
        create_provider(ProviderConfig(provider="vllm", model="m"))
    assert "fountain[vllm]" in (info.value.hint or "")


def test_a_model_is_required():
    with pytest.raises(FountainError, match="needs a model"):
        VLLMProvider(ProviderConfig(provider="vllm"), engine=StandInLLM(), params=stand_in_params)


@pytest.mark.gpu
async def test_real_vllm_engine_answers_with_the_schema():
    pytest.importorskip("vllm")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    provider = create_provider(
        ProviderConfig(
            provider="vllm",
            model="HuggingFaceTB/SmolLM2-135M-Instruct",
            extra={"engine_args": {"max_model_len": 2048, "gpu_memory_utilization": 0.3}},
        )
    )
    answers = await asyncio.gather(*(provider.complete(_request(f"say {i}", i)) for i in range(4)))
    assert all(isinstance(a.data, dict) and "a" in a.data for a in answers)
