"""Frame codecs in the Rust extension: RLE Lossless (our crate), JPEG through libjpeg-turbo 3.1, JPEG 2000
and HTJ2K through OpenJPEG 2.5, JPEG-LS through CharLS 2.4.

The contracts of ``fastdicom.pixels.codecs``, as every twin: ``decode(data,
frame)`` takes one frame's codestream and its :class:`~.codecs.DecodeFrame`,
writes into ``frame.out`` where it can (RLE, JPEG, JPEG-LS) and returns it,
else returns a new array (``(rows, columns)`` or ``(rows, columns,
samples)``; uint8/int8, uint16/int16 or uint32/int32 by the codestream's
precision and sign), multi-component transforms undone; ``encode(frame,
options)`` takes one frame and its :class:`~.codecs.EncodeOptions`. The
DICOM rules (sign, precision, colour) are applied by the runner. Headers
are checked against the frame's shape before decoding, and the end marker
is found by the codestream's structure (the crate's ``markers``). Decoding
and encoding run with the GIL released, so frames go through in parallel
threads.
"""

from __future__ import annotations

import numpy as np

from .. import _rust
from .codecs import DecodeFrame, EncodeOptions, check_range, unsigned_codes

__version__ = _rust.__version__

#: The decoders that write into ``frame.out`` (the others return a new array).
WRITES_OUT = frozenset(("rle_decode", "jpeg_decode", "jpegls_decode"))
#: They find the end of the codestream by its structure themselves.
FINDS_END = True

_DTYPES = {(1, False): np.uint8, (1, True): np.int8, (2, False): np.uint16, (2, True): np.int16}


def rle_decode(data, frame: DecodeFrame) -> np.ndarray:
    """RLE Lossless (PS3.5 Annex G) straight into ``frame.out``."""
    out = frame.out
    _rust.rle_decode_into(
        data, out.reshape(-1).view(np.uint8), frame.rows, frame.columns, frame.samples, frame.bits_allocated
    )
    return out


def rle_encode(frame: np.ndarray, options: EncodeOptions) -> bytes:
    """One frame as RLE Lossless: a segment per byte of each sample (``options`` asks nothing of it)."""
    little = np.ascontiguousarray(frame.astype(frame.dtype.newbyteorder("<"), copy=False))
    samples = little.shape[2] if little.ndim > 2 else 1
    return _rust.rle_encode_frame(little.tobytes(), little.shape[0], little.shape[1], samples, 8 * little.itemsize)


def jpeg2000_decode(data, frame: DecodeFrame) -> np.ndarray:
    """JPEG 2000 Part 1 (J2K codestream or JP2 file, its boxes ignored), on ``frame.threads`` threads."""
    rows, columns, samples = frame.rows, frame.columns, frame.samples
    raw, _precision, signed, size = _rust.j2k_decode(data, rows, columns, samples, frame.threads)
    dtype = _DTYPES.get((size, signed), np.int32 if signed else np.uint32)
    arr = np.frombuffer(raw, dtype=dtype)
    return arr.reshape((rows, columns, samples) if samples > 1 else (rows, columns))


def htj2k_decode(data, frame: DecodeFrame) -> np.ndarray:
    """HTJ2K (Part 15) through OpenJPEG's HT block decoder."""
    return jpeg2000_decode(data, frame)


def jpeg2000_encode(frame: np.ndarray, options: EncodeOptions) -> bytes:
    """One frame (``(rows, columns)`` or ``(rows, columns, samples)``, integers) as a J2K codestream.

    Lossless: the reversible 5/3 wavelet (RCT for three samples); lossy:
    irreversible (9/7, ICT) at the compression ratio ``options.ratio``.
    Values must lie in the range of Bits Stored (signed for signed dtypes):
    ValueError otherwise.
    """
    frame = np.ascontiguousarray(frame)
    bits_stored = options.bits_stored
    check_range(frame, bits_stored, "JPEG 2000")
    if frame.dtype.byteorder not in ("=", "|"):
        frame = frame.astype(frame.dtype.newbyteorder("="))
    rows, columns = frame.shape[:2]
    samples = frame.shape[2] if frame.ndim > 2 else 1
    signed = frame.dtype.kind == "i"
    raw = frame.reshape(-1).view(np.uint8)
    ratio = 0.0 if options.lossless else float(options.ratio)
    return _rust.j2k_encode(
        raw, rows, columns, samples, frame.dtype.itemsize, bits_stored, signed, ratio, options.threads
    )


