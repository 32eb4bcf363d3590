"""Dataset benchmarks, side by side: fastdicom (native, pure Python), pydicom, dicomsdl.

Run: python3 -m pytest benchmarks --benchmark-enable --benchmark-columns=median,mean,min,rounds
"""

from __future__ import annotations

import gc
import os
import warnings

import psutil
import pytest

import fastdicom
from tests.corpus import corpus_files

pydicom = pytest.importorskip("pydicom")
try:
    import dicomsdl
except ImportError:  # pragma: no cover - optional anchor
    dicomsdl = None

KEYS = ("SOPInstanceUID", "SeriesInstanceUID", "InstanceNumber", "ImagePositionPatient", "RescaleIntercept")
TAGS = (0x00080018, 0x0020000E, 0x00200013, 0x00200032, 0x00281052)


def scan_fastdicom(paths, backend):
    out = []
    read = fastdicom.read
    for p in paths:
        ds = read(p, stop_before_pixels=True, backend=backend)
        out.append(tuple(ds.get(t) for t in TAGS))
    return out


def scan_pydicom(paths):
    out = []
    for p in paths:
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        out.append(
            (
                ds.SOPInstanceUID,
                ds.SeriesInstanceUID,
                ds.InstanceNumber,
                [float(x) for x in ds.ImagePositionPatient],
                ds.RescaleIntercept,
            )
        )
    return out


def scan_dicomsdl(paths):
    out = []
    for p in paths:
        ds = dicomsdl.open_file(p)
        out.append(
            (
                ds.SOPInstanceUID,
                ds.SeriesInstanceUID,
                ds.InstanceNumber,
                list(ds.ImagePositionPatient),
                ds.RescaleIntercept,
            )
        )
    return out


def _same(a, b) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        for u, v in zip(x, y):
            if isinstance(u, list):
                if [float(t) for t in u] != [float(t) for t in v]:
                    return False
            elif isinstance(u, float) or isinstance(v, float):
                if float(u) != float(v):
                    return False
            elif str(u) != str(v):
                return False
    return True


@pytest.fixture(scope="module")
def reference(ct_series):
    return scan_pydicom(ct_series)


@pytest.mark.benchmark(group="header-scan-300")
@pytest.mark.parametrize("impl", ["fastdicom-rust", "fastdicom-python", "pydicom", "dicomsdl"])
def test_header_scan(benchmark, ct_series, reference, impl):
    if impl == "dicomsdl" and dicomsdl is None:
        pytest.skip("dicomsdl not installed")
    if impl == "fastdicom-rust" and fastdicom.backend_info()["parse"] != "rust":
        pytest.skip("native backend not in use")
    fn = {
        "fastdicom-rust": lambda: scan_fastdicom(ct_series, "rust"),
        "fastdicom-python": lambda: scan_fastdicom(ct_series, "python"),
        "pydicom": lambda: scan_pydicom(ct_series),
        "dicomsdl": lambda: scan_dicomsdl(ct_series),
    }[impl]
    result = benchmark.pedantic(fn, rounds=15, warmup_rounds=2)
    benchmark.extra_info["files"] = len(ct_series)
    benchmark.extra_info["correct"] = _same(result, reference)
    assert benchmark.extra_info["correct"]


@pytest.mark.benchmark(group="header-scan-memory")
def test_header_scan_memory_is_flat(benchmark, ct_series):
    """Resident memory after scanning the series 5 times stays within a few MB of after once."""
    proc = psutil.Process(os.getpid())
    scan_fastdicom(ct_series, None)
    gc.collect()
    before = proc.memory_info().rss
    for _ in range(5):
        scan_fastdicom(ct_series, None)
    gc.collect()
    after = proc.memory_info().rss
    benchmark.extra_info["rss_growth_mb"] = round((after - before) / 2**20, 2)
    benchmark.extra_info["correct"] = after - before < 8 * 2**20
    benchmark.pedantic(lambda: scan_fastdicom(ct_series, None), rounds=3)
    assert benchmark.extra_info["correct"]


def _corpus_paths():
    paths = []
    for cf in corpus_files():
        p = cf.resolve()
        if p is not None:
            try:
                _touch(fastdicom.read(p), "vr")
                _touch(pydicom.dcmread(p, force=True), "VR")
            except Exception:  # malformed on purpose: not part of the timing
                continue
            paths.append(p)
    return paths


def _touch(ds, vr_attr: str) -> int:
    """Access every value, recursively; return the element count (fastdicom: "vr", pydicom: "VR")."""
    n = 0
    for e in ds:
        v = e.value
        n += 1
        if getattr(e, vr_attr) == "SQ":
            for item in v:
                n += _touch(item, vr_attr)
    return n


@pytest.fixture(scope="module")
def corpus_paths():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _corpus_paths()


@pytest.mark.benchmark(group="corpus-full-parse")
@pytest.mark.parametrize("impl", ["fastdicom-rust", "fastdicom-python", "pydicom"])
def test_corpus_full_parse(benchmark, corpus_paths, impl):
    if impl == "fastdicom-rust" and fastdicom.backend_info()["parse"] != "rust":
        pytest.skip("native backend not in use")

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if impl == "pydicom":
                return sum(_touch(pydicom.dcmread(p, force=True), "VR") for p in corpus_paths)
            backend = "rust" if impl == "fastdicom-rust" else "python"
            return sum(_touch(fastdicom.read(p, backend=backend), "vr") for p in corpus_paths)

    count = benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = sum(_touch(pydicom.dcmread(p, force=True), "VR") for p in corpus_paths)
    benchmark.extra_info["files"] = len(corpus_paths)
    benchmark.extra_info["elements"] = count
    benchmark.extra_info["correct"] = count == expected
    assert benchmark.extra_info["correct"]
