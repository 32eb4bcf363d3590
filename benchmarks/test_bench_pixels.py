"""Pixel benchmarks, side by side: fastdicom, pydicom 3, imagecodecs, pylibjpeg-rle, numpy.

Run: python3 -m pytest benchmarks -k pixels --benchmark-enable
"""

from __future__ import annotations

import os
import struct
import tempfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastdicom
from fastdicom import _backends
from fastdicom.pixels.codecs import DecodeFrame, EncodeOptions

pydicom = pytest.importorskip("pydicom")
try:
    import dicomsdl
except ImportError:  # pragma: no cover - optional anchor
    dicomsdl = None
try:
    import imagecodecs
except ImportError:  # pragma: no cover - optional anchor
    imagecodecs = None
try:
    from rle.utils import decode_frame as pylibjpeg_rle_decode
    from rle.utils import encode_pixel_data as pylibjpeg_rle_encode
except ImportError:  # pragma: no cover - optional anchor
    pylibjpeg_rle_decode = pylibjpeg_rle_encode = None

FRAMES = int(os.environ.get("FASTDICOM_BENCH_FRAMES", "500"))
ROWS = COLS = 512
RLE = "1.2.840.10008.1.2.5"


def _rle_encode(frame: np.ndarray) -> bytes:
    return _backends.resolve("rle_encode")[1].rle_encode(frame, EncodeOptions(16))


def _phantom(i: int) -> np.ndarray:
    yy, xx = np.mgrid[0:ROWS, 0:COLS]
    r = np.hypot(yy - ROWS / 2, xx - COLS / 2)
    img = np.where(r < 230, 40 + (i % 60), -1000).astype("<i2")
    img[100 + i % 200 : 140 + i % 200, 200:260] = 300 + i
    img[(yy * 7 + xx * 3 + i) % 17 == 0] += 5  # texture, so RLE has literals
    return img


def _header(frames: int, ts: str) -> bytes:
    ds = fastdicom.Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2.1", fastdicom.synth.new_uid()
    ds.Rows, ds.Columns, ds.NumberOfFrames, ds.SamplesPerPixel = ROWS, COLS, frames, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    return fastdicom.to_bytes(ds, transfer_syntax=ts)


@pytest.fixture(scope="session")
def multiframe():
    """500-frame 512x512 int16 Enhanced-CT-like files: uncompressed and RLE (one fragment per frame, BOT filled)."""
    folder = os.environ.get("FASTDICOM_BENCH_DIR") or tempfile.mkdtemp(prefix="fastdicom-bench-")
    unc = os.path.join(folder, f"mf{FRAMES}_unc.dcm")
    rle = os.path.join(folder, f"mf{FRAMES}_rle.dcm")
    if not (os.path.exists(unc) and os.path.exists(rle)):
        frames = [_phantom(i) for i in range(FRAMES)]
        with open(unc, "wb") as f:
            f.write(_header(FRAMES, "1.2.840.10008.1.2.1"))
            f.write(struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OW", 0, FRAMES * ROWS * COLS * 2))
            for fr in frames:
                f.write(fr.tobytes())
        encoded = [_rle_encode(fr) for fr in frames]
        offsets, pos = [], 0
        for e in encoded:
            offsets.append(pos)
            pos += 8 + len(e)
        with open(rle, "wb") as f:
            f.write(_header(FRAMES, RLE))
            f.write(struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFF))
            f.write(struct.pack("<HHL", 0xFFFE, 0xE000, 4 * FRAMES) + struct.pack(f"<{FRAMES}L", *offsets))
            for e in encoded:
                f.write(struct.pack("<HHL", 0xFFFE, 0xE000, len(e)) + e)
            f.write(struct.pack("<HHL", 0xFFFE, 0xE0DD, 0))
    return unc, rle


INDEX = 250


