"""Storage Commitment of many instances with their checksums verified, side by side with reading the files.

- ``read``: every file read whole (4 threads, 1 MiB reads): the anchor, what verification cannot beat;
- ``verify``: ``CommitmentService.verify`` (index lookup, size, checksum re-read on 4 threads);
- ``commit``: ``fastdicom.net.commit`` of every instance to a server over the Archive, from the N-ACTION to the
  N-EVENT-REPORT (same association), all instances committed (checked).

The files are in the page cache in every round (the set is read once first), so the figures compare CPU paths.
Run: FASTDICOM_BENCH_DIR=/tmp/bench-series python3 -m pytest benchmarks/test_bench_commit.py --benchmark-enable
``FASTDICOM_BENCH_COMMIT`` sets the number of instances (10,000), ``FASTDICOM_BENCH_COMMIT_ROWS`` their size
(128x128 int16: about 37 KB each).
"""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastdicom
from fastdicom import synth
from fastdicom.archive import Archive
from fastdicom.net import StorageSCP, commit
from fastdicom.services.commitment import CommitmentService

N = int(os.environ.get("FASTDICOM_BENCH_COMMIT", "10000"))
ROWS = int(os.environ.get("FASTDICOM_BENCH_COMMIT_ROWS", "128"))


@pytest.fixture(scope="module")
def archive():
    base = os.environ.get("FASTDICOM_BENCH_DIR") or tempfile.mkdtemp(prefix="fastdicom-bench-")
    src = os.path.join(base, f"commit{N}x{ROWS}")
    if not os.path.isdir(src) or len(os.listdir(src)) < N:
        os.makedirs(src, exist_ok=True)
        study, series, frame = synth.new_uid(), synth.new_uid(), synth.new_uid()
        rng = np.random.default_rng(7)
        for i in range(N):
            px = rng.integers(-1000, 2000, (ROWS, ROWS), dtype="<i2")  # every file differs
            ds = synth.ct_slice(
                i, study_uid=study, series_uid=series, frame_uid=frame, rows=ROWS, columns=ROWS, pixels=px
            )
            fastdicom.write(os.path.join(src, f"C{i:05d}.dcm"), ds)
    root = tempfile.mkdtemp(prefix="fastdicom-bench-commit-")
    a = Archive(root)
    a.add(sorted(os.path.join(src, f) for f in os.listdir(src))[:N])
    yield a
    a.close()


def _instances(a: Archive):
    return list(a.instances("STUDY", {"StudyInstanceUID": ""}))


def _read_all(paths) -> int:
    def one(p):
        n = 0
        with open(p, "rb", buffering=0) as f:
            while chunk := f.read(1 << 20):
                n += len(chunk)
        return n

    with ThreadPoolExecutor(4) as pool:
        return sum(pool.map(one, paths))


def test_commit_read_anchor(benchmark, archive):
    insts = _instances(archive)
    assert len(insts) == N
    size = _read_all([i.path for i in insts])  # into the page cache
    benchmark.pedantic(lambda: _read_all([i.path for i in insts]), rounds=3, warmup_rounds=0)
    benchmark.extra_info["MB/s"] = round(size / 1e6 / benchmark.stats.stats.median, 1)
    benchmark.extra_info["instances"] = N
    benchmark.extra_info["correct"] = size == sum(i.size for i in insts)


def test_commit_verify(benchmark, archive):
    insts = _instances(archive)
    size = _read_all([i.path for i in insts])
    service = CommitmentService(archive, database=":memory:", verify_threads=4)
    refs = [(i.sop_class_uid, i.sop_instance_uid) for i in insts]
    failures: list = []
    try:
        benchmark.pedantic(lambda: failures.append(service.verify(refs)), rounds=3, warmup_rounds=0)
    finally:
        service.close()
    benchmark.extra_info["MB/s"] = round(size / 1e6 / benchmark.stats.stats.median, 1)
    benchmark.extra_info["instances"] = N
    benchmark.extra_info["correct"] = all(f == [] for f in failures)


def test_commit_to_n_event_report(benchmark, archive):
    insts = _instances(archive)
    size = _read_all([i.path for i in insts])
    pairs = [(i.sop_class_uid, i.sop_instance_uid) for i in insts]
    service = CommitmentService(archive, verify_threads=4)
    reports = []
    with StorageSCP(archive=archive, port=0, services=[service]) as scp:
        address = f"FASTDICOM@127.0.0.1:{scp.port}"
        benchmark.pedantic(lambda: reports.append(commit(address, pairs, timeout=600)), rounds=3, warmup_rounds=0)
    benchmark.extra_info["MB/s"] = round(size / 1e6 / benchmark.stats.stats.median, 1)
    benchmark.extra_info["instances"] = N
    benchmark.extra_info["correct"] = all(r.ok and len(r.committed) == N for r in reports)
