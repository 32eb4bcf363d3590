"""RLE Lossless: Rust and numpy twins agree, round trips, pydicom reads our output, bad data is typed."""

from __future__ import annotations

import importlib
import io
import struct

import numpy as np
import pytest

import fastdicom
from fastdicom.dictionary.uid import RLELossless
from fastdicom.errors import InvalidDicomError
from fastdicom.pixels import _rle_py
from fastdicom.pixels import codecs as fc

from ..conftest import implementations
from ..corpus import corpus_files
from .frame_specs import decode_spec, options

pydicom = pytest.importorskip("pydicom")


#: The byte-level kernels under each implementation of "rle" and "rle_encode" (their codec functions wrap them).
KERNELS = {"rust": "fastdicom._rust", "python": "fastdicom.pixels._rle_py"}


def _kernels(attr: str):
    return [(name, getattr(importlib.import_module(KERNELS[name]), attr)) for name, _mod in implementations("rle")]


DECODERS = _kernels("rle_decode_frame")
ENCODERS = _kernels("rle_encode_frame")
RLE_FILES = [f for f in corpus_files() if f.row["transfer_syntax_uid"] == "1.2.840.10008.1.2.5"]


@pytest.mark.parametrize("cf", RLE_FILES, ids=lambda cf: cf.path)
def test_decoders_agree_on_corpus_frames(cf):
    path = cf.resolve()
    if path is None:
        pytest.skip("not installed")
    px = fastdicom.read(path).pixels
    for i in range(len(px)):
        frame = px.encoded_frame(i)
        results = []
        for _name, decode in DECODERS:
            try:
                results.append(decode(frame, px.rows, px.columns, px.samples, px.bits_allocated))
            except InvalidDicomError as exc:
                results.append(("error", exc.message))
        assert all(r == results[0] for r in results)


@pytest.mark.parametrize("bits", [8, 16, 32])
@pytest.mark.parametrize("samples", [1, 3])
def test_round_trip_random_arrays(bits, samples):
    rng = np.random.default_rng(bits * 10 + samples)
    rows, cols = 17, 23
    arr = rng.integers(0, 2**bits, size=(rows, cols, samples), dtype=f"<u{bits // 8}")
    arr[3:9, 2:15] = 5  # runs
    raw = arr.tobytes()
    encoded = [encode(raw, rows, cols, samples, bits) for _name, encode in ENCODERS]
    assert all(e == encoded[0] for e in encoded)  # the encoders are twins too
    for _name, decode in DECODERS:
        assert decode(encoded[0], rows, cols, samples, bits) == raw


def test_pydicom_decodes_our_rle(tmp_path):
    rows, cols = 32, 40
    rng = np.random.default_rng(1)
    frames = rng.integers(-500, 1500, size=(3, rows, cols), dtype="<i2")
    _name, encode = ENCODERS[0]
    ds = fastdicom.Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2.1", "1.2.3.9"
    ds.Rows, ds.Columns, ds.NumberOfFrames, ds.SamplesPerPixel = rows, cols, 3, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    head = fastdicom.to_bytes(ds, transfer_syntax="1.2.840.10008.1.2.5")
    body = struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFF) + struct.pack("<HHL", 0xFFFE, 0xE000, 0)
    for f in frames:
        enc = encode(f.tobytes(), rows, cols, 1, 16)
        body += struct.pack("<HHL", 0xFFFE, 0xE000, len(enc)) + enc
    body += struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
    data = head + body
    assert np.array_equal(pydicom.dcmread(io.BytesIO(data)).pixel_array, frames)
    assert np.array_equal(fastdicom.read(data).pixel_array, frames)


