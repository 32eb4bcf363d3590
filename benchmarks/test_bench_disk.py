"""Durability, like with like (issue 13 §4): the durable server against the disk's own limit, and
``--durability os`` against DCMTK's storescp (both the page cache only).

- ``disk-probe``: :func:`benchmarks.disk_probe.probe`, the same files written, fsynced, renamed and their
  folder fsynced by 4 threads (one per association of ``fastdicom send -j 4``) and by 16 (the size of the
  server's pool that fsyncs a group commit's files in parallel), in the same temporary
  folder as the receivers (the real disk, not tmpfs);
- ``fastdicom-j4->fastdicom``: ``fastdicom serve`` (durability fsync, the default);
- ``fastdicom-j4->fastdicom-os`` and ``dcmtk-tuned->dcmtk-tuned``: the page cache only.

Run: FASTDICOM_BENCH_DIR=/tmp/bench-series python3 -m pytest benchmarks/test_bench_disk.py --benchmark-enable
"""

from __future__ import annotations

import os
import tempfile

import pytest

from .disk_probe import probe
from .test_bench_net import _pair, make_small_objects

pytest.importorskip("pynetdicom")
ROUNDS = int(os.environ.get("FASTDICOM_BENCH_DISK_ROUNDS", "5"))


@pytest.fixture(scope="session")
def small_objects():
    return make_small_objects()


PAIRS = [
    ("fastdicom-j4", "fastdicom"),
    ("fastdicom-j4", "fastdicom-os"),
    ("dcmtk-tuned", "fastdicom-os"),
    ("dcmtk-tuned", "dcmtk-tuned"),
]


def _probe(benchmark, paths: list[str], threads: int) -> None:
    root = os.path.join(tempfile.mkdtemp(prefix="fastdicom-probe-"), "archive")
    times: list[float] = []
    benchmark.pedantic(lambda: times.append(probe(paths, root, threads)), rounds=ROUNDS, warmup_rounds=0)
    size = sum(os.path.getsize(p) for p in paths)
    med = benchmark.stats.stats.median
    benchmark.extra_info["MB/s"] = round(size / 1e6 / med, 1)
    benchmark.extra_info["objects/s"] = round(len(paths) / med, 1)
    benchmark.extra_info["correct"] = True  # probe() checks every file it wrote


PAYLOADS = ["ct_series", "small_objects"]  # 300 x 0.5 MB, 2,000 x 8 KB


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("sender,receiver", PAIRS, ids=[f"{s}->{r}" for s, r in PAIRS])
def test_disk(benchmark, request, payload, sender, receiver):
    benchmark.group = f"disk-{payload}"
    _pair(benchmark, sender, receiver, request.getfixturevalue(payload), ROUNDS)


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("threads", [4, 16])
def test_disk_probe(benchmark, request, payload, threads):
    benchmark.group = f"disk-{payload}"
    _probe(benchmark, request.getfixturevalue(payload), threads)
