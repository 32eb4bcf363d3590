"""Where a codestream ends (issue 12, section 1): padding after the end marker, fill bytes before markers, and
truncation that stays an error.

PS3.5 A.4 lets an encoder pad a fragment after EOI (EOC) with any value; T.81 B.1.1.2 and T.87 allow any
run of 0xFF fill bytes before any marker but SOI in JPEG and JPEG-LS (T.800 has no such rule). The streams
come from our own encoders (the registry's first, a twin under FASTDICOM_BACKEND=python) and are edited
byte by byte; every decoder of the registry decodes them through a data set, and the oracle is the pixels
we encoded. A stream cut inside scan data or inside a marker segment is refused by every decoder, however
it was padded.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastdicom
from fastdicom import _backends
from fastdicom.dataset.values import Encapsulated
from fastdicom.dataset.write import to_bytes
from fastdicom.errors import InvalidDicomError
from fastdicom.pixels import NoDecoderError
from fastdicom.pixels import codecs as fc

from .frame_specs import options
from .test_codec_twins import _only
from .test_transcode import _grey_40x40

#: capability -> the transcode target that makes a lossless stream of it
TARGETS = {"jpeg": "jpeg-lossless", "jpegls": "jls", "jpeg2000": "j2k", "htj2k": "htj2k"}
CASES = [pytest.param(cap, name, id=f"{cap}-{name}") for cap in TARGETS for name, _m, _a in _backends.REGISTRY[cap]]
JPEG_LIKE = [c for c in CASES if c.values[0] in ("jpeg", "jpegls")]
J2K_LIKE = [c for c in CASES if c.values[0] in ("jpeg2000", "htj2k")]


def _pixels() -> np.ndarray:
    """A 40x40 12-bit frame with edges and flat runs (both JPEG-LS modes, many 0xFF bytes in the data)."""
    rng = np.random.default_rng(12)
    frame = (np.add.outer(np.arange(40) * 97, np.arange(40) * 13) % 4096).astype(np.uint16)
    frame[5:15, 5:30] = 2048
    frame[20:] ^= rng.integers(0, 64, (20, 40)).astype(np.uint16)
    return frame


def _source(cap: str) -> tuple[fastdicom.Dataset, np.ndarray, bytes]:
    """An encapsulated data set of :func:`_pixels` in ``cap``'s lossless syntax, the pixels, its codestream."""
    frame = _pixels()
    ds = _grey_40x40("1.2.840.10008.5.1.4.1.1.7", 16, BitsStored=12, HighBit=11, PixelRepresentation=0)
    ds.add_new("PixelData", "OW", frame.astype("<u2").tobytes())
    try:
        coded = fastdicom.transcode(ds, TARGETS[cap])
    except NoDecoderError:
        pytest.skip(f"no {cap} encoder here")
    return coded, frame, bytes(coded.pixels.encoded_frame(0))


def _with_fragments(
    ds: fastdicom.Dataset, fragments: list[bytes], frames: int = 1, transfer_syntax: str | None = None
) -> fastdicom.Dataset:
    """``ds`` with these fragments (odd ones padded with a zero byte) as its Pixel Data, without offsets,
    in ``transfer_syntax`` (default: its own)."""
    new = fastdicom.read(to_bytes(ds))
    del new[0x7FE00010]
    new.add_new(0x7FE00010, "OB", Encapsulated(fragments, offset_table=False))
    if frames > 1:
        new.add_new("NumberOfFrames", "IS", str(frames))
    ts = transfer_syntax or ds.transfer_syntax
    if ts != ds.transfer_syntax:
        new.file_meta[0x00020010].value = ts
    return fastdicom.read(to_bytes(new, transfer_syntax=ts))


def _unpadded(cs: bytes) -> bytes:
    """The codestream up to its end marker: our encoders end with FFD9 and at most a zero byte."""
    body = cs.rstrip(b"\0")
    assert body.endswith(b"\xff\xd9") and len(cs) - len(body) <= 1
    return body


def _with_fill(cs: bytes, fill: int) -> bytes:
    """``cs`` with ``fill`` 0xFF bytes before every marker of its header but SOI, and before EOI.

    The header's marker segments are walked here by their lengths up to the first SOS, independently
    of the code under test.
    """
    cs = _unpadded(cs)
    out, pos = bytearray(cs[:2]), 2
    while True:
        assert cs[pos] == 0xFF
        length = int.from_bytes(cs[pos + 2 : pos + 4], "big")
        out += b"\xff" * fill + cs[pos : pos + 2 + length]
        sos = cs[pos + 1] == 0xDA
        pos += 2 + length
        if sos:
            break
    return bytes(out + cs[pos:-2] + b"\xff" * fill + b"\xff\xd9")


def _decode_with(monkeypatch, cap: str, name: str, ds: fastdicom.Dataset) -> np.ndarray:
    _only(monkeypatch, cap, name)
    try:
        return ds.pixel_array
    except NoDecoderError:
        pytest.skip(f"{name} cannot decode {cap} here")


@pytest.mark.parametrize("cap,name", CASES)
@pytest.mark.parametrize("pad", [b"\xff", b"\x00", b"\x5a", b"\xff\xd9\x01", b"\x00\x00\x00\xfe"])
def test_any_padding_after_the_end_marker(monkeypatch, cap, name, pad):
    ds, frame, cs = _source(cap)
    padded = _unpadded(cs) + pad
    assert len(padded) % 2 == 0 or pad != b"\xff"  # FF D9 FF: the one pad byte of issue 12 when it is even
    got = _decode_with(monkeypatch, cap, name, _with_fragments(ds, [padded]))
    np.testing.assert_array_equal(got, frame)


