"""JPEG Lossless SV1 benchmarks, side by side: fastdicom's native libjpeg-turbo 3.1 against imagecodecs
(libjpeg-turbo 3.1), pydicom 3 with its installed plugin (python-gdcm) and dicomsdl; plus the 500-frame
multiframe in JPEG Lossless SV1, JPEG-LS, JPEG 2000 Lossless and HTJ2K Lossless.

The 300-slice torso phantom (512x512 int16, ``conftest.realistic_ct``: it compresses like real CT) is encoded once per session by imagecodecs (lossless, predictor 1,
16 bits) for the codec benchmarks, and written as a JPEG Lossless SV1 DICOM series by fastdicom.transcode
for the file benchmarks (and in JPEG-LS, JPEG 2000 and HTJ2K, the series benchmark covering all four). Every
benchmark checks its result against the source pixels.

Run: python3 -m pytest benchmarks/test_bench_jpeg.py --benchmark-enable
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import fastdicom
from fastdicom.pixels import _codecs_rust as native

from .conftest import replace_atomically, stale
from .test_bench_codecs import INDEX, LOSSLESS_16, SHAPE, _finish, _finish_encode, _run, frame, series_copy

pydicom = pytest.importorskip("pydicom")
imagecodecs = pytest.importorskip("imagecodecs")
try:
    import dicomsdl
except ImportError:  # pragma: no cover - optional anchor
    dicomsdl = None


@pytest.fixture(scope="session")
def series_pixels(codec_series):
    return [fastdicom.read(p).pixel_array for p in codec_series]


@pytest.fixture(scope="session")
def sv1_frames(series_pixels):
    return [
        bytes(imagecodecs.jpeg8_encode(a.view(np.uint16), lossless=True, predictor=1, bitspersample=16))
        for a in series_pixels
    ]


INTO = {
    "fastdicom": lambda f, out: native.jpeg_decode(f, frame(out)),
    "imagecodecs": lambda f, out: imagecodecs.jpeg8_decode(f, out=out),
}


@pytest.mark.benchmark(group="jpeg-sv1-decode-300-frames")
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("impl", ["fastdicom", "imagecodecs"])
def test_sv1_decode(benchmark, sv1_frames, series_pixels, impl, threads):
    """The codec alone: 300 frames from memory into one preallocated array, one thread or two."""
    decode = INTO[impl]

    def run():
        out = np.empty((len(sv1_frames), *SHAPE), dtype=np.uint16)
        _run(lambda k: decode(sv1_frames[k], out[k]), range(len(sv1_frames)), threads)
        return out.view(np.int16)

    result = benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    _finish(benchmark, list(result), series_pixels)


@pytest.mark.benchmark(group="jpeg-sv1-encode-300-frames")
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("impl", ["fastdicom", "imagecodecs"])
def test_sv1_encode(benchmark, series_pixels, impl, threads):
    if impl == "fastdicom":
        encode = lambda a: native.jpeg_encode(a, LOSSLESS_16)  # noqa: E731
    else:
        encode = lambda a: imagecodecs.jpeg8_encode(  # noqa: E731
            a.view(np.uint16), lossless=True, predictor=1, bitspersample=16
        )
    result = benchmark.pedantic(_run, args=(encode, series_pixels, threads), rounds=3, warmup_rounds=1)
    back = native.jpeg_decode(result[INDEX], frame()).view(np.int16)
    _finish_encode(benchmark, result, back, series_pixels)


@pytest.mark.parametrize("target", ["jpeg-lossless", "jls", "j2k", "htj2k"])
@pytest.mark.parametrize(
    "impl", ["fastdicom.decode-1-thread", "fastdicom.decode-2-threads", "dicomsdl", "pydicom-loop"]
)
def test_series_decode(benchmark, codec_series, series_pixels, target, impl):
    """The 300 series files in one compressed syntax, read and decoded into one array (pydicom with its
    installed plugins: python-gdcm, pyjpegls, pylibjpeg-openjpeg)."""
    benchmark.group = f"series-decode-{target}"  # one group per syntax
    paths = series_copy(codec_series, target)
    if impl == "dicomsdl":
        if dicomsdl is None:
            pytest.skip("dicomsdl not installed")
        fn = lambda: np.stack([dicomsdl.open_file(p).pixelData(storedvalue=True) for p in paths])  # noqa: E731
    elif impl == "pydicom-loop":
        fn = lambda: np.stack([pydicom.dcmread(p).pixel_array for p in paths])  # noqa: E731
    else:
        threads = 1 if impl.endswith("1-thread") else 2
        fn = lambda: fastdicom.decode(paths, threads=threads)  # noqa: E731
    if not impl.startswith("fastdicom"):
        try:
            fn()
        except Exception as exc:  # an anchor without a decoder for this syntax (dicomsdl has no HTJ2K)
            pytest.skip(f"{impl} cannot decode {target} here: {type(exc).__name__}: {exc}")
    result = benchmark.pedantic(fn, rounds=3, warmup_rounds=1)
    _finish(benchmark, list(result), series_pixels)


def _multiframe(unc: str, target: str) -> str:
    dst = os.path.join(os.path.dirname(unc), f"mf500_{target}.dcm")
    if stale(dst, unc):
        replace_atomically(dst, lambda tmp: fastdicom.write(tmp, fastdicom.transcode(fastdicom.read(unc), target)))
    return dst


@pytest.mark.parametrize("target", ["jpeg-lossless", "jls", "j2k", "htj2k"])
@pytest.mark.parametrize("impl", ["fastdicom-2-threads", "fastdicom-1-thread", "dicomsdl", "pydicom"])
def test_multiframe(benchmark, codec_multiframe, target, impl):
    """The whole 500-frame file into one array."""
    benchmark.group = f"multiframe-500-frames-{target}"  # one group per syntax, so ratios compare like with like
    unc = codec_multiframe
    path = _multiframe(unc, target)
    if impl == "dicomsdl":
        if dicomsdl is None:
            pytest.skip("dicomsdl not installed")

        def fn():
            df = dicomsdl.open_file(path)
            n = int(df.NumberOfFrames)
            return np.stack([df.pixelData(i, storedvalue=True) for i in range(n)])

    elif impl == "pydicom":
        fn = lambda: pydicom.dcmread(path).pixel_array  # noqa: E731
    elif impl == "fastdicom-2-threads":
        fn = lambda: fastdicom.read(path).pixels.array()  # noqa: E731 - a pool over the cores (2 here)
    else:

        def fn():
            px = fastdicom.read(path).pixels
            out = np.empty(px.shape, dtype=px.dtype)
            return px.decode_into(out)

    if not impl.startswith("fastdicom"):
        try:
            fn()
        except Exception as exc:  # an anchor without a decoder for this syntax (pydicom has no HTJ2K plugin here)
            pytest.skip(f"{impl} cannot decode {target} here: {type(exc).__name__}: {exc}")
    result = benchmark.pedantic(fn, rounds=3, warmup_rounds=1)
    ref = np.asarray(fastdicom.read(unc).pixels.frame(250))
    benchmark.extra_info["MB/s"] = round(result.nbytes / 1e6 / benchmark.stats.stats.median, 1)
    benchmark.extra_info["correct"] = bool(np.array_equal(result[250], ref))
    assert benchmark.extra_info["correct"]
