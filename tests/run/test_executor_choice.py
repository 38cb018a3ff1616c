"""Choosing the executor: the local one by default, Ray only when asked and installed."""

from __future__ import annotations

import builtins

import pytest

from fountain import generate
from fountain.errors import FountainError, MissingDependencyError
from fountain.run.options import RunOptions
from fountain.spec.load import load_spec
from spec_helpers import make_spec


def test_executor_ray_without_ray_names_the_extra_and_writes_no_journal(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    spec = load_spec(make_spec(tmp_path))
    with pytest.raises(MissingDependencyError, match="Ray") as info:
        generate(spec, RunOptions(output=tmp_path / "out", provider="fake", executor="ray", quiet=True))
    assert "fountain[ray]" in (info.value.hint or "")
    assert not (tmp_path / "out").exists()  # nothing written


def test_unknown_executor_is_a_user_error(tmp_path):
    spec = load_spec(make_spec(tmp_path))
    with pytest.raises(FountainError, match="unknown executor"):
        generate(spec, RunOptions(output=tmp_path / "out", provider="fake", executor="dask", quiet=True))


def test_local_executor_is_the_default_and_needs_no_ray(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray.") or name == "fountain.run.ray_executor":
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    spec = load_spec(make_spec(tmp_path))
    result = generate(spec, RunOptions(output=tmp_path / "out", provider="fake", seed=1, quiet=True))
    assert result.dataset_records > 0
