#!/usr/bin/env bash
# The whole check: linters, cargo test of the pure crates, pytest with the
# native backend required, then pytest again on the pure-Python backend.
# Both runs require the whole public corpus (FASTDICOM_REQUIRE_CORPUS=1): a
# listed file that is not here, or a missing tests/corpus.csv, fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export FASTDICOM_REQUIRE_CORPUS=1

echo "== lint"
bash ci/lint.sh

echo "== corpus list (tests/corpus.csv) up to date with ../shared/corpus/public.csv"
$PY ci/gen_corpus_table.py --check

echo "== cargo test (pure crates)"
(cd rust && cargo test --locked -p fastdicom-parse -p fastdicom-codecs -p fastdicom-net)

echo "== pytest, native backends required"
FASTDICOM_REQUIRE_NATIVE=1 $PY -m fastdicom backends
FASTDICOM_REQUIRE_NATIVE=1 $PY -m pytest -q -p no:cacheprovider

echo "== pytest, FASTDICOM_BACKEND=python"
FASTDICOM_BACKEND=python $PY -m fastdicom backends
FASTDICOM_BACKEND=python $PY -m pytest -q -p no:cacheprovider
