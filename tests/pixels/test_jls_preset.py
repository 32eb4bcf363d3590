"""JPEG-LS preset coding parameters (LSE segments) and the zero byte before EOI (issue 12, section 1).

Every JPEG-LS decoder of the registry is CharLS underneath, so they are never compared with each other:
the oracle is the pixels we encoded, equal (lossless) or within NEAR. Each stream goes into a small DICOM
data set (signed pixels through Pixel Representation 1) and is decoded through ``ds.pixel_array`` and
``fastdicom.decode`` with each decoder in turn.

- LSE segments with a MAXVAL below 2^P - 1 and custom T1, T2, T3 and RESET, at 8, 12 and 16 bits,
  lossless and near-lossless: written by the native encoder (``_rust.jls_encode(..., preset=...)``), and
  made by editing bytes from any encoder (a stream coded at Bits Stored, relabelled as P with an LSE
  giving MAXVAL = 2^BitsStored - 1: by T.87 the same stream).
- A MAXVAL of another form cannot be decoded by CharLS as T.87 defines it: refused, never wrong pixels.
- A zero byte between the last scan byte and EOI (as the WG04 MR1_JLSL sample has): CharLS 2.4.2 refuses
  it; every decoder here decodes it.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastdicom
from fastdicom import _backends
from fastdicom.dictionary import uid
from fastdicom.errors import InvalidDicomError
from fastdicom.pixels import NoDecoderError
from fastdicom.pixels import codecs as fc

from .frame_specs import options
from .test_codec_twins import _only
from .test_jpeg_padding import _unpadded, _with_fragments
from .test_transcode import _grey_40x40

try:
    from fastdicom import _rust
except ImportError:  # no native build here
    _rust = None  # type: ignore[assignment]

DECODERS = [pytest.param(name, id=name) for name, _m, _a in _backends.REGISTRY["jpegls"]]
LOSSLESS, NEAR = uid.JPEGLSLossless, uid.JPEGLSNearLossless
native = pytest.mark.skipif(_rust is None, reason="the native extension is not built")


def _frame(bits_stored: int, signed: bool, seed: int) -> np.ndarray:
    """40x40 samples of ``bits_stored`` bits, gradients, flat areas and noise; signed ones keep away from
    the ends of the range (a near-lossless error in the two's complement codes must not wrap the sign)."""
    rng = np.random.default_rng(seed)
    span = 1 << (bits_stored - (2 if signed else 0))
    ramp = np.add.outer(np.arange(40) * 37, np.arange(40) * 11) % span
    ramp[8:18, 4:30] = span // 3
    ramp[24:] = (ramp[24:] + rng.integers(0, 5, (16, 40))) % span
    if signed:
        ramp = ramp - span // 2
    dtype = f"{'i' if signed else 'u'}{1 if bits_stored <= 8 else 2}"
    return ramp.astype(dtype)


def _base(bits_allocated: int, bits_stored: int, signed: bool) -> fastdicom.Dataset:
    """A JPEG-LS data set of the right pixel module: its Pixel Data is replaced by the stream under test."""
    ds = _grey_40x40(
        "1.2.840.10008.5.1.4.1.1.4",  # MR
        bits_allocated,
        BitsStored=bits_stored,
        HighBit=bits_stored - 1,
        PixelRepresentation=int(signed),
    )
    frame = _frame(bits_stored, signed, 0)
    ds.add_new(
        "PixelData", "OB" if bits_allocated == 8 else "OW", frame.astype(frame.dtype.newbyteorder("<")).tobytes()
    )
    try:
        return fastdicom.transcode(ds, "jls")
    except NoDecoderError:
        pytest.skip("no JPEG-LS encoder here")


def _decoded(monkeypatch, name: str, ds: fastdicom.Dataset) -> list[np.ndarray]:
    """The frame as ``ds.pixel_array`` and ``fastdicom.decode`` give it with decoder ``name`` alone."""
    _only(monkeypatch, "jpegls", name)
    return [ds.pixel_array, fastdicom.decode([ds], threads=1)[0]]


def _assert_within(got: np.ndarray, frame: np.ndarray, near: int) -> None:
    assert got.dtype == frame.dtype and got.shape == frame.shape
    worst = int(np.abs(got.astype(np.int64) - frame.astype(np.int64)).max())
    assert worst <= near, f"largest error {worst}, NEAR {near}"


def _header(cs: bytes) -> dict[int, list[bytes]]:
    """The header's marker segments up to SOS, by code: walked by their lengths (independently of fastdicom)."""
    out: dict[int, list[bytes]] = {}
    pos = 2
    while True:
        assert cs[pos] == 0xFF
        length = int.from_bytes(cs[pos + 2 : pos + 4], "big")
        out.setdefault(cs[pos + 1], []).append(cs[pos + 4 : pos + 2 + length])
        if cs[pos + 1] == 0xDA:
            return out
        pos += 2 + length


def _lse(maxval: int, t1: int = 0, t2: int = 0, t3: int = 0, reset: int = 0) -> bytes:
    """An LSE marker segment of preset coding parameters (T.87 C.2.4.1.1)."""
    return b"\xff\xf8\x00\x0d\x01" + b"".join(v.to_bytes(2, "big") for v in (maxval, t1, t2, t3, reset))


def _relabelled(cs: bytes, precision: int, lse: bytes) -> bytes:
    """``cs`` with its SOF55 saying ``precision`` and ``lse`` inserted after it (editing bytes)."""
    pos = 2
    while cs[pos + 1] != 0xF7:  # our encoders' headers: SOF55 after a few marker segments at most
        pos += 2 + int.from_bytes(cs[pos + 2 : pos + 4], "big")
    end = pos + 2 + int.from_bytes(cs[pos + 2 : pos + 4], "big")
    return cs[: pos + 4] + bytes((precision,)) + cs[pos + 5 : end] + lse + cs[end:]


#: (P, Bits Stored below P: MAXVAL 2^BitsStored - 1)
PRECISIONS = [(8, 7), (12, 10), (16, 12)]


@native
@pytest.mark.parametrize("name", DECODERS)
@pytest.mark.parametrize("precision,low", PRECISIONS)
@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
@pytest.mark.parametrize("near", [0, 1, 2, 3])
@pytest.mark.parametrize("maxval_kind", ["maxval", "thresholds"])
def test_preset_coding_parameters_written_by_the_native_encoder(
    monkeypatch, name, precision, low, signed, near, maxval_kind
):
    """``maxval``: MAXVAL 2^Bits Stored - 1 below 2^P - 1; ``thresholds``: Bits Stored P; both with custom
    T1, T2, T3 and RESET."""
    bits_stored = low if maxval_kind == "maxval" else precision
    maxval = (1 << bits_stored) - 1
    frame = _frame(bits_stored, signed, seed=precision + near)
    codes = fc.unsigned_codes(frame, bits_stored, "JPEG-LS")
    if precision > 8:
        codes = codes.astype(np.uint16)
    preset = (maxval, near + 2, near + 6, near + 20, 48)
    cs = _rust.jls_encode(codes.reshape(-1).view(np.uint8), 40, 40, 1, precision, near, preset)
    from fastdicom.pixels import _codecs_rust

    assert _codecs_rust.jpegls_encode(codes, options(precision, near=near, preset=preset)) == cs  # the same, by options
    header = _header(cs)
    assert header[0xF7][0][0] == precision
    lse = header[0xF8][0]
    assert lse[0] == 1 and [int.from_bytes(lse[k : k + 2], "big") for k in range(1, 11, 2)] == list(preset)
    ds = _with_fragments(
        _base(8 if precision <= 8 else 16, bits_stored, signed), [cs], transfer_syntax=NEAR if near else LOSSLESS
    )
    for got in _decoded(monkeypatch, name, ds):
        _assert_within(got, frame, near)


@pytest.mark.parametrize("name", DECODERS)
@pytest.mark.parametrize("precision,low", PRECISIONS)
@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
@pytest.mark.parametrize("near", [0, 2])
def test_an_lse_maxval_made_by_editing_bytes(monkeypatch, name, precision, low, signed, near):
    """A stream coded at Bits Stored (any encoder of the registry), relabelled as precision P with an LSE
    segment giving MAXVAL 2^Bits Stored - 1: by T.87 the same stream, which must decode to the same pixels."""
    frame = _frame(low, signed, seed=low + near)
    encoder_name, encoder = _backends.resolve("jpegls_encode")
    try:
        cs = _unpadded(encoder.jpegls_encode(frame, options(low, near=near)))
    except ValueError as exc:  # imagecodecs codes the container's precision: no near-lossless below it
        pytest.skip(f"{encoder_name}: {exc}")
    if _header(cs)[0xF7][0][0] != low:
        pytest.skip(f"{encoder_name} does not code at Bits Stored")
    edited = _relabelled(cs, precision, _lse((1 << low) - 1))
    ds = _with_fragments(
        _base(8 if precision <= 8 else 16, low, signed), [edited], transfer_syntax=NEAR if near else LOSSLESS
    )
    for got in _decoded(monkeypatch, name, ds):
        _assert_within(got, frame, near)


@pytest.mark.parametrize("name", DECODERS)
def test_a_maxval_charls_cannot_decode_is_refused(monkeypatch, name):
    """MAXVAL 1000 (not 2^k - 1) in a 12-bit frame: T.87 codes it with RANGE 1001, which CharLS cannot
    decode. Refused by every decoder, never returned as wrong pixels."""
    frame = _frame(10, False, seed=5)
    cs = _unpadded(_backends.resolve("jpegls_encode")[1].jpegls_encode(frame, options(10)))
    edited = _relabelled(cs, 12, _lse(1000))
    ds = _with_fragments(_base(16, 12, False), [edited])
    _only(monkeypatch, "jpegls", name)
    with pytest.raises(InvalidDicomError, match="MAXVAL 1000"):
        _ = ds.pixel_array


@pytest.mark.parametrize("name", DECODERS)
@pytest.mark.parametrize("bits_stored,signed", [(16, True), (12, True), (16, False), (8, False)])
def test_a_zero_byte_before_eoi(monkeypatch, name, bits_stored, signed):
    """``... 2B 00 FF D9``: a zero byte after the last scan byte, before EOI (the WG04 MR1_JLSL sample,
    16-bit signed MR, ends so). CharLS 2.4.2 refuses it ("the leading start byte (0xFF) for a JPEG marker
    was not found"); CharLS 2.4.3 accepts it, and so does every decoder here."""
    frame = _frame(bits_stored, signed, seed=bits_stored)
    cs = _unpadded(_backends.resolve("jpegls_encode")[1].jpegls_encode(frame, options(bits_stored)))
    assert cs[-3] != 0  # a stream of our own: no zero byte there yet
    padded = cs[:-2] + b"\x00\xff\xd9"
    ds = _with_fragments(_base(8 if bits_stored <= 8 else 16, bits_stored, signed), [padded + b"\x00"])
    for got in _decoded(monkeypatch, name, ds):
        _assert_within(got, frame, 0)
    # two zero bytes, or a byte that holds bits, are no padding CharLS skips: refused, not decoded
    for bad in (b"\x00\x00", b"\x7f"):
        broken = _with_fragments(ds, [cs[:-2] + bad + b"\xff\xd9"])
        with pytest.raises(InvalidDicomError):
            _ = broken.pixel_array


@native
def test_the_native_encoder_refuses_what_charls_cannot_code():
    codes = (np.arange(1600, dtype=np.uint16) % 1000).reshape(40, 40)
    raw = codes.reshape(-1).view(np.uint8)
    with pytest.raises(ValueError, match="2\\^k - 1"):
        _rust.jls_encode(raw, 40, 40, 1, 12, 0, (1000, 0, 0, 0, 0))
    with pytest.raises(ValueError, match="above MAXVAL"):
        _rust.jls_encode(raw, 40, 40, 1, 12, 0, (511, 0, 0, 0, 0))
    with pytest.raises(ValueError):  # T1 above MAXVAL: CharLS's own check
        _rust.jls_encode(raw, 40, 40, 1, 12, 0, (1023, 2000, 0, 0, 0))
    assert _rust.jls_encode(raw, 40, 40, 1, 12) == _rust.jls_encode(raw, 40, 40, 1, 12, 0, None)


def test_the_twins_refuse_preset_coding_parameters():
    """Neither imagecodecs nor pyjpegls can write an LSE segment: asked for one, they refuse rather than
    write a stream without it."""
    from ..conftest import implementations

    frame = _frame(12, False, seed=1)
    twins = [(n, m) for n, m in implementations("jpegls_encode") if _backends.is_python(n)]
    if not twins:
        pytest.skip("no JPEG-LS twin installed")
    for name, mod in twins:
        assert mod.jpegls_encode(frame, options(12)), name  # without preset parameters they encode
        with pytest.raises(NotImplementedError, match="native build"):
            mod.jpegls_encode(frame, options(12, preset=(4095, 3, 7, 21, 64)))
