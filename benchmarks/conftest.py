from __future__ import annotations

import os
import struct
import tempfile

import numpy as np
import pytest

import fastdicom
from fastdicom import _backends
from fastdicom.pixels.codecs import EncodeOptions
from fastdicom.synth import ct_slice, enhanced_ct, new_uid, write_ct_series

SLICES = int(os.environ.get("FASTDICOM_BENCH_SLICES", "300"))


@pytest.fixture(scope="session")
def ct_series():
    """A 300-slice 512x512 int16 CT series (about 100 attributes, sequences, a private block)."""
    folder = os.environ.get("FASTDICOM_BENCH_DIR")
    if folder and os.path.isdir(folder):
        found = sorted(f for f in os.listdir(folder) if f.startswith("CT") and f.endswith(".dcm"))
        if len(found) >= SLICES:
            return [os.path.join(folder, f) for f in found[:SLICES]]
        return write_ct_series(folder, SLICES)
    tmp = tempfile.mkdtemp(prefix="fastdicom-bench-")
    return write_ct_series(tmp, SLICES)


EXPLICIT_LE = b"1.2.840.10008.1.2.1\0"
RLE_LOSSLESS = b"1.2.840.10008.1.2.5\0"  # same length: the File Meta keeps its group length


def rle_copy(src: str, dst: str) -> None:
    """Write ``src`` (explicit VR little endian) again with its Pixel Data RLE-encoded (BOT, one fragment)."""
    data = open(src, "rb").read()
    ds = fastdicom.read(src)
    px = ds.pixels
    encode = _backends.resolve("rle_encode", "rust")[1].rle_encode
    frame = encode(px.frame(0), EncodeOptions(px.bits_stored))
    if len(frame) % 2:
        frame += b"\0"
    header = ds["PixelData"]._hdr
    head = data[:header].replace(EXPLICIT_LE, RLE_LOSSLESS, 1)
    pixel = struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFF)
    pixel += struct.pack("<HHL", 0xFFFE, 0xE000, 4) + struct.pack("<L", 0)
    pixel += struct.pack("<HHL", 0xFFFE, 0xE000, len(frame)) + frame
    pixel += struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
    with open(dst, "wb") as f:
        f.write(head + pixel)


@pytest.fixture(scope="session")
def ct_series_rle(ct_series):
    """The CT series again in RLE Lossless (kept next to it under FASTDICOM_BENCH_DIR/rle)."""
    base = os.environ.get("FASTDICOM_BENCH_DIR") or tempfile.mkdtemp(prefix="fastdicom-bench-")
    folder = os.path.join(base, "rle")
    os.makedirs(folder, exist_ok=True)
    out = []
    for p in ct_series:
        dst = os.path.join(folder, os.path.basename(p))
        if not os.path.exists(dst):
            rle_copy(p, dst)
        out.append(dst)
    return out


# --- Codec fixtures: pixels that compress like real CT ---------------------------------------------
#
# The synthetic series above is two flat regions: lossless codecs reach 15-225:1 on it, which flatters
# whatever is memory-bound and says little about entropy coding. The codec benchmarks use the slices
# below instead: a torso phantom (fat, muscle, lungs, a vessel, an organ, a vertebra, the table) with
# blurred edges, tissue texture, uncorrelated quantum noise (sigma 12 HU), air clipped at -1024 HU and
# -2000 HU outside the reconstruction circle. JPEG 2000 lossless compresses it about 2.9:1, JPEG-LS
# 3.1:1 and HTJ2K 2.8:1, as the public corpus's real 512x512 CT (explicit_VR-UN.dcm: 2.83:1) does.
REALISTIC_VERSION = "v1"  # bump when the model changes: cached series are kept per version


def _blur(a: np.ndarray, passes: int) -> np.ndarray:
    """Separable [1, 2, 1] / 4 smoothing, ``passes`` times."""
    a = a.astype(np.float32)
    for _ in range(passes):
        p = np.pad(a, 1, mode="edge")
        a = (p[:-2, 1:-1] + 2 * p[1:-1, 1:-1] + p[2:, 1:-1]) / 4
        p = np.pad(a, 1, mode="edge")
        a = (p[1:-1, :-2] + 2 * p[1:-1, 1:-1] + p[1:-1, 2:]) / 4
    return a


