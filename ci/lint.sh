#!/usr/bin/env bash
# Linters: ruff (Python), cargo fmt and clippy (Rust).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
$PY -m ruff check src tests benchmarks ci
$PY -m ruff format --check src tests benchmarks ci
$PY -m mypy src/fastdicom  # the package type-checks (settings in pyproject.toml)
# The private native modules match their .pyi stubs.
$PY -m mypy.stubtest fastdicom._rust fastdicom._cy._kernels fastdicom._cy._openjph
(cd rust && cargo fmt --all -- --check)
(cd rust && cargo clippy --workspace --all-targets --locked -- -D warnings)
