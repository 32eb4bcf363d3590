from __future__ import annotations

import os
import struct
import tempfile

import numpy as np
import pytest

import fastdicom
from fastdicom import _backends
from fastdicom.synth import write_ct_series

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
    encode = _backends.resolve("rle_encode", "rust")[1].rle_encode_frame
    frame = encode(np.ascontiguousarray(px.frame(0)).tobytes(), px.rows, px.columns, px.samples, px.bits_allocated)
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