def realistic_ct(index: int, *, rows: int = 512, columns: int = 512, slices: int = 300) -> np.ndarray:
    """Slice ``index`` of ``slices`` of the torso phantom as int16 HU (deterministic per index)."""
    t = index / max(slices - 1, 1)
    yy, xx = np.mgrid[0:rows, 0:columns].astype(np.float32)
    y = (yy - rows / 2) / (rows / 2)
    x = (xx - columns / 2) / (columns / 2)

    def ellipse(cx: float, cy: float, ax: float, ay: float) -> np.ndarray:
        return ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 < 1

    img = np.full((rows, columns), -1000.0, np.float32)
    body = ellipse(0, 0.05, 0.80, 0.60)
    img[body] = -100.0  # subcutaneous fat
    img[ellipse(0, 0.05, 0.74, 0.54)] = 40.0  # muscle and soft tissue
    lung = 0.25 + 0.1 * np.sin(np.pi * t)  # the lungs grow and shrink along the series
    for cx in (-0.35, 0.35):
        img[ellipse(cx, -0.02, lung, lung * 1.5)] = -850.0
    img[ellipse(0.12, 0.05, 0.12, 0.12)] = 180.0  # contrast-filled vessel
    img[ellipse(-0.3 + 0.1 * t, 0.25, 0.25, 0.18)] = 60.0  # an organ that moves
    img[ellipse(0, 0.42, 0.1, 0.08)] = 900.0  # vertebral body
    img[ellipse(0, 0.42, 0.07, 0.055)] = 250.0  # marrow
    img[(np.abs(y - 0.72) < 0.012) & (np.abs(x) < 0.7)] = 300.0  # table
    img = _blur(img, 2)  # partial-volume edges
    rng = np.random.default_rng(index)
    texture = _blur(rng.normal(0.0, 1.0, (rows, columns)), 2)
    img += np.where(body, texture * (50.0 / texture.std()), 0.0)
    img += rng.normal(0.0, 12.0, (rows, columns)).astype(np.float32)
    img = np.maximum(img, -1024.0)
    img[np.hypot(x, y) > 0.98] = -2000.0
    return np.rint(img).astype("<i2")


_SESSION_TMP: list[str] = []


def _bench_folder(name: str) -> str:
    """``FASTDICOM_BENCH_DIR``/``name``-version, or one temporary folder per session without it."""
    base = os.environ.get("FASTDICOM_BENCH_DIR")
    if not base:
        if not _SESSION_TMP:
            _SESSION_TMP.append(tempfile.mkdtemp(prefix="fastdicom-bench-"))
        base = _SESSION_TMP[0]
    folder = os.path.join(base, f"{name}-{REALISTIC_VERSION}")
    os.makedirs(folder, exist_ok=True)
    return folder


def stale(dst: str, src: str) -> bool:
    """Whether ``dst``, made from ``src``, is missing or older than it."""
    return not os.path.exists(dst) or os.path.getmtime(dst) < os.path.getmtime(src)


def replace_atomically(dst: str, write) -> None:
    """``write(path)`` into a temporary name of this process, then rename it to ``dst``."""
    tmp = f"{dst}.{os.getpid()}.tmp"
    write(tmp)
    os.replace(tmp, dst)


@pytest.fixture(scope="session")
def codec_series():
    """300 CT slices of the torso phantom (512x512 int16, explicit VR little endian), cached per model version."""
    folder = _bench_folder(f"realistic-{SLICES}")  # the phantom depends on the slice count
    paths = [os.path.join(folder, f"CT{i + 1:04d}.dcm") for i in range(SLICES)]
    if not all(os.path.exists(p) for p in paths):
        study, series, frame = new_uid(), new_uid(), new_uid()
        for i, p in enumerate(paths):
            ds = ct_slice(i, study_uid=study, series_uid=series, frame_uid=frame, pixels=realistic_ct(i, slices=SLICES))
            replace_atomically(p, lambda tmp, ds=ds: fastdicom.write(tmp, ds))
    return paths


MULTIFRAME_FRAMES = 500


@pytest.fixture(scope="session")
def codec_multiframe():
    """A 500-frame Enhanced CT (512x512 int16, explicit VR little endian) of the torso phantom."""
    path = os.path.join(_bench_folder("realistic"), "mf500_unc.dcm")
    if not os.path.exists(path):
        n = MULTIFRAME_FRAMES
        stack = np.stack([realistic_ct(i, slices=n) for i in range(n)])
        replace_atomically(path, lambda tmp: fastdicom.write(tmp, enhanced_ct(n, rows=512, columns=512, pixels=stack)))
    return path
