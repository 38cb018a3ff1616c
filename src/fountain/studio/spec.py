"""The spec page: read the two files, check edited text as ``fountain validate`` would (on a
temporary copy: the user's files are untouched until Save), render the first prompts as
``fountain render`` and plan the calls and cost as ``fountain run --dry-run``; save."""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from fountain.errors import FountainError, SpecError
from fountain.spec.model import Spec
from fountain.studio.security import inside
from fountain.studio.state import Studio, error_response, read_json

SETUP, DIAGRAM = "setup.yaml", "diagram.mermaid"
EDITABLE = (SETUP, DIAGRAM)
MAX_TEXT = 2_000_000  # characters of one edited file


def _problem(problem: Any, temp: Path, folder: Path) -> dict[str, str | None]:
    """A problem (or error) as JSON, its paths naming the user's folder, not the temporary copy."""

    def fix(text: str | None) -> str | None:
        return None if text is None else text.replace(str(temp), str(folder))

    return {"message": fix(problem.message), "location": fix(problem.location), "hint": fix(problem.hint)}


def _stage(folder: Path, texts: dict[str, str], temp: Path) -> None:
    """A copy of ``folder`` in ``temp`` with the edited texts: the two files written, every other
    entry (persona lists, real data, ...) linked, the output folder left out."""
    for entry in folder.iterdir():
        if entry.name in EDITABLE or entry.name == "output":
            continue
        target = entry.resolve()
        if not target.is_relative_to(folder.resolve()):
            continue  # a link out of the folder is not followed
        try:
            (temp / entry.name).symlink_to(target, target_is_directory=target.is_dir())
        except OSError:
            continue
    for name in EDITABLE:
        (temp / name).write_text(texts[name], encoding="utf-8")


def check(folder: Path, texts: dict[str, str], provider: str | None = None) -> dict[str, Any]:
    """``{"ok", "problems", "warnings", "prompts", "plan"}`` for the edited texts of ``folder``."""
    temp = Path(tempfile.mkdtemp(prefix="fountain-studio-"))
    try:
        _stage(folder, texts, temp)
        try:
            from fountain.spec.load import load_spec

            spec = load_spec(temp)
        except SpecError as error:
            return {"ok": False, "problems": [_problem(p, temp, folder) for p in error.problems], "warnings": []}
        except FountainError as error:
            return {"ok": False, "problems": [_problem(error, temp, folder)], "warnings": []}
        result: dict[str, Any] = {
            "ok": True,
            "problems": [],
            "warnings": [_problem(w, temp, folder) for w in spec.warnings],
        }
        try:
            result.update(_preview(spec, provider))
        except FountainError as error:
            result["ok"] = False
            result["problems"] = [_problem(error, temp, folder)]
        return result
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _preview(spec: Spec, provider: str | None) -> dict[str, Any]:
    """The rendered first requests and the dry-run plan of ``spec`` with ``provider``."""
    from fountain.generation.preview import preview_requests
    from fountain.generation.requests import resolve_mode
    from fountain.providers import resolve_provider_config
    from fountain.providers.cost import PriceTable, estimate_run, estimate_tokens

    config = resolve_provider_config(spec.model, provider=provider or None)
    mode = resolve_mode(spec, config.provider, None)
    requests = preview_requests(spec, mode=mode)
    prompts, sizes = [], []
    for title, request in requests:
        prompts.append({"title": title, "messages": [{"role": m.role, "content": m.content} for m in request.messages]})
        schema = json.dumps(request.schema) if request.schema is not None else ""
        sizes.append(estimate_tokens(request.prompt_text()) + estimate_tokens(schema))
    estimate = estimate_run(
        spec,
        PriceTable.load(None),
        config.provider,
        config.model,
        mode=mode,
        prompt_tokens=(sizes[0], sizes[-1]) if sizes else None,
    )
    plan = {k: v for k, v in dataclasses.asdict(estimate).items() if k != "price"}
    plan.update(provider=config.provider, model=config.model)
    return {"mode": mode, "prompts": prompts, "plan": plan}


async def _texts(request: Request) -> dict[str, str]:
    body = await read_json(request)
    texts = {}
    for name in EDITABLE:
        value = body.get(name)
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise FountainError(f"the request needs the text of {name}", location=name)
        texts[name] = value
    return texts


async def read_files(request: Request) -> JSONResponse:
    """GET: the two files as they are on disk (an absent one is empty)."""
    studio: Studio = request.app.state.studio
    try:
        folder = studio.folder(request.path_params["index"])
        texts = {}
        for name in EDITABLE:
            path = inside(folder, name)
            texts[name] = path.read_text(encoding="utf-8") if path.is_file() else ""
    except (FountainError, OSError, UnicodeDecodeError) as error:
        return error_response(error)
    return JSONResponse({"folder": str(folder), **texts})


async def check_texts(request: Request) -> JSONResponse:
    """POST {setup.yaml, diagram.mermaid, provider?}: the check of the edited (unsaved) texts."""
    studio: Studio = request.app.state.studio
    try:
        folder = studio.folder(request.path_params["index"])
        texts = await _texts(request)
        provider = request.query_params.get("provider") or None
    except FountainError as error:
        return error_response(error)
    import anyio

    return JSONResponse(await anyio.to_thread.run_sync(check, folder, texts, provider))


async def save(request: Request) -> JSONResponse:
    """POST {setup.yaml, diagram.mermaid}: write the two files (atomically), nothing else."""
    from fountain.run.atomic import write_text_atomic

    studio: Studio = request.app.state.studio
    try:
        folder = studio.folder(request.path_params["index"])
        texts = await _texts(request)
        for name in EDITABLE:
            write_text_atomic(inside(folder, name), texts[name])
    except (FountainError, OSError) as error:
        return error_response(error)
    return JSONResponse({"saved": list(EDITABLE)})
