"""Compressed frames: which codec serves a transfer syntax, one contract for every codec, and the DICOM
rules decoders get wrong.

The contracts, the same for every implementation (native and twin):

- a decoder is ``decode(data, frame) -> ndarray``: one frame's codestream and
  its :class:`DecodeFrame` (the pixel module, the array ``frame.out`` to decode
  into and the options). It writes into ``frame.out`` where it can and returns
  it; otherwise it returns a new array, which :func:`decode_frame` checks and
  copies. What each implementation does is declared as data in its module
  (``WRITES_OUT``: the decoders that write into ``frame.out``; ``FINDS_END``:
  whether they find the end of the codestream themselves), read once into a
  :class:`Decoder` record; nothing is found by looking at signatures;
- an encoder is ``encode(frame, options) -> bytes``: one frame as an ndarray
  (``(rows, columns[, samples])``; signed or not by its dtype) and its
  :class:`EncodeOptions` (Bits Stored, lossless or lossy and the parameters
  of each codec), returning an even-length codestream.

Implementations come from the registry (``fastdicom._backends``; capabilities
``rle``, ``jpeg``, ``jpegls``, ``jpeg2000``, ``htj2k``, ``deflate_image`` and
their ``*_encode``): the native ones in the Rust extension (RLE, libjpeg-turbo,
CharLS, OpenJPEG; ``_codecs_rust``) and OpenJPH's Cython binding
(``_codecs_openjph``) first; then the pure-Python backends, each over a
library a user may have installed: imagecodecs (every codec), pylibjpeg-openjpeg
(JPEG 2000, HTJ2K), pyjpegls (JPEG-LS) and glymur (JPEG 2000, HTJ2K; decoding
through a temporary file); numpy for RLE and the standard library for deflate.
Without one, decoding raises :class:`NoDecoderError` naming what to install.

What the runner (:func:`decode_frame`) applies around a decoder, as pydicom 3 does:

- the decoded shape must be (rows, columns[, samples]): anything else is an error,
  not a reshape;
- samples come out interleaved whatever Planar Configuration says (it does
  not apply to compressed data);
- the bytes are reinterpreted in the frame's type (Pixel Representation
  decides signed or not) and, for signed data with Bits Stored below Bits
  Allocated, sign-extended from Bits Stored (JPEG-LS and JPEG 2000 codestreams
  of signed data are often unsigned);
- JPEG decoders convert YCbCr to RGB and JPEG 2000 decoders undo the RCT/ICT:
  such frames are reported as RGB (:func:`decoded_photometric`), so nobody
  converts them twice. Whether a 3-component JPEG frame holds YCbCr is
  decided per frame from its markers (:func:`jpeg_is_ycbcr`; the native
  decoder applies the same rule in C).

Corrupt data policy: a codestream without its end marker, one whose header
disagrees with the data set, a JPEG whose entropy-coded data ends early or
breaks its codes (libjpeg's "premature end", "bad Huffman code" and resync
warnings, which it would otherwise answer with grey pixels), and arithmetic
or progressive JPEG (no process of the DICOM JPEG syntaxes; cut streams of
either decode silently) raise InvalidDicomError. Damage that a decoder
resynchronises past (a flipped bit inside Huffman-coded data) cannot be
seen by any decoder and comes out as wrong pixels.

The end marker is found by walking the codestream's structure
(:func:`jpeg_end`, :func:`j2k_end`; the Rust crate's ``markers`` module
applies the same rules): JPEG and JPEG-LS marker segments by their lengths
and scan data up to the next marker, with any run of 0xFF fill bytes before
any marker but SOI (T.81 B.1.1.2, T.87); JPEG 2000 marker segments and
tile-parts by their lengths (T.800 has no fill bytes). Whatever follows the
end marker is padding of any value (PS3.5 A.4) and is not given to the
decoder. A stream cut inside a segment or inside scan data has no end
marker, whatever it was padded with.

JPEG-LS decoders are CharLS (2.4) underneath, whatever the backend, and
:func:`jpegls_decode_with` applies what the native decoder does around it:
an LSE MAXVAL of 2^k - 1 below 2^P - 1 is decoded as precision k (CharLS
codes such a MAXVAL otherwise than T.87 defines it; any other MAXVAL below
2^P - 1 is refused), and a stream CharLS 2.4.2 refuses for a zero byte
before the marker that ends a scan is decoded again without it.

A decoder that fails, or returns fewer pixels than the frame has (a truncated
codestream some libraries decode silently), raises
:class:`~fastdicom.errors.InvalidDicomError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .. import _backends
from ..dictionary import uid as _uid
from ..errors import BackendError, FastDicomError, InvalidDicomError


class NoDecoderError(FastDicomError):
    """No codec can decode this transfer syntax here (the message names what to install)."""


@dataclass(frozen=True)
class Codec:
    """What one encapsulated transfer syntax's frames are, for decoding and for the lossy history.

    Attributes
    ----------
    capability : str
        The registry's decoding capability.
    end : callable or None
        ``end(data) -> int | None``: where the codestream ends, found by its
        structure (None when it has no end marker: RLE, deflate).
    to_rgb : frozenset of str
        The Photometric Interpretations of 3-sample frames that its decoders
        turn into RGB.
    method : str or None
        Lossy Image Compression Method (PS3.3 C.7.6.1.1.5) of a lossy syntax;
        None for a lossless one.
    """

    capability: str
    end: Callable[[Any], int | None] | None = None
    to_rgb: frozenset[str] = frozenset()
    method: str | None = None


class DecodeFrame(NamedTuple):
    """One frame to decode, as every decoder is given it: the pixel module, where to decode it, the options.

    Immutable; a named tuple rather than a frozen dataclass because one is
    built for every frame decoded: a frozen dataclass takes about 1 us to
    build (a fifth of the whole decode of a 64x64 RLE frame), a named tuple
    about 0.3 us.

    Attributes
    ----------
    out : ndarray
        The frame's array: writable, C-contiguous, of shape ``(rows,
        columns)`` (one sample) or ``(rows, columns, samples)`` and of the
        frame's type (Bits Allocated, signed by Pixel Representation, little
        endian). A decoder writes into it where it can.
    rows, columns, samples : int
        The frame's shape.
    bits_allocated, bits_stored, pixel_representation : int
        The data set's.
    photometric : str
        Photometric Interpretation as the data set says it (JPEG colour is
        decided from the markers, then from it).
    transfer_syntax : str
        The UID the codestream is in.
    as_rgb : bool
        False keeps JPEG YCbCr frames in YCbCr (the colour space stored).
    threads : int
        Threads one frame may take (OpenJPEG); 1 where frames run in parallel.
    """

    out: np.ndarray
    rows: int
    columns: int
    samples: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    photometric: str
    transfer_syntax: str
    as_rgb: bool = True
    threads: int = 1

    @property
    def shape(self) -> tuple[int, ...]:
        """``(rows, columns[, samples])``: the shape of ``out``."""
        return self.out.shape

    @classmethod
    def of(cls, frames, out: np.ndarray, *, as_rgb: bool = True) -> DecodeFrame:
        """The description of a frame of ``frames`` (:class:`~fastdicom.pixels.Frames`), decoded into ``out``."""
        return cls(
            out,
            frames.rows,
            frames.columns,
            frames.samples,
            frames.bits_allocated,
            frames.bits_stored,
            frames.pixel_representation,
            frames.photometric,
            frames.transfer_syntax,
            as_rgb,
        )


#: The coarsest HTJ2K quantisation step (relative to the sample range) any HTJ2K encoder takes: OpenJPH 0.9
#: aborts the process on some steps from 0.5 up (``fastdicom._cy._openjph.MAX_QSTEP``, which guards it).
HTJ2K_MAX_QSTEP = 0.25


@dataclass(frozen=True)
class EncodeOptions:
    """How to encode a frame, as every encoder is given it with the frame (an ndarray).

    The lossy parameters apply when ``lossless`` is False, each to its codec;
    a lossless request with one of them set is refused.

    Attributes
    ----------
    bits_stored : int
        The codestream's precision; values outside it (two's complement for
        signed dtypes) are refused, never clipped or wrapped.
    lossless : bool
        Lossless coding (JPEG: process 14 SV1; JPEG 2000 and HTJ2K: the
        reversible 5/3 wavelet and RCT; JPEG-LS: NEAR 0), or lossy.
    ratio : float
        Lossy JPEG 2000: the target compression ratio (at least 1).
    qstep : float
        Lossy HTJ2K: the base quantisation step, relative to the sample range.
    near : int
        Near-lossless JPEG-LS: the largest error per sample (1 to 255).
    quality : int
        JPEG baseline: 1 to 100.
    subsample : bool
        JPEG baseline colour: 4:2:2 chroma (else 4:4:4).
    rpcl : bool
        HTJ2K: what HTJ2K Lossless RPCL asks (RPCL, enough decomposition levels, TLM).
    preset : tuple of 5 int, optional
        JPEG-LS preset coding parameters (MAXVAL, T1, T2, T3, RESET), written
        as an LSE segment; the native encoder only.
    threads : int
        Threads one frame may take (OpenJPEG).
    """

    bits_stored: int
    lossless: bool = True
    ratio: float = 0.0
    qstep: float = 0.0
    near: int = 0
    quality: int = 90
    subsample: bool = True
    rpcl: bool = False
    preset: tuple[int, int, int, int, int] | None = None
    threads: int = 1

    def __post_init__(self) -> None:
        if self.lossless and (self.ratio or self.qstep or self.near):
            raise ValueError("a lossless encoding takes no ratio, qstep or near")


@dataclass(frozen=True)
class Decoder:
    """One implementation of a decoding capability, as the registry chose it, and what it declares.

    Attributes
    ----------
    name : str
        The registry's name of the implementation (``rust``, ``python``, ...).
    decode : callable
        ``decode(data, frame: DecodeFrame) -> ndarray``.
    writes_out : bool
        It decodes straight into ``frame.out`` (else it returns a new array).
    finds_end : bool
        It finds the end marker by the codestream's structure, and leaves out
        what follows, itself (the runner does not walk the codestream again).
    """

    name: str
    decode: Callable[[Any, DecodeFrame], np.ndarray]
    writes_out: bool
    finds_end: bool

    @classmethod
    def of(cls, capability: str, name: str, module) -> Decoder:
        """The record of ``module``'s implementation of ``capability``, from the registry's entry and the module's
        declarations (``WRITES_OUT``, ``FINDS_END``)."""
        attr = next(a for n, _m, a in _backends.REGISTRY[capability] if n == name)
        return cls(name, getattr(module, attr), attr in module.WRITES_OUT, bool(module.FINDS_END))


def jpeg_is_ycbcr(data, photometric: str) -> bool:
    """Whether a 3-component JPEG codestream holds YCbCr (to be converted) rather than RGB.

    Decided per frame from the markers, as libjpeg reads them, with the data
    set's Photometric Interpretation where the markers are silent: an Adobe
    APP14 marker's transform flag (0: RGB, otherwise YCbCr); else a JFIF APP0
    marker (YCbCr); else component identifiers 'R', 'G', 'B' (RGB); else
    YCbCr for YBR_* and RGB for RGB (PS3.5 8.2.1: RGB means "no colour
    transform"; libjpeg alone would guess YCbCr).
    """
    b = bytes(data[:65536]) if not isinstance(data, bytes) else data[:65536]
    jfif = False
    adobe = None
    ids = None
    pos = 2 if b[:2] == b"\xff\xd8" else 0
    while pos + 4 <= len(b):
        if b[pos] != 0xFF:
            break
        marker = b[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        seg = int.from_bytes(b[pos + 2 : pos + 4], "big")
        body = b[pos + 4 : pos + 2 + seg]
        if marker == 0xE0 and body[:5] == b"JFIF\0":
            jfif = True
        elif marker == 0xEE and body[:5] == b"Adobe" and len(body) >= 12:
            adobe = body[11]
        elif marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            if len(body) >= 6:
                n = body[5]
                ids = bytes(body[6 + 3 * k] for k in range(n) if 6 + 3 * k < len(body))
        elif marker == 0xDA:  # start of scan: the headers are over
            break
        pos += 2 + seg
    if adobe is not None:
        return adobe != 0
    if jfif:
        return True
    if ids == b"RGB":
        return False
    return photometric != "RGB"


def check_range(frame: np.ndarray, bits_stored: int, what: str) -> None:
    """Integer samples within Bits Stored (two's complement for signed dtypes): what a codec can keep
    exactly. Raises ValueError otherwise, instead of letting the encoder clip, wrap or overflow them."""
    if frame.dtype.kind not in "iu":
        raise ValueError(f"cannot encode {frame.dtype} samples as {what}")
    if bits_stored < 1:
        raise ValueError(f"Bits Stored {bits_stored}: {what} needs at least 1")
    if bits_stored >= 8 * frame.dtype.itemsize:  # every value of the dtype fits
        return
    signed = frame.dtype.kind == "i"
    lo, hi = (-(1 << (bits_stored - 1)), (1 << (bits_stored - 1)) - 1) if signed else (0, (1 << bits_stored) - 1)
    if frame.size and (int(frame.min()) < lo or int(frame.max()) > hi):
        raise ValueError(f"pixel values lie outside Bits Stored ({bits_stored}): {what} cannot keep them")


def jp2_codestream(data) -> bytes:
    """The J2K codestream of a frame: the frame itself, or the contiguous codestream box (jp2c) of a JP2 file.

    DICOM says the JP2 boxes around a codestream carry nothing that applies
    (PS3.5 A.4.4): the native decoder ignores palette, component mapping and
    channel definition boxes, and the twins decode only the codestream so
    that they give the same samples. A JP2 file without a codestream box, or
    with a box that runs past the data, raises ValueError.
    """
    b = bytes(data)
    if b[4:8] != b"jP  ":
        return b
    pos = 0
    while pos + 8 <= len(b):
        length = int.from_bytes(b[pos : pos + 4], "big")
        kind = b[pos + 4 : pos + 8]
        head = 8
        if length == 1:
            if pos + 16 > len(b):
                break
            length = int.from_bytes(b[pos + 8 : pos + 16], "big")
            head = 16
        elif length == 0:
            length = len(b) - pos
        if length < head or pos + length > len(b):
            raise ValueError("JP2 box length out of range")
        if kind == b"jp2c":
            return b[pos + head : pos + length]
        pos += length
    raise ValueError("JP2 file without a contiguous codestream box")


def unsigned_codes(frame: np.ndarray, bits_stored: int, what: str) -> np.ndarray:
    """A frame as the unsigned codes JPEG and JPEG-LS encoders take: C-contiguous, native order,
    uint8 up to 8 bits and uint16 above; signed samples as their Bits Stored two's complement
    (readers sign-extend from Bits Stored). Values outside Bits Stored raise ValueError."""
    frame = np.ascontiguousarray(frame)
    if frame.dtype.itemsize > 2:
        raise ValueError(f"{what} holds at most 16 bits per sample")
    check_range(frame, bits_stored, what)
    if frame.dtype.kind == "i" and bits_stored > 8 * frame.dtype.itemsize:
        frame = frame.astype(np.int16)  # the two's complement at Bits Stored needs the wider container
    frame = frame.astype(frame.dtype.newbyteorder("="), copy=False)
    if frame.dtype.kind == "i":
        frame = frame.view(f"u{frame.dtype.itemsize}")
        if bits_stored < 8 * frame.dtype.itemsize:
            frame = frame & ((1 << bits_stored) - 1)
    return np.ascontiguousarray(frame, dtype=np.uint8 if bits_stored <= 8 else np.uint16)


#: A JPEG marker: 0xFF, any 0xFF fill bytes, then its code (group 1).
_MARKER = re.compile(rb"\xff+([^\xff])")


def _scan_end(b: bytes, pos: int) -> int | None:
    """Where the marker that ends the entropy-coded data from ``pos`` starts (its first fill byte).

    0xFF followed by a byte below 0x80 is data (JPEG's 0xFF00 stuffing,
    JPEG-LS's bit stuffing) and restart markers (RSTm) belong to the scan.
    """
    find, n = b.find, len(b)
    while True:
        at = find(b"\xff", pos)
        if at < 0:
            return None
        first = at
        while at + 1 < n and b[at + 1] == 0xFF:
            at += 1
        if at + 1 >= n:
            return None
        code = b[at + 1]
        if code >= 0x80 and not 0xD0 <= code <= 0xD7:
            return first
        pos = at + 2


def _jpeg_walk(data) -> tuple[int, list[tuple[int, int, int]]] | None:
    """``(end, markers)`` of a JPEG or JPEG-LS codestream, or None without EOI (see :func:`jpeg_end`).

    ``markers``: ``(code, at, segment)`` of each marker after SOI, EOI
    included (not the RSTm inside scans): ``at`` is its first byte (its first
    fill byte when it has some), ``segment`` the byte after its code. The
    marker that ends a scan is the first one after SOS (0xDA).
    """
    b = data if isinstance(data, bytes) else bytes(data)
    if b[:2] != b"\xff\xd8":
        return None
    n, pos = len(b), 2
    marks: list[tuple[int, int, int]] = []
    while True:
        m = _MARKER.search(b, pos)
        if m is None:
            return None
        code, pos = m.group(1)[0], m.end()
        marks.append((code, m.start(), pos))
        if code == 0xD9:
            return pos, marks
        if code == 0x01 or 0xD0 <= code <= 0xD8:  # stand-alone: TEM, RSTm, SOI
            continue
        if pos + 2 > n:
            return None
        length = (b[pos] << 8) | b[pos + 1]
        if length < 2 or pos + length > n:
            return None
        pos += length
        if code == 0xDA:
            scan = _scan_end(b, pos)
            if scan is None:
                return None
            pos = scan


def jpeg_end(data) -> int | None:
    """The offset after the EOI marker of a JPEG or JPEG-LS codestream, or None when it has none.

    Found by walking the structure from SOI: marker segments by their
    lengths; a scan's entropy-coded data up to the first marker, where 0xFF
    followed by a byte below 0x80 is not one (JPEG's 0xFF00 stuffing,
    JPEG-LS's bit stuffing) and restart markers belong to the scan. Any run of
    0xFF fill bytes may precede any marker but SOI; other bytes between
    marker segments are skipped, as libjpeg skips them. A stream cut inside a
    segment or a scan has no EOI however it is padded; whatever follows EOI
    is padding.

    >>> jpeg_end(bytes.fromhex("ffd8 fffe0004ffd9 ffffd9 00"))  # SOI, a comment holding FFD9, EOI after a fill byte
    11
    """
    walked = _jpeg_walk(data)
    return None if walked is None else walked[0]


def j2k_end(data) -> int | None:
    """The offset after the EOC marker of a JPEG 2000 codestream (SOC first), or None when it has none.

    Main header marker segments by their lengths up to the first SOT, then
    tile-parts by their lengths (Psot) up to EOC; a last tile-part of Psot 0
    runs to the first EOC after its SOD (packet data never holds 0xFF
    followed by a byte above 0x8F). T.800 has no fill bytes: only what
    follows EOC is padding.
    """
    b = data if isinstance(data, bytes) else bytes(data)
    n = len(b)
    if b[:2] != b"\xff\x4f":
        return None

    def segment_end(at: int) -> int | None:
        if at + 4 > n:
            return None
        length = (b[at + 2] << 8) | b[at + 3]
        return at + 2 + length if length >= 2 and at + 2 + length <= n else None

    pos: int | None = 2
    while True:  # the main header
        if pos is None or pos + 2 > n or b[pos] != 0xFF:
            return None
        code = b[pos + 1]
        if code == 0x90:
            break
        if code == 0xD9:
            return pos + 2  # no tile at all: the decoder refuses it
        pos = pos + 2 if 0x30 <= code <= 0x3F else segment_end(pos)
    while True:  # tile-parts: SOT, Lsot, Isot, Psot (4 bytes), TPsot, TNsot
        if pos + 2 > n or b[pos] != 0xFF:
            return None
        if b[pos + 1] == 0xD9:
            return pos + 2
        if b[pos + 1] != 0x90 or pos + 10 > n:
            return None
        psot = int.from_bytes(b[pos + 6 : pos + 10], "big")
        if psot == 0:  # the last tile-part, up to EOC
            at = segment_end(pos)
            while at is not None and at + 2 <= n and b[at] == 0xFF and b[at + 1] != 0x93:
                at = segment_end(at)
            if at is None or at + 2 > n or b[at] != 0xFF:
                return None
            eoc = b.find(b"\xff\xd9", at + 2)
            return None if eoc < 0 else eoc + 2
        if psot < 14 or psot > n - pos:
            return None
        pos += psot


def _jpegls_input(data):
    """``(codestream, P)``: a JPEG-LS codestream up to EOI as CharLS decodes it by T.87's rules.

    T.87 derives RANGE, the bits per sample and LIMIT from MAXVAL; CharLS 2.4
    from the frame's precision P (and clamps predictions with a mask, right
    only for 2^k - 1). An LSE segment's MAXVAL of 2^k - 1 below 2^P - 1 is
    therefore given to CharLS as precision k, which codes the same stream;
    any other MAXVAL below 2^P - 1 raises ValueError rather than decoding
    into wrong samples. Twin of ``prepare`` in the Rust crate's ``jls``.
    """
    walked = _jpeg_walk(data)
    if walked is None:
        raise InvalidDicomError("truncated JPEG-LS codestream: no end-of-image marker (FFD9) at its end")
    end, marks = walked
    b = bytes(data[:end])
    sof = next((seg for code, _at, seg in marks if code == 0xF7), None)
    if sof is None or sof + 3 > len(b):
        raise ValueError("JPEG-LS codestream without a frame header (SOF55)")
    precision = b[sof + 2]
    if not 2 <= precision <= 16:
        return b, precision  # CharLS refuses it
    full = (1 << precision) - 1
    maxvals = [
        (b[seg + 3] << 8) | b[seg + 4]
        for code, _at, seg in marks
        if code == 0xF8 and seg + 5 <= len(b) and b[seg + 2] == 1
    ]
    narrow = {m for m in maxvals if 0 < m < full}
    if not narrow:
        return b, precision
    maxval = narrow.pop()
    k = (maxval + 1).bit_length() - 1
    if narrow or maxval + 1 != 1 << k or k < 2:
        raise ValueError(
            f"JPEG-LS MAXVAL {maxval} (LSE) of a {precision}-bit frame:"
            " CharLS decodes only a MAXVAL of 2^k - 1 by T.87's rules"
        )
    return b[: sof + 2] + bytes((k,)) + b[sof + 3 :], precision


def _jpegls_without_scan_padding(data: bytes) -> bytes | None:
    """``data`` without the zero byte before each marker that ends a scan (None when there is none).

    CharLS 2.4.2 refuses such a stream ("the leading start byte (0xFF) for a
    JPEG marker was not found"); CharLS 2.4.3 accepts it. Twin of
    ``without_scan_padding`` in the Rust crate's ``jls``.
    """
    walked = _jpeg_walk(data)
    if walked is None:
        return None
    drop = [
        at - 1
        for (prev, _a, _s), (_code, at, _seg) in zip(walked[1], walked[1][1:])
        if prev == 0xDA and at >= 2 and data[at - 1] == 0 and data[at - 2] != 0xFF
    ]
    if not drop:
        return None
    parts, start = [], 0
    for at in drop:
        parts.append(data[start:at])
        start = at + 1
    parts.append(data[start:])
    return b"".join(parts)


def jpegls_decode_with(decode, data, *, skips_zero_byte: bool = False) -> np.ndarray:
    """Run a CharLS-based JPEG-LS decode function (``decode(codestream) -> array``) as the native one runs.

    The codestream goes up to EOI, with an LSE MAXVAL of 2^k - 1 decoded at
    precision k (ValueError for a MAXVAL CharLS cannot decode by T.87's
    rules); a stream refused for a zero byte before the marker ending a scan
    is decoded again without it, unless the library skips one such byte
    itself (``skips_zero_byte``: CharLS 2.4.3 and later), so that one zero
    byte is accepted and two are not, whatever the CharLS. Samples of at
    most 8 bits in a frame of more come back as uint16, as natively.
    """
    cs, precision = _jpegls_input(data)
    try:
        arr = np.asarray(decode(cs))
    except Exception as first:
        fixed = None if skips_zero_byte else _jpegls_without_scan_padding(cs)
        if fixed is None:
            raise
        try:
            arr = np.asarray(decode(fixed))
        except Exception:  # noqa: BLE001 - the first failure is the one to report
            raise first from None
    return arr.astype(np.uint16) if precision > 8 and arr.dtype.itemsize == 1 else arr


def _j2k_or_jp2_end(data) -> int | None:
    """:func:`j2k_end`, or the whole length of a JP2 file (its boxes may follow the codestream: the
    decoder checks those)."""
    if bytes(data[4:8]) == b"jP  ":
        return len(data)
    return j2k_end(data)


def _jpeg(method: str | None = None) -> Codec:
    return Codec("jpeg", jpeg_end, frozenset(("YBR_FULL", "YBR_FULL_422")), method)


def _j2k(capability: str, method: str | None = None) -> Codec:
    return Codec(capability, _j2k_or_jp2_end, frozenset(("YBR_RCT", "YBR_ICT")), method)


#: Every encapsulated transfer syntax fastdicom decodes, by its UID.
CODECS: dict[str, Codec] = {
    _uid.RLELossless: Codec("rle"),
    _uid.JPEGBaseline8Bit: _jpeg("ISO_10918_1"),
    _uid.JPEGExtended12Bit: _jpeg("ISO_10918_1"),
    _uid.JPEGLossless: _jpeg(),
    _uid.JPEGLosslessSV1: _jpeg(),
    _uid.JPEGLSLossless: Codec("jpegls", jpeg_end),
    _uid.JPEGLSNearLossless: Codec("jpegls", jpeg_end, method="ISO_14495_1"),
    _uid.JPEG2000Lossless: _j2k("jpeg2000"),
    _uid.JPEG2000: _j2k("jpeg2000", "ISO_15444_1"),
    _uid.HTJ2KLossless: _j2k("htj2k"),
    _uid.HTJ2KLosslessRPCL: _j2k("htj2k"),
    _uid.HTJ2K: _j2k("htj2k", "ISO_15444_15"),
    _uid.DeflatedImageFrameCompression: Codec("deflate_image"),
}
#: transfer syntax -> registry capability (a view of :data:`CODECS`)
CAPABILITY = {ts: codec.capability for ts, codec in CODECS.items()}
#: The lossy syntaxes among them.
LOSSY = frozenset(ts for ts, codec in CODECS.items() if codec.method)
#: What to install for each capability when no implementation is present.
INSTALL = {
    "jpeg": "imagecodecs",
    "jpegls": "imagecodecs (or pyjpegls)",
    "jpeg2000": "imagecodecs (or pylibjpeg-openjpeg, or glymur with libopenjp2 2.4)",
    "htj2k": "imagecodecs (or pylibjpeg-openjpeg, or glymur with libopenjp2 2.5)",
}


#: capability -> (the registry's (name, module) it was built for, its Decoder record)
_DECODERS: dict[str, tuple[tuple[str, Any], Decoder]] = {}


def decoder(transfer_syntax: str) -> Decoder:
    """The decoder the registry chooses for a transfer syntax (raises NoDecoderError)."""
    codec = CODECS.get(transfer_syntax)
    if codec is None:
        raise NoDecoderError(f"no decoder for transfer syntax {transfer_syntax}")
    cap = codec.capability
    try:
        found = _backends.resolve(cap)
    except BackendError:
        raise NoDecoderError(
            f"decoding {transfer_syntax} needs a codec: pip install {INSTALL.get(cap, 'imagecodecs')}"
        ) from None
    cached = _DECODERS.get(cap)
    if cached is None or cached[0] != found:  # equal, not the same: a forced backend's choice is not cached
        cached = _DECODERS[cap] = (found, Decoder.of(cap, *found))
    return cached[1]


def encoder(capability: str) -> Callable[[np.ndarray, EncodeOptions], bytes]:
    """The encode function the registry chooses for an encoding capability (``jpeg_encode``, ...)."""
    name, module = _backends.resolve(capability)
    return getattr(module, next(a for n, _m, a in _backends.REGISTRY[capability] if n == name))


def decoded_photometric(transfer_syntax: str, photometric: str, samples: int) -> str:
    """The colour space of decoded frames (decoders convert YCbCr and undo the J2K transforms)."""
    if samples == 3:
        codec = CODECS.get(transfer_syntax)
        if codec is not None and photometric in codec.to_rgb:
            return "RGB"
    return photometric


def decode_frame(data, frame: DecodeFrame) -> None:
    """Decode one frame's codestream into ``frame.out``, applying the DICOM rules (the one runner).

    The decoder the registry chooses is given ``data`` up to its end marker
    (when it does not find it itself) and ``frame``; what it returns, when it
    is not ``frame.out``, is checked against the frame's shape and copied;
    signed samples are then sign-extended from Bits Stored.
    """
    ts = frame.transfer_syntax
    dec = decoder(ts)
    out = frame.out
    if not dec.finds_end:
        end_of = CODECS[ts].end
        if end_of is not None:
            end = end_of(data)
            if end is None:
                raise InvalidDicomError(f"truncated {ts} codestream: no end-of-image marker (FFD9) at its end")
            if end < len(data):  # padding after the end marker
                data = memoryview(data)[:end]
    try:
        arr = dec.decode(data, frame)
    except FastDicomError:
        raise
    except Exception as exc:  # noqa: BLE001 - a library's error becomes ours
        raise InvalidDicomError(f"frame does not decode as {ts}: {exc}") from None
    if arr is not out:
        _store(np.asarray(arr), out, ts)
    bs, ba = frame.bits_stored, frame.bits_allocated
    if bs < ba and frame.pixel_representation == 1 and out.dtype.kind == "i":
        shift = ba - bs
        out <<= shift
        out >>= shift


def _store(arr: np.ndarray, out: np.ndarray, ts: str) -> None:
    """A decoder's own array into the frame's: same shape (a trailing axis of one dropped), values reinterpreted
    in the frame's type, or narrowed when every value fits."""
    shape = out.shape
    if arr.ndim == 3 and arr.shape[-1] == 1 and len(shape) == 2:
        arr = arr[..., 0]
    if arr.shape != shape:
        raise InvalidDicomError(f"decoded frame has shape {arr.shape}, the data set says {shape}")
    if arr.dtype.itemsize == out.dtype.itemsize and arr.dtype.kind in "iu":
        out[...] = arr.view(out.dtype)
    elif arr.dtype.itemsize > out.dtype.itemsize and arr.size and arr.dtype.kind in "iu" and out.dtype.kind in "iu":
        info = np.iinfo(out.dtype)
        if int(arr.max()) > info.max or int(arr.min()) < info.min:
            raise InvalidDicomError(
                f"the {ts} codestream holds samples that do not fit Bits Allocated {8 * out.dtype.itemsize}"
            )
        out[...] = arr.astype(out.dtype)
    else:
        out[...] = arr.astype(out.dtype, copy=False)
