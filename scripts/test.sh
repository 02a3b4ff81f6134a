#!/usr/bin/env bash
# Sets up .venv (scripts/setup.sh), lints, and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
export TF_CPP_MIN_LOG_LEVEL=2
exec .venv/bin/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder "$@"
