"""A GGUF model named on the Hugging Face Hub, for the local provider: ``hf://owner/repo/file.gguf``.

The file is fetched once with ``huggingface_hub`` into the usual Hugging Face cache
(``HF_HOME``/``HF_HUB_CACHE``) and read from there afterwards, online or not. Offline with no
cached copy is a :class:`~fountain.errors.ModelFileError` that says how to get the file.
"""

from __future__ import annotations

from pathlib import Path

from fountain.bundled import ModelFileError
from fountain.errors import MissingDependencyError

PREFIX = "hf://"


def is_hub_name(model: str | None) -> bool:
    return isinstance(model, str) and model.startswith(PREFIX)


def split_hub_name(model: str) -> tuple[str, str]:
    """``hf://owner/repo/path/file.gguf`` -> (``owner/repo``, ``path/file.gguf``)."""
    parts = model[len(PREFIX) :].strip("/").split("/")
    if len(parts) < 3 or not all(parts) or not parts[-1].lower().endswith(".gguf"):
        raise ModelFileError(
            f"not a Hugging Face GGUF name: {model}",
            location="model",
            hint="write hf://OWNER/REPO/FILE.gguf, e.g. hf://bartowski/Qwen2.5-1.5B-Instruct-GGUF/"
            "Qwen2.5-1.5B-Instruct-Q4_K_M.gguf",
        )
    return "/".join(parts[:2]), "/".join(parts[2:])


def hub_model_path(model: str) -> Path:
    """The local path of ``hf://owner/repo/file.gguf``: from the HF cache, else downloaded."""
    repo, filename = split_hub_name(model)
    try:
        from huggingface_hub import hf_hub_download, try_to_load_from_cache
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError as error:
        raise MissingDependencyError(
            f"a Hugging Face model name needs huggingface_hub ({error})", hint="pip install 'fountain[local]'"
        ) from error
    cached = try_to_load_from_cache(repo, filename)
    if isinstance(cached, str):
        return Path(cached)
    try:
        return Path(hf_hub_download(repo, filename))
    except LocalEntryNotFoundError as error:
        raise ModelFileError(
            f"{model} is not in the Hugging Face cache and the Hub cannot be reached ({type(error).__name__})",
            location="model",
            hint="run once with a network connection (HF_HUB_OFFLINE unset), or download the file and give its path",
        ) from None
    except (HfHubHTTPError, OSError, ValueError) as error:
        raise ModelFileError(
            f"cannot download {model}: {type(error).__name__}: {str(error)[:200]}",
            location="model",
            hint="check the repository and file name on huggingface.co (a gated model needs HF_TOKEN)",
        ) from None