@pytest.mark.parametrize("encoding", ["uncompressed", "rle"])
@pytest.mark.parametrize("impl", ["fastdicom", "pydicom"])
def test_frame_250(benchmark, multiframe, encoding, impl):
    benchmark.group = f"frame-250-{encoding}"  # one group per encoding, so ratios compare like with like
    path = multiframe[0] if encoding == "uncompressed" else multiframe[1]
    from pydicom.pixels import pixel_array

    if impl == "fastdicom":
        result = benchmark(lambda: fastdicom.read(path).pixels.frame(INDEX))
    else:
        result = benchmark(lambda: pixel_array(path, index=INDEX))
    benchmark.extra_info["correct"] = bool(np.array_equal(result, _phantom(INDEX)))
    assert benchmark.extra_info["correct"]


@pytest.mark.benchmark(group="multiframe-into-one-array")
@pytest.mark.parametrize("impl", ["fastdicom", "numpy.fromfile"])
def test_multiframe_into_one_array(benchmark, multiframe, impl):
    path = multiframe[0]
    ds = fastdicom.read(path)
    offset = ds.PixelData and ds["PixelData"]._value_offset
    n = FRAMES * ROWS * COLS
    if impl == "fastdicom":
        # materialised into a fresh array (a view would cost nothing until touched)
        result = benchmark.pedantic(lambda: fastdicom.decode([path], threads=1), rounds=5)
    else:
        result = benchmark.pedantic(
            lambda: np.fromfile(path, dtype="<i2", count=n, offset=offset).reshape(FRAMES, ROWS, COLS), rounds=5
        )
    benchmark.extra_info["correct"] = bool(np.array_equal(result[INDEX], _phantom(INDEX)))
    assert benchmark.extra_info["correct"]


@pytest.fixture(scope="session")
def rle_frames(multiframe):
    px = fastdicom.read(multiframe[1]).pixels
    return [bytes(px.encoded_frame(i)) for i in range(len(px))]


def _decode_all_fastdicom(frames, threads):
    """Each frame into a fresh array, as ``Frames.frame`` does (imagecodecs also returns arrays)."""
    decode = _backends.resolve("rle", "rust")[1].rle_decode

    def one(f):
        return decode(f, DecodeFrame(np.empty((ROWS, COLS), dtype="<i2"), ROWS, COLS, 1, 16, 16, 1, "MONOCHROME2", RLE))

    if threads == 1:
        return [one(f) for f in frames]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, frames))


@pytest.mark.benchmark(group="rle-decode-frames")
@pytest.mark.parametrize("impl", ["fastdicom-1-thread", "fastdicom-2-threads", "imagecodecs", "pylibjpeg-rle"])
def test_rle_decode(benchmark, rle_frames, impl):
    if impl == "imagecodecs" and imagecodecs is None:
        pytest.skip("imagecodecs not installed")
    if impl == "pylibjpeg-rle" and pylibjpeg_rle_decode is None:
        pytest.skip("pylibjpeg-rle not installed")
    if impl.startswith("fastdicom") and fastdicom.backend_info()["rle"] != "rust":
        pytest.skip("native backend not in use")
    if impl == "fastdicom-1-thread":
        fn = lambda: _decode_all_fastdicom(rle_frames, 1)  # noqa: E731
    elif impl == "fastdicom-2-threads":
        fn = lambda: _decode_all_fastdicom(rle_frames, 2)  # noqa: E731
    elif impl == "imagecodecs":
        fn = lambda: [imagecodecs.dicomrle_decode(f, "<i2") for f in rle_frames]  # noqa: E731
    else:
        fn = lambda: [pylibjpeg_rle_decode(f, ROWS * COLS, 16, "<") for f in rle_frames]  # noqa: E731
    result = benchmark.pedantic(fn, rounds=5, warmup_rounds=1)
    got = np.frombuffer(bytes(result[INDEX]), dtype="<i2")[: ROWS * COLS].reshape(ROWS, COLS)
    benchmark.extra_info["MB"] = round(len(rle_frames) * ROWS * COLS * 2 / 1e6, 1)
    benchmark.extra_info["correct"] = bool(np.array_equal(got, _phantom(INDEX)))
    assert benchmark.extra_info["correct"]


