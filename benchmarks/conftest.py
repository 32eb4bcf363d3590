from __future__ import annotations

import os
import tempfile

import pytest

from fastdicom.synth import write_ct_series

SLICES = int(os.environ.get("FASTDICOM_BENCH_SLICES", "300"))


@pytest.fixture(scope="session")
def ct_series():
    """A 300-slice 512x512 int16 CT series (about 100 attributes, sequences, a private block)."""
    folder = os.environ.get("FASTDICOM_BENCH_DIR")
    if folder and os.path.isdir(folder) and len(os.listdir(folder)) >= SLICES:
        return sorted(os.path.join(folder, f) for f in os.listdir(folder))[:SLICES]
    tmp = tempfile.mkdtemp(prefix="fastdicom-bench-")
    return write_ct_series(tmp, SLICES)
