#!/usr/bin/env bash
# Sets up .venv (scripts/setup.sh), lints, and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
export TF_CPP_MIN_LOG_LEVEL=2
# worksteal: a worker that runs out takes half of the other's queue. With the default `load`
# schedule one worker was handed the DAG tests (60-330 s each) in one chunk near the end and ran
# them for ~9 minutes after the other had finished (a timeline of one CI run, AMD EPYC).
exec .venv/bin/python -m pytest -n 2 --dist worksteal "$@"