BAD = {
    "short header": b"\x01\x00\x00\x00" + b"\x00" * 20,
    "zero segments": b"\x00" * 64,
    "sixteen segments": struct.pack("<L", 16) + b"\x00" * 60,
    "offset past end": struct.pack("<LL", 1, 500) + b"\x00" * 56,
    "offset inside header": struct.pack("<LL", 1, 10) + b"\x00" * 56,
    "short segment": struct.pack("<LL", 1, 64) + b"\x00" * 56 + b"\x00\x07",
    "wrong segment count": struct.pack("<LLL", 2, 64, 66) + b"\x00" * 52 + b"\xfd\x01\xfd\x01",
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_malformed_rle_raises_typed_errors(name):
    for _impl, decode in DECODERS:
        with pytest.raises(InvalidDicomError):
            decode(BAD[name], 2, 2, 1, 8)


def test_allocation_is_bounded_by_input():
    header = struct.pack("<LL", 1, 64) + b"\x00" * 56 + b"\x81\x00"
    for _impl, decode in DECODERS:
        with pytest.raises(InvalidDicomError):
            decode(header, 100_000, 100_000, 1, 8)  # would be 10 GB


def test_python_twin_module_is_complete():
    assert {"rle_decode_frame", "rle_decode_into", "rle_encode_frame"} <= set(dir(_rle_py))


def _decode_into_impls():
    return _kernels("rle_decode_into")


@pytest.mark.parametrize("bits", [8, 16, 32])
@pytest.mark.parametrize("samples", [1, 3])
def test_decode_into_writes_the_callers_array(bits, samples):
    rng = np.random.default_rng(bits + samples)
    rows, cols = 64, 77  # long enough for the fast path, odd enough for the tails
    arr = rng.integers(0, 2**bits, size=(rows, cols, samples), dtype=f"<u{bits // 8}")
    arr[10:40, 5:70] = 9
    arr[50:60] = np.arange(cols)[None, :, None] % 3
    encoded = ENCODERS[0][1](arr.tobytes(), rows, cols, samples, bits)
    for _name, decode_into in _decode_into_impls():
        out = np.full(arr.shape, 0xAB, dtype=arr.dtype)
        decode_into(encoded, out.reshape(-1).view(np.uint8), rows, cols, samples, bits)
        assert np.array_equal(out, arr)
        with pytest.raises(InvalidDicomError):  # wrong size
            decode_into(encoded, np.empty(arr.nbytes - 1, np.uint8), rows, cols, samples, bits)
        ro = np.empty(arr.nbytes, np.uint8)
        ro.flags.writeable = False
        with pytest.raises(ValueError):
            decode_into(encoded, ro, rows, cols, samples, bits)
        for name in sorted(BAD):
            with pytest.raises(InvalidDicomError):
                decode_into(BAD[name], np.empty(4, np.uint8), 2, 2, 1, 8)


@pytest.mark.parametrize("bits", [8, 16, 32])
@pytest.mark.parametrize("samples", [1, 3])
def test_codec_contract_over_the_kernels(bits, samples):
    """``rle_encode(frame, options)`` and ``rle_decode(data, frame)`` of every implementation: the kernels'
    bytes, decoded straight into ``frame.out``."""
    rng = np.random.default_rng(bits * 3 + samples)
    shape = (19, 21, samples) if samples > 1 else (19, 21)
    arr = rng.integers(0, 2**bits, size=shape, dtype=f"<u{bits // 8}")
    arr[2:9, 4:15] = 7
    reference = ENCODERS[0][1](arr.tobytes(), 19, 21, samples, bits)
    for name, mod in implementations("rle_encode"):
        assert mod.rle_encode(arr, options(bits)) == reference, name
        assert mod.rle_encode(arr.astype(arr.dtype.newbyteorder(">")), options(bits)) == reference, name
    for name, mod in implementations("rle"):
        frame = decode_spec(shape, arr.dtype)
        assert mod.rle_decode(reference, frame) is frame.out, name
        assert np.array_equal(frame.out, arr), name
        assert fc.Decoder.of("rle", name, mod).writes_out


def test_signed_rle_is_sign_extended_by_the_runner():
    """12 bits stored in 16, signed: the runner sign-extends what the decoder wrote into ``frame.out``."""
    values = np.array([[-2048, -1, 0, 2047]], dtype=np.int16)
    codes = (values.view(np.uint16) & 0x0FFF).astype("<u2")
    data = ENCODERS[0][1](codes.tobytes(), 1, 4, 1, 16)
    out = np.empty((1, 4), np.int16)
    fc.decode_frame(data, fc.DecodeFrame(out, 1, 4, 1, 16, 12, 1, "MONOCHROME2", RLELossless))
    assert out.tolist() == values.tolist()
