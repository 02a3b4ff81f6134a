#!/usr/bin/env bash
# Creates .venv with the pinned dependency set and installs this project into it (editable).
#
# Why not `pip install -e .` alone: TFX 1.21 (the only TFX for Python 3.11) pins ml-metadata 1.21
# and tensorflow-data-validation 1.21, which have no Linux wheels for Python 3.11. The lock in
# requirements/lock.txt was resolved by `uv pip compile` with requirements/overrides.txt, which
# swaps in ml-metadata 1.17.1 (the newest cp311 Linux wheel), lets protobuf 6.x through, and leaves
# TFDV out. A resolver would reject that set, so it is installed with --no-deps. See README.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
# --compile-bytecode: uv installs sources only; with PYTHONDONTWRITEBYTECODE set (as on our
# development machines) every process would compile TF, TFX and Beam again. Measured: the install
# takes ~10 s longer, `import tensorflow, tfx, apache_beam, keras` 5.8-6.2 -> 4.3 s (AMX Xeon).
.venv/bin/uv pip install --quiet --python .venv/bin/python --no-deps --compile-bytecode \
  -r requirements/lock.txt
.venv/bin/uv pip install --quiet --python .venv/bin/python --no-deps --no-build-isolation -e .
echo "set-up done: $(.venv/bin/python -c 'import tensorflow as tf, tfx, apache_beam as b, ml_metadata as m; print(f"tensorflow {tf.__version__}, tfx {tfx.__version__}, apache-beam {b.__version__}, ml-metadata {m.__version__}")' 2>/dev/null)"
