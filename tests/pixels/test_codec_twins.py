"""Every implementation of the JPEG-LS, JPEG 2000 and HTJ2K decoders in the registry (native, imagecodecs,
pylibjpeg-openjpeg, pyjpegls), each forced in turn, on every decodable corpus file: lossless frames equal
pydicom's reference bit for bit, lossy ones stay within the lossy tolerance of the native decoder."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import fastdicom
from fastdicom import _backends
from fastdicom.dictionary import uid
from fastdicom.pixels import codecs as fc

from ..conftest import implementations
from .frame_specs import options, spec_like
from .test_codecs import DECODABLE

CAPS = ("jpegls", "jpeg2000", "htj2k")
CASES = [
    pytest.param(cf, name, id=f"{name}-{cf.path}")
    for cf in DECODABLE
    if fc.CAPABILITY[cf.row["transfer_syntax_uid"]] in CAPS
    for name, _module, _attr in _backends.REGISTRY[fc.CAPABILITY[cf.row["transfer_syntax_uid"]]]
]


def _only(monkeypatch, cap: str, name: str):
    """Make ``name`` the registry's only implementation of ``cap`` (skip when it is not installed here)."""
    entry = next(e for e in _backends.REGISTRY[cap] if e[0] == name)
    if _backends.forced() == "python" and not _backends.is_python(name):
        pytest.skip("FASTDICOM_BACKEND=python")
    mod, why = _backends._try(*entry)
    if mod is None:
        pytest.skip(f"{name} not available: {why}")
    monkeypatch.setitem(_backends.REGISTRY, cap, [entry])
    _backends.refresh()


