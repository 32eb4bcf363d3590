#!/usr/bin/env bash
# The whole check: linters, cargo test of the pure crates, pytest with the
# native backend required, then pytest again on the pure-Python backend.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

echo "== lint"
bash ci/lint.sh

echo "== cargo test (pure crates)"
(cd rust && cargo test --locked -p fastdicom-parse -p fastdicom-codecs -p fastdicom-net)

echo "== pytest, native backends required"
FASTDICOM_REQUIRE_NATIVE=1 $PY -m fastdicom backends
FASTDICOM_REQUIRE_NATIVE=1 $PY -m pytest -q -p no:cacheprovider

echo "== pytest, FASTDICOM_BACKEND=python"
FASTDICOM_BACKEND=python $PY -m fastdicom backends
FASTDICOM_BACKEND=python $PY -m pytest -q -p no:cacheprovider
