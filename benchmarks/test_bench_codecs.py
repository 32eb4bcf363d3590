"""Codec benchmarks, side by side, frames from memory: fastdicom's native JPEG 2000 / HTJ2K (OpenJPEG 2.5.3),
HTJ2K through OpenJPH 0.9 (Cython) and JPEG-LS (CharLS 2.4.5) against imagecodecs (OpenJPEG 2.5.4, OpenJPH 0.26,
CharLS 2.4.3).

The 300-slice torso phantom (512x512 int16, ``conftest.realistic_ct``: it compresses like real CT) is encoded
once per session: J2K lossless by imagecodecs' OpenJPEG, HTJ2K lossless by OpenJPH, JPEG-LS lossless by
imagecodecs' CharLS. The series read from files, against pydicom and dicomsdl, is in
``test_bench_jpeg.py::test_series_decode``. Every benchmark checks its result against the source pixels.

Run: python3 -m pytest benchmarks/test_bench_codecs.py --benchmark-enable
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastdicom
from fastdicom.pixels import _codecs_rust as native
from fastdicom.pixels.codecs import DecodeFrame, EncodeOptions

from .conftest import replace_atomically, stale

try:
    from fastdicom.pixels import _codecs_openjph as openjph
except ImportError:  # pragma: no cover - the OpenJPH binding is optional
    openjph = None

imagecodecs = pytest.importorskip("imagecodecs")

INDEX = 150
SHAPE = (512, 512)


def frame(out: np.ndarray | None = None) -> DecodeFrame:
    """What the codecs are given for one series frame (512x512, 16 bits), decoded into ``out`` (int16 when new)."""
    if out is None:
        out = np.empty(SHAPE, np.int16)
    return DecodeFrame(out, *SHAPE, 1, 16, 16, int(out.dtype.kind == "i"), "MONOCHROME2", "")


LOSSLESS_16 = EncodeOptions(16)


@pytest.fixture(scope="session")
def series_pixels(codec_series):
    return [fastdicom.read(p).pixel_array for p in codec_series]


@pytest.fixture(scope="session")
def j2k_frames(series_pixels):
    return [imagecodecs.jpeg2k_encode(a, codecformat="J2K", reversible=True, numthreads=1) for a in series_pixels]


@pytest.fixture(scope="session")
def jls_frames(series_pixels):
    return [imagecodecs.jpegls_encode(a.view(np.uint16)) for a in series_pixels]


@pytest.fixture(scope="session")
def htj2k_frames(series_pixels):
    return [imagecodecs.htj2k_encode(a, reversible=True) for a in series_pixels]


def series_copy(series: list[str], target: str) -> list[str]:
    """``series`` transcoded to ``target`` once, into a folder of that name next to it."""
    folder = os.path.join(os.path.dirname(series[0]), target)
    os.makedirs(folder, exist_ok=True)
    out = []
    for p in series:
        dst = os.path.join(folder, os.path.basename(p))
        if stale(dst, p):
            replace_atomically(
                dst, lambda tmp, p=p: fastdicom.write(tmp, fastdicom.transcode(fastdicom.read(p), target))
            )
        out.append(dst)
    return out


def _run(decode, frames, threads):
    if threads == 1:
        return [decode(f) for f in frames]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(decode, frames))


def _finish(benchmark, result, series_pixels):
    nbytes = sum(a.nbytes for a in result)
    benchmark.extra_info["MB/s"] = round(nbytes / 1e6 / benchmark.stats.stats.median, 1)
    benchmark.extra_info["correct"] = bool(np.array_equal(np.asarray(result[INDEX]), series_pixels[INDEX]))
    assert benchmark.extra_info["correct"]


def _finish_encode(benchmark, result, back, series_pixels):
    """Record MB/s (of source pixels) and the ratio; ``back``, frame INDEX decoded again, must equal its source."""
    nbytes = sum(a.nbytes for a in series_pixels)
    benchmark.extra_info["MB/s"] = round(nbytes / 1e6 / benchmark.stats.stats.median, 1)
    benchmark.extra_info["ratio"] = round(nbytes / sum(len(r) for r in result), 2)
    benchmark.extra_info["correct"] = bool(np.array_equal(back, series_pixels[INDEX]))
    assert benchmark.extra_info["correct"]


DECODERS = {
    "fastdicom": lambda f: native.jpeg2000_decode(f, frame()),
    "imagecodecs-openjpeg": lambda f: imagecodecs.jpeg2k_decode(f, numthreads=1),
    "imagecodecs-openjph": lambda f: imagecodecs.htj2k_decode(f),
    "fastdicom-openjph": lambda f: openjph.htj2k_decode(f, frame()),
    "fastdicom-charls": lambda f: native.jpegls_decode(f, frame()).view(np.int16),
    "imagecodecs-charls": lambda f: imagecodecs.jpegls_decode(f).view(np.int16),
}


@pytest.mark.benchmark(group="j2k-lossless-decode-300-frames")
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("impl", ["fastdicom", "imagecodecs-openjpeg"])
def test_j2k_decode(benchmark, j2k_frames, series_pixels, impl, threads):
    """The codec alone: 300 frames from memory, one thread or two (both release the GIL)."""
    result = benchmark.pedantic(_run, args=(DECODERS[impl], j2k_frames, threads), rounds=3, warmup_rounds=1)
    _finish(benchmark, result, series_pixels)


@pytest.mark.benchmark(group="htj2k-lossless-decode-300-frames")
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("impl", ["fastdicom", "fastdicom-openjph", "imagecodecs-openjpeg", "imagecodecs-openjph"])
def test_htj2k_decode(benchmark, htj2k_frames, series_pixels, impl, threads):
    """fastdicom: OpenJPEG's HT decoder (Rust); fastdicom-openjph: OpenJPH 0.9 (Cython), the registry's first."""
    if impl == "fastdicom-openjph" and openjph is None:
        pytest.skip("the OpenJPH binding is not built")
    result = benchmark.pedantic(_run, args=(DECODERS[impl], htj2k_frames, threads), rounds=3, warmup_rounds=1)
    _finish(benchmark, result, series_pixels)


INTO = {
    "fastdicom-charls": lambda f, out: native.jpegls_decode(f, frame(out)),
    "imagecodecs-charls": lambda f, out: imagecodecs.jpegls_decode(f, out=out),
}


@pytest.mark.benchmark(group="jpegls-lossless-decode-300-frames")
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("impl", ["fastdicom-charls", "imagecodecs-charls"])
def test_jpegls_decode(benchmark, jls_frames, series_pixels, impl, threads):
    """300 frames decoded into one preallocated array (both libraries write into it)."""
    decode = INTO[impl]

    def run():
        out = np.empty((len(jls_frames), *SHAPE), dtype=np.uint16)
        _run(lambda k: decode(jls_frames[k], out[k]), range(len(jls_frames)), threads)
        return out.view(np.int16)

    result = benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    _finish(benchmark, list(result), series_pixels)


@pytest.mark.benchmark(group="jpegls-lossless-encode-300-frames")
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("impl", ["fastdicom-charls", "imagecodecs-charls"])
def test_jpegls_encode(benchmark, series_pixels, impl, threads):
    if impl == "fastdicom-charls":
        encode = lambda a: native.jpegls_encode(a, LOSSLESS_16)  # noqa: E731
    else:
        encode = lambda a: imagecodecs.jpegls_encode(a.view(np.uint16))  # noqa: E731
    result = benchmark.pedantic(_run, args=(encode, series_pixels, threads), rounds=3, warmup_rounds=1)
    back = native.jpegls_decode(result[INDEX], frame()).view(np.int16)
    _finish_encode(benchmark, result, back, series_pixels)


@pytest.mark.benchmark(group="j2k-lossless-encode-300-frames")
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("impl", ["fastdicom", "imagecodecs-openjpeg"])
def test_j2k_encode(benchmark, series_pixels, impl, threads):
    if impl == "fastdicom":
        encode = lambda a: native.jpeg2000_encode(a, LOSSLESS_16)  # noqa: E731
    else:
        encode = lambda a: imagecodecs.jpeg2k_encode(a, codecformat="J2K", reversible=True, numthreads=1)  # noqa: E731
    result = benchmark.pedantic(_run, args=(encode, series_pixels, threads), rounds=3, warmup_rounds=1)
    back = native.jpeg2000_decode(result[INDEX], frame())
    _finish_encode(benchmark, result, back, series_pixels)


@pytest.mark.benchmark(group="htj2k-lossless-encode-300-frames")
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("impl", ["fastdicom-openjph", "imagecodecs-openjph"])
def test_htj2k_encode(benchmark, series_pixels, impl, threads):
    """Both OpenJPH (0.9 here, imagecodecs' own newer one), reversible, 5 levels, 64x64 blocks, int16 samples."""
    if impl == "fastdicom-openjph":
        if openjph is None:
            pytest.skip("the OpenJPH binding is not built")
        encode = lambda a: openjph.htj2k_encode(a, LOSSLESS_16)  # noqa: E731
    else:
        encode = lambda a: imagecodecs.htj2k_encode(a, reversible=True)  # noqa: E731
    result = benchmark.pedantic(_run, args=(encode, series_pixels, threads), rounds=3, warmup_rounds=1)
    back = native.htj2k_decode(result[INDEX], frame())
    _finish_encode(benchmark, result, back, series_pixels)