def jpegls_decode(data, frame: DecodeFrame) -> np.ndarray:
    """JPEG-LS lossless and near-lossless, into ``frame.out`` when its item size holds the codestream's samples
    (1 or 2 bytes); otherwise a new array, uint8 up to 8 bits and uint16 above (the runner applies the sign)."""
    out = frame.out
    rows, columns, samples = frame.rows, frame.columns, frame.samples
    if out.dtype.itemsize in (1, 2):
        try:
            _rust.jls_decode_into(data, out.reshape(-1).view(np.uint8), rows, columns, samples)
            return out
        except ValueError as exc:
            if not str(exc).startswith("destination"):
                raise
    raw, _bits, size = _rust.jls_decode(data, rows, columns, samples)
    arr = np.frombuffer(raw, dtype=np.uint8 if size == 1 else np.uint16)
    return arr.reshape((rows, columns, samples) if samples > 1 else (rows, columns))


def jpegls_encode(frame: np.ndarray, options: EncodeOptions) -> bytes:
    """One frame as JPEG-LS at precision Bits Stored; signed samples are stored as their Bits Stored two's
    complement. Near-lossless at ``options.near``; ``options.preset`` writes an LSE segment of preset coding
    parameters."""
    unsigned = unsigned_codes(frame, options.bits_stored, "JPEG-LS")
    rows, columns = unsigned.shape[:2]
    samples = unsigned.shape[2] if unsigned.ndim > 2 else 1
    raw = unsigned.reshape(-1).view(np.uint8)
    near = 0 if options.lossless else options.near
    return _rust.jls_encode(raw, rows, columns, samples, options.bits_stored, near, options.preset)


def _precision(data) -> int:
    """The sample precision a JPEG frame header gives (8 when there is none to read: the decoder says why)."""
    head = _rust.jpeg_header(data)
    return head[0] if head else 8


def jpeg_decode(data, frame: DecodeFrame) -> np.ndarray:
    """JPEG baseline, extended (12-bit) and lossless (processes 14 and SV1, 2 to 16 bits).

    A 3-component stream is YCbCr or RGB by its markers (``frame.photometric``
    where they are silent: see :func:`fastdicom.pixels.codecs.jpeg_is_ycbcr`,
    the same rule); YCbCr comes out as RGB unless ``frame.as_rgb`` is False.
    Decoded into ``frame.out`` (an integer array of 1 or 2 bytes a sample,
    wide enough for the precision); otherwise into a new uint8 (up to 8
    bits) or uint16 array.
    """
    dest = frame.out
    rows, columns, samples = frame.rows, frame.columns, frame.samples
    kind, size = dest.dtype.kind, dest.dtype.itemsize
    if kind not in "iu" or size not in (1, 2) or (size == 1 and _precision(data) > 8):
        dest = np.empty(frame.shape, dtype=np.uint8 if _precision(data) <= 8 else np.uint16)
    _bits, lossless, ycbcr, _converted = _rust.jpeg_decode_into(
        data,
        dest.reshape(-1).view(np.uint8),
        rows,
        columns,
        samples,
        dest.dtype.itemsize,
        frame.photometric == "RGB",
        not frame.as_rgb,
    )
    if ycbcr and lossless and frame.as_rgb:  # libjpeg converts no colour losslessly
        if dest.dtype.itemsize != 1:
            raise ValueError("YCbCr to RGB for a lossless JPEG of more than 8 bits is not supported")
        from .processing import convert_color_space

        dest[...] = convert_color_space(dest, "YBR_FULL", "RGB")
    return dest


def jpeg_encode(frame: np.ndarray, options: EncodeOptions) -> bytes:
    """One frame as JPEG: lossless process 14 SV1 at Bits Stored (signed samples as their Bits Stored two's
    complement), or baseline 8-bit at ``options.quality`` (colour as YCbCr, 4:2:2 when ``options.subsample``).
    Even length."""
    bits_stored = options.bits_stored
    if not options.lossless and (bits_stored > 8 or np.asarray(frame).dtype.itemsize != 1):
        raise ValueError("JPEG baseline holds 8-bit samples")
    codes = unsigned_codes(frame, bits_stored, "JPEG")
    rows, columns = codes.shape[:2]
    samples = codes.shape[2] if codes.ndim > 2 else 1
    return _rust.jpeg_encode(
        codes.reshape(-1).view(np.uint8),
        rows,
        columns,
        samples,
        bits_stored,
        options.lossless,
        options.quality,
        options.subsample,
    )
