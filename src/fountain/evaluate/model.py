"""The model ``fountain evaluate`` fine-tunes: by default the bundled SmolLM2-135M-Instruct, read
from its GGUF file (no download) and turned into a trainable float32 model; else a GGUF path, a
local transformers folder or (online) a Hub id.

transformers marks a model loaded from GGUF as quantised and trainers refuse it, so the weights
are moved into a model built fresh from the same config. The conversion (about a minute on two
busy cores) is done once and kept under fountain's cache folder, keyed by the file's sha256.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from fountain.bundled import cache_dir, file_sha256, verify_sha256
from fountain.errors import FountainError, MissingDependencyError
from fountain.evaluate.chat import CHAT_TEMPLATE, SPECIAL_TOKENS

INSTALL_HINT = "pip install 'fountain[evaluate]'"
DEFAULT_NAME = "SmolLM2-135M-Instruct (bundled GGUF)"


class EvaluateError(FountainError):
    """The evaluation cannot run as asked."""


def require_training_stack() -> None:
    """Raise :class:`MissingDependencyError` unless torch, transformers, trl and datasets import."""
    missing = []
    for name in ("torch", "transformers", "trl", "datasets"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise MissingDependencyError(f"fountain evaluate needs {', '.join(missing)}", hint=INSTALL_HINT)


def prepare_tokenizer(tokenizer: Any, model: Any | None = None) -> Any:
    """Give ``tokenizer`` the training chat template, the ChatML tokens and a pad token (the
    model's embeddings grow when tokens had to be added)."""
    vocab = tokenizer.get_vocab()
    missing = [t for t in SPECIAL_TOKENS if t not in vocab]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing})
        if model is not None:
            model.resize_token_embeddings(len(tokenizer))
    tokenizer.chat_template = CHAT_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = "<|im_end|>"
    return tokenizer


def trainable_copy(model: Any) -> Any:
    """A plain float32 model with ``model``'s weights (drops the GGUF quantisation marks)."""
    import torch
    from transformers import AutoModelForCausalLM

    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(model.state_dict())
    return fresh


def _from_gguf(path: Path, digest: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cached = cache_dir() / "evaluate" / f"{path.stem}-{digest[:16]}"
    if (cached / "config.json").is_file():
        try:
            return AutoModelForCausalLM.from_pretrained(cached, dtype=torch.float32), AutoTokenizer.from_pretrained(
                cached
            )
        except (OSError, ValueError):
            shutil.rmtree(cached, ignore_errors=True)  # a damaged cache: convert again
    try:
        import gguf  # noqa: F401
    except ImportError:
        raise MissingDependencyError(
            "reading a GGUF model for training needs the 'gguf' package", hint=INSTALL_HINT
        ) from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        loaded = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise EvaluateError(
            f"transformers cannot read this GGUF model ({error})",
            location=str(path),
            hint="give a transformers model folder or Hub id with --model instead",
        ) from None
    model = trainable_copy(loaded)
    try:
        temporary = cached.with_name(cached.name + ".tmp")
        shutil.rmtree(temporary, ignore_errors=True)
        model.save_pretrained(temporary)
        tokenizer.save_pretrained(temporary)
        shutil.rmtree(cached, ignore_errors=True)
        temporary.rename(cached)
    except OSError:
        pass  # no cache this time; the model is fine
    return model, tokenizer


def load_model(name: str | None) -> tuple[Any, Any, str]:
    """``(model, tokenizer, description)`` for ``--model``: None for the bundled SmolLM2, a GGUF
    file, a transformers folder or a Hub id. The tokenizer carries the training chat template."""
    require_training_stack()
    if name in (None, "", "default"):
        from fountain.providers.local import DEFAULT_MODEL_SHA256, default_model_path

        path = default_model_path()
        digest = verify_sha256(path, DEFAULT_MODEL_SHA256)
        model, tokenizer = _from_gguf(path, digest)
        return model, prepare_tokenizer(tokenizer, model), DEFAULT_NAME
    assert name is not None
    path = Path(name).expanduser()
    if path.is_file():
        model, tokenizer = _from_gguf(path, file_sha256(path))
        return model, prepare_tokenizer(tokenizer, model), path.name
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        model = AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32)
    except (OSError, ValueError) as error:
        raise EvaluateError(
            f"cannot load the model ({str(error).splitlines()[0]})",
            location="--model",
            hint="give a local transformers folder, a .gguf file, or a Hub id while online",
        ) from None
    return model, prepare_tokenizer(tokenizer, model), name
