"""Push a published folder to the Hugging Face Hub as one commit of a dataset repository.

The token comes from ``HF_TOKEN`` (or huggingface_hub's own login) and never from the command line;
it is never printed, logged or written (errors are scrubbed of it). ``HF_ENDPOINT`` (or
``endpoint=``) points the client at another Hub, as the tests do with a loopback mock.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fountain.errors import FountainError, MissingDependencyError
from fountain.publish.source import PublishError

HUB_SCHEME = "hf://"
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")


_TRANSPORTS = ("httpx", "httpcore", "requests", "urllib", "urllib3")


class HubError(FountainError):
    """The Hub refused or could not be reached."""


@dataclass
class Pushed:
    """Where the dataset went."""

    repo_id: str
    url: str
    commit: str
    private: bool | None


def hub_repo(target: str) -> str | None:
    """``OWNER/NAME`` of an ``hf://OWNER/NAME`` target, None for a folder; a malformed id raises."""
    if not target.startswith(HUB_SCHEME):
        return None
    repo_id = target[len(HUB_SCHEME) :].strip("/")
    if repo_id.startswith("datasets/"):
        repo_id = repo_id[len("datasets/") :]
    if not _REPO_ID.match(repo_id) or ".." in repo_id:
        raise PublishError(
            f"{repo_id!r} is not a Hub repository id",
            location="--to",
            hint="write hf://OWNER/NAME (letters, digits, '-', '_', '.')",
        )
    return repo_id


def _token() -> str:
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if token:
        return token
    try:
        from huggingface_hub import get_token

        saved = get_token()
    except Exception:  # noqa: BLE001 - a broken login file is the same as none
        saved = None
    if saved:
        return str(saved)
    raise HubError(
        "no Hugging Face token",
        location="HF_TOKEN",
        hint="create a write token at https://huggingface.co/settings/tokens and export HF_TOKEN=... "
        "(never pass it on the command line)",
    )


def _scrub(text: str, token: str) -> str:
    return text.replace(token, "***") if token else text


def _hub_error(error: Exception, token: str, repo_id: str) -> HubError:
    status = getattr(getattr(error, "response", None), "status_code", None)
    message = _scrub(str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__, token)
    hints = {
        401: "the token is invalid or expired: export a valid HF_TOKEN",
        403: f"the token may not write to {repo_id}: use a write token of its owner",
        404: f"{repo_id} does not exist and could not be created",
    }
    hint = hints.get(status or 0, "check the network and HF_ENDPOINT, then run the same command again")
    return HubError(
        f"the Hub refused the push ({status or 'no answer'}): {message}", location=f"hf://{repo_id}", hint=hint
    )


def push_folder(
    folder: str | Path,
    repo_id: str,
    files: list[str],
    *,
    private: bool = False,
    endpoint: str | None = None,
    message: str = "Publish dataset with fountain",
) -> Pushed:
    """Create the dataset repo ``repo_id`` if needed (``private``: created private, or an existing
    public repo made private first) and commit
    ``files`` (paths relative to ``folder``) to its main branch in one commit; an existing repo
    gets a new commit, unchanged files are not sent again."""
    try:
        from huggingface_hub import CommitOperationAdd, HfApi
        from huggingface_hub.errors import HfHubHTTPError
    except ImportError:
        raise MissingDependencyError(
            "pushing to the Hub needs the 'huggingface_hub' package", hint="pip install 'fountain[publish]'"
        ) from None
    token = _token()
    api = HfApi(endpoint=endpoint or os.environ.get("HF_ENDPOINT") or None, token=token)
    folder = Path(folder)
    try:
        api.whoami(cache=False)
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        if private and not getattr(api.repo_info(repo_id, repo_type="dataset"), "private", False):
            # an existing public repo: --private makes it private before anything new goes up
            api.update_repo_settings(repo_id, private=True, repo_type="dataset")
        operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(folder / name)) for name in files]
        info = api.create_commit(repo_id, operations, commit_message=message, repo_type="dataset")
        repo: Any = api.repo_info(repo_id, repo_type="dataset")
    except HfHubHTTPError as error:
        raise _hub_error(error, token, repo_id) from None
    except (OSError, ValueError) as error:
        # connection failures (httpx raises OSError subclasses) and a card the Hub rejects
        raise _hub_error(error, token, repo_id) from None
    except Exception as error:  # noqa: BLE001 - transport errors of the HTTP client
        if type(error).__module__.split(".")[0].rstrip("0123456789") in _TRANSPORTS:
            raise _hub_error(error, token, repo_id) from None
        raise
    url = f"{api.endpoint.rstrip('/')}/datasets/{repo_id}"
    return Pushed(repo_id, url, str(info.oid), getattr(repo, "private", None))