@pytest.mark.benchmark(group="rle-encode-50-frames")
@pytest.mark.parametrize("impl", ["fastdicom", "pylibjpeg-rle"])
def test_rle_encode(benchmark, impl):
    frames = [_phantom(i) for i in range(50)]
    if impl == "pylibjpeg-rle":
        if pylibjpeg_rle_encode is None:
            pytest.skip("pylibjpeg-rle not installed")
        fn = lambda: [  # noqa: E731
            pylibjpeg_rle_encode(
                f.tobytes(),
                rows=ROWS,
                columns=COLS,
                samples_per_pixel=1,
                bits_allocated=16,
                byteorder="<",
            )
            for f in frames
        ]
    else:
        fn = lambda: [_rle_encode(f) for f in frames]  # noqa: E731
    result = benchmark.pedantic(fn, rounds=5, warmup_rounds=1)
    decode = _backends.resolve("rle")[1].rle_decode
    back = decode(result[7], DecodeFrame(np.empty((ROWS, COLS), dtype="<i2"), ROWS, COLS, 1, 16, 16, 1, "", RLE))
    benchmark.extra_info["correct"] = bool(np.array_equal(back, frames[7]))
    assert benchmark.extra_info["correct"]


@pytest.mark.benchmark(group="series-decode-uncompressed")
@pytest.mark.parametrize("impl", ["fastdicom.decode", "pydicom-loop"])
def test_series_decode(benchmark, ct_series, impl):
    if impl == "pydicom-loop":
        fn = lambda: np.stack([pydicom.dcmread(p).pixel_array for p in ct_series])  # noqa: E731
    else:
        fn = lambda: fastdicom.decode(ct_series)  # noqa: E731
    result = benchmark.pedantic(fn, rounds=5, warmup_rounds=1)
    ref = pydicom.dcmread(ct_series[INDEX % len(ct_series)]).pixel_array
    benchmark.extra_info["files"] = len(ct_series)
    benchmark.extra_info["correct"] = bool(np.array_equal(result[INDEX % len(ct_series)], ref))
    assert benchmark.extra_info["correct"]


@pytest.mark.benchmark(group="series-decode-rle")
@pytest.mark.parametrize(
    "impl",
    ["fastdicom.decode-1-thread", "fastdicom.decode-2-threads", "pydicom+imagecodecs", "dicomsdl", "pydicom-loop"],
)
def test_series_decode_rle(benchmark, ct_series_rle, impl):
    """The 300-slice series in RLE Lossless, read and decoded into one array."""
    paths = ct_series_rle
    if impl == "pydicom+imagecodecs":
        if imagecodecs is None:
            pytest.skip("imagecodecs not installed")
        from pydicom.encaps import generate_frames

        def fn():
            out = []
            for p in paths:
                ds = pydicom.dcmread(p)
                frame = next(generate_frames(ds.PixelData, number_of_frames=1))
                raw = imagecodecs.dicomrle_decode(frame, "<i2")
                out.append(np.frombuffer(raw, "<i2").reshape(ds.Rows, ds.Columns))
            return np.stack(out)
    elif impl == "dicomsdl":
        if dicomsdl is None:
            pytest.skip("dicomsdl not installed")
        fn = lambda: np.stack([dicomsdl.open_file(p).pixelData(storedvalue=True) for p in paths])  # noqa: E731
    elif impl == "pydicom-loop":
        fn = lambda: np.stack([pydicom.dcmread(p).pixel_array for p in paths])  # noqa: E731
    else:
        threads = 1 if impl.endswith("1-thread") else 2
        fn = lambda: fastdicom.decode(paths, threads=threads)  # noqa: E731
    result = benchmark.pedantic(fn, rounds=3, warmup_rounds=1)
    k = INDEX % len(paths)
    benchmark.extra_info["MB"] = round(result.nbytes / 1e6, 1)
    benchmark.extra_info["correct"] = bool(np.array_equal(result[k], pydicom.dcmread(paths[k]).pixel_array))
    assert benchmark.extra_info["correct"]