@pytest.mark.parametrize("cf,name", CASES)
def test_each_decoder_matches_the_reference(monkeypatch, cf, name):
    path = cf.resolve()
    if path is None:
        pytest.skip(f"{cf.where} file {cf.path} not installed")
    ts = cf.row["transfer_syntax_uid"]
    cap = fc.CAPABILITY[ts]
    reference = None
    if ts in fc.LOSSY:  # the registry's own choice, for the tolerance
        try:
            reference = fastdicom.read(path).pixel_array.astype(np.int64)
        except fc.NoDecoderError:
            pytest.skip("no decoder to compare with")
    try:
        _only(monkeypatch, cap, name)
        arr = fastdicom.read(path).pixel_array
        assert _backends.resolve(cap)[0] == name
    finally:
        monkeypatch.undo()
        _backends.refresh()
    assert str(arr.dtype) == cf.row["decoded_dtype"]
    assert "x".join(map(str, arr.shape)) == cf.row["decoded_shape"]
    little = np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<"), copy=False))
    if hashlib.sha256(little.tobytes()).hexdigest() == cf.row["decoded_sha256"]:
        return
    assert ts in fc.LOSSY, f"{name}: lossless data must match pydicom bit for bit"
    span = max(1, int(reference.max()) - int(reference.min()))
    err = np.abs(arr.astype(np.int64) - reference)
    assert err.max() <= max(2, span // 100), f"{name}: lossy frames differ by {err.max()} from the native decoder's"


def test_python_names_every_twin():
    assert _backends.is_python("python") and _backends.is_python("python-pyjpegls")
    assert not _backends.is_python("rust") and not _backends.is_python("pythonic")
    names = [n for n, _m, _a in _backends.REGISTRY["jpeg2000"]]
    assert names.index("python") < names.index("python-pylibjpeg"), "imagecodecs stays the first twin"


def test_forced_python_falls_to_the_next_twin(monkeypatch):
    """Without imagecodecs, FASTDICOM_BACKEND=python takes pylibjpeg-openjpeg / pyjpegls where installed."""
    monkeypatch.setenv("FASTDICOM_BACKEND", "python")
    for cap in ("jpeg2000", "jpegls"):
        entries = [e for e in _backends.REGISTRY[cap] if e[0] != "python"]
        monkeypatch.setitem(_backends.REGISTRY, cap, [("python", "fastdicom.no_such_module", entries[0][2]), *entries])
    _backends.refresh()
    try:
        for cap, twin in (("jpeg2000", "python-pylibjpeg"), ("jpegls", "python-pyjpegls")):
            mod, _why = _backends._try(*next(e for e in _backends.REGISTRY[cap] if e[0] == twin))
            if mod is None:
                continue
            assert _backends.resolve(cap)[0] == twin
            assert _backends.resolve(cap, "python")[0] == twin
    finally:
        monkeypatch.undo()
        _backends.refresh()


def _jp2_with_swapped_channels(codestream: bytes, rows: int, columns: int) -> bytes:
    """A JP2 file around ``codestream`` whose channel definition box swaps red and blue."""
    import struct

    def box(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", 8 + len(body)) + kind + body

    ihdr = box(b"ihdr", struct.pack(">IIHBBBB", rows, columns, 3, 7, 7, 0, 0))
    colr = box(b"colr", struct.pack(">BBBI", 1, 0, 0, 16))  # sRGB
    cdef = box(b"cdef", struct.pack(">H", 3) + b"".join(struct.pack(">HHH", c, 0, 3 - c) for c in range(3)))
    return (
        box(b"jP  ", b"\r\n\x87\n")
        + box(b"ftyp", b"jp2 " + b"\0\0\0\0" + b"jp2 ")
        + box(b"jp2h", ihdr + colr + cdef)
        + box(b"jp2c", codestream)
    )


def test_jp2_boxes_are_ignored_by_every_decoder():
    """PS3.5 A.4.4: the native decoder ignores JP2 palette/mapping/channel boxes, and every twin must agree."""
    rng = np.random.default_rng(7)
    frame = rng.integers(0, 256, size=(40, 48, 3)).astype(np.uint8)
    frame[0, 0] = (10, 100, 200)
    encoders = implementations("jpeg2000_encode")
    if not encoders:
        pytest.skip("no JPEG 2000 encoder here")
    codestream = encoders[0][1].jpeg2000_encode(frame, options(8))
    jp2 = _jp2_with_swapped_channels(codestream, 40, 48)
    assert fc.jp2_codestream(jp2) == codestream
    for name, mod in implementations("jpeg2000"):
        back = np.asarray(mod.jpeg2000_decode(jp2, spec_like(frame)))
        assert np.array_equal(back, frame), name


def test_jp2_codestream_refuses_broken_files():
    with pytest.raises(ValueError, match="codestream box"):
        fc.jp2_codestream(b"\0\0\0\x0cjP  \r\n\x87\n" + b"\0\0\0\x10ftypjp2 \0\0\0\0")
    with pytest.raises(ValueError, match="out of range"):
        fc.jp2_codestream(b"\0\0\0\x0cjP  \r\n\x87\n" + b"\0\0\x10\x00jp2c\xff\x4f")
    assert fc.jp2_codestream(b"\xff\x4f\xff\x51rest") == b"\xff\x4f\xff\x51rest"


@pytest.mark.parametrize(
    "ts",
    [uid.RLELossless, uid.JPEGLosslessSV1, uid.JPEGLSLossless, uid.JPEG2000Lossless, uid.HTJ2KLossless],
    ids=lambda ts: ts.keyword,
)
def test_each_decoder_does_what_its_module_declares(ts):
    """``WRITES_OUT``: a decoder that declares it returns ``frame.out`` itself, one that does not returns a new
    array; ``FINDS_END``: one that declares it takes the codestream with its padding."""
    from .test_transcode import _grey_40x40

    pixels = (np.add.outer(np.arange(40) * 97, np.arange(40) * 13) % 4096).astype(np.uint16)
    ds = _grey_40x40("1.2.840.10008.5.1.4.1.1.7", 16, BitsStored=12, HighBit=11, PixelRepresentation=0)
    ds.add_new("PixelData", "OW", pixels.astype("<u2").tobytes())
    try:
        px = fastdicom.transcode(ds, ts).pixels
    except (fc.NoDecoderError, _backends.BackendError) as exc:
        pytest.skip(f"no encoder for {ts.keyword} here: {exc}")
    data = bytes(px.encoded_frame(0)) + b"\0\0"  # padding after the end marker (PS3.5 A.4)
    cap = fc.CODECS[ts].capability
    for name, mod in implementations(cap):
        dec = fc.Decoder.of(cap, name, mod)
        end = fc.CODECS[ts].end
        given = data if dec.finds_end or end is None else data[: end(data)]
        frame = fc.DecodeFrame.of(px, np.zeros(px._frame_shape(), px.dtype))
        got = dec.decode(given, frame)
        assert (got is frame.out) == dec.writes_out, name
        assert np.array_equal(np.asarray(got).reshape(pixels.shape), pixels), name
