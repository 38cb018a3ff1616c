#!/usr/bin/env bash
# Set up a virtual environment with every extra, run the gates and the whole test suite.
# Usage: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# The CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e '.[dev]'
# Headless Chromium renders the HTML report in one test and drives fountain studio in tests/studio (skipped when absent).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "chromium not installed: the HTML rendering and studio browser tests will be skipped"
fi
# The gates (docs/architecture.md, "Gates"): lint, format, layers, types, module size.
.venv/bin/ruff check src tests benchmarks scripts
.venv/bin/ruff format --check src tests benchmarks scripts
.venv/bin/lint-imports
.venv/bin/mypy
.venv/bin/python scripts/check_module_size.py
exec .venv/bin/python -m pytest "$@"
