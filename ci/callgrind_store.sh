#!/usr/bin/env bash
# Instructions per received object of `fastdicom serve` (callgrind), fed by `fastdicom send -j 4`.
# usage: ci/callgrind_store.sh SRC_ROOT OBJECTS_DIR [--sink]
#   prints the instruction total of one server process; run it on 100 and on 500 objects and
#   divide the difference by 400 (start-up cancels out). SRC_ROOT: the tree whose src/ the server runs.
set -euo pipefail
ROOT=$(cd "$1" && pwd); SRC=$2; MODE=${3:-}
PY=$(python3 -c "import sys; print(sys.executable)")  # the interpreter itself, not a pyenv shim
OUT=$(mktemp -d); D=$OUT/archive; mkdir "$D"
ARGS=(--dir "$D"); [ "$MODE" = --sink ] && ARGS=(--sink)
PORT=$((12000 + RANDOM % 1000))
PYTHONPATH=$ROOT/src PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.out" \
  "$PY" -m fastdicom serve --host 127.0.0.1 --port $PORT "${ARGS[@]}" > "$OUT/log" 2>&1 &
P=$!
for _ in $(seq 1 600); do grep -q listening "$OUT/log" && break; sleep 0.2; done
PYTHONPATH=$ROOT/src "$PY" -m fastdicom send -j 4 --to "FASTDICOM@127.0.0.1:$PORT" "$SRC" | grep "objects sent"
sleep 0.5; kill -TERM $P; wait $P || true
grep Collected "$OUT/log"
rm -rf "$OUT"