@pytest.mark.parametrize("cap,name", JPEG_LIKE)
@pytest.mark.parametrize("fill", [1, 2, 7])
def test_fill_bytes_before_markers(monkeypatch, cap, name, fill):
    ds, frame, cs = _source(cap)
    filled = _with_fill(cs, fill)
    assert fc.jpeg_end(filled) == len(filled)
    got = _decode_with(monkeypatch, cap, name, _with_fragments(ds, [filled + b"\xff"]))
    np.testing.assert_array_equal(got, frame)


@pytest.mark.parametrize("cap,name", J2K_LIKE)
def test_jpeg_2000_has_no_fill_bytes(monkeypatch, cap, name):
    """T.800 has no fill-byte rule: FF FF D9 at the end is no EOC, and the stream is refused."""
    ds, _frame, cs = _source(cap)
    body = _unpadded(cs)
    _only(monkeypatch, cap, name)
    with pytest.raises(InvalidDicomError):
        _ = _with_fragments(ds, [body[:-2] + b"\xff\xff\xd9\x00"]).pixel_array


def _cuts(cs: bytes) -> list[int]:
    """Cut inside the header's first marker segment, inside scan data, and just before the end marker."""
    body = _unpadded(cs)
    return [7, len(body) // 2, len(body) - 5, len(body) - 2, len(body) - 1]


@pytest.mark.parametrize("cap,name", CASES)
@pytest.mark.parametrize("pad", [b"", b"\x00", b"\x00\x00", b"\xff", b"\xff\xff", b"\x5a"])
def test_truncation_is_refused_whatever_the_padding(monkeypatch, cap, name, pad):
    ds, _frame, cs = _source(cap)
    _only(monkeypatch, cap, name)
    for cut in _cuts(cs):
        broken = _with_fragments(ds, [cs[:cut] + pad])
        with pytest.raises(InvalidDicomError):
            _ = broken.pixel_array


def test_the_walk_skips_segments_and_scan_data():
    """FFD9 inside a marker segment or behind stuffing is no EOI; what follows EOI is padding."""
    com = b"\xff\xfe\x00\x06\xff\xd9\xff\xd9"
    sos = b"\xff\xda\x00\x08\x01\x01\x00\x00\x00\x00"
    scan = b"\x12\xff\x7f\x34\xff\x00\xff\xff\xd3\x56"  # bit stuffing, byte stuffing, filled RST
    cs = b"\xff\xd8" + com + sos + scan + b"\xff\xd9"
    assert fc.jpeg_end(cs) == len(cs)
    assert fc.jpeg_end(cs + b"\xff\xd8\x00") == len(cs)
    for cut in range(len(cs)):
        for pad in (b"", b"\x00", b"\xff", b"\xff\xff", b"\x5a"):
            assert fc.jpeg_end(cs[:cut] + pad) is None, (cut, pad)
    assert fc.jpeg_end(b"\xff" + cs) is None  # fill before SOI: not a JPEG stream
    j2k = b"\xff\x4f\xff\x64\x00\x06\x00\x01\xff\xd9"  # SOC, a COM holding FFD9
    tile = b"\xff\x90\x00\x0a\x00\x00\x00\x00\x00\x13\x00\x01\xff\x93\x80\xff\x7f\x11\x22"
    j2k += tile + b"\xff\xd9"
    assert fc.j2k_end(j2k) == len(j2k) == fc.j2k_end(j2k + b"\xff\x00\xd9")
    last = j2k.replace(b"\x00\x00\x00\x13", b"\x00\x00\x00\x00")  # Psot 0: the tile-part runs to EOC
    assert fc.j2k_end(last) == len(last)
    for cut in range(len(j2k)):
        for pad in (b"", b"\x00", b"\xff", b"\x5a"):
            assert fc.j2k_end(j2k[:cut] + pad) is None and fc.j2k_end(last[:cut] + pad) is None, (cut, pad)


@pytest.mark.parametrize("cap", ["jpeg", "jpegls"])
def test_frames_end_with_a_fragment_padded_after_eoi(cap):
    """No offset table, two fragments a frame: a last fragment ending FF D9 and one pad byte ends a frame."""
    ds, frame, cs = _source(cap)
    body = _unpadded(cs)
    if len(body) % 2 == 0:  # a comment segment of 5 bytes makes it odd: then one pad byte makes it even
        body = body[:2] + b"\xff\xfe\x00\x03\x2a" + body[2:]
    fragments: list[bytes] = []
    for pad in (b"\xff", b"\x5a"):
        fragments += [body[:20], body[20:] + pad]
    assert all(len(f) % 2 == 0 for f in fragments) and fragments[1].endswith(b"\xff\xd9\xff")
    multi = _with_fragments(ds, fragments, frames=2)
    np.testing.assert_array_equal(multi.pixel_array, np.stack([frame, frame]))


def test_jpeg_colour_is_read_through_fill_bytes():
    """jpeg_is_ycbcr walks the markers too: fill bytes before them change nothing."""
    enc = _backends.resolve("jpeg_encode")[1].jpeg_encode
    rgb = np.dstack([np.full((16, 16), v, np.uint8) for v in (200, 30, 90)])
    cs = enc(rgb, options(8, lossless=False, quality=90))
    for photometric in ("RGB", "YBR_FULL_422"):
        assert fc.jpeg_is_ycbcr(_with_fill(cs, 3), photometric) == fc.jpeg_is_ycbcr(cs, photometric)
