"""Frame codecs in the Rust extension: JPEG through libjpeg-turbo 3.1, JPEG 2000 and HTJ2K through
OpenJPEG 2.5, JPEG-LS through CharLS 2.4.

Same calls and results as the imagecodecs twins in ``_codecs_imagecodecs``:
one frame's codestream in, an ndarray out (``(rows, columns)`` or ``(rows,
columns, samples)``; uint8/int8, uint16/int16 or uint32/int32 by the
codestream's precision and sign), multi-component transforms undone. The
DICOM rules (sign, precision, colour) are applied by ``fastdicom.pixels.codecs``.
The decode runs with the GIL released, so frames decode in parallel threads.
"""

from __future__ import annotations

import numpy as np

from .. import _rust
from .codecs import check_range, unsigned_codes

__version__ = _rust.__version__

_DTYPES = {(1, False): np.uint8, (1, True): np.int8, (2, False): np.uint16, (2, True): np.int16}


def jpeg2000_decode(data, shape: tuple[int, ...] | None = None, threads: int = 1) -> np.ndarray:
    """``shape`` (the data set's frame shape) is checked against the header before decoding."""
    if shape is None:
        raise ValueError("the native JPEG 2000 decoder needs the frame shape")
    rows, columns = shape[0], shape[1]
    samples = shape[2] if len(shape) > 2 else 1
    raw, _precision, signed, size = _rust.j2k_decode(data, rows, columns, samples, threads)
    dtype = _DTYPES.get((size, signed), np.int32 if signed else np.uint32)
    arr = np.frombuffer(raw, dtype=dtype)
    return arr.reshape((rows, columns, samples) if samples > 1 else (rows, columns))


def htj2k_decode(data, shape: tuple[int, ...] | None = None, threads: int = 1) -> np.ndarray:
    """HTJ2K (Part 15) through OpenJPEG's HT block decoder."""
    return jpeg2000_decode(data, shape, threads)


def jpeg2000_encode(frame: np.ndarray, bits_stored: int, ratio: float = 0.0, threads: int = 1) -> bytes:
    """One frame (``(rows, columns)`` or ``(rows, columns, samples)``, integers) as a J2K codestream.

    ``ratio`` 0 is lossless; otherwise the target compression ratio (irreversible).
    Values must lie in the range of ``bits_stored`` bits (signed for signed dtypes): ValueError otherwise.
    """
    frame = np.ascontiguousarray(frame)
    check_range(frame, bits_stored, "JPEG 2000")
    if frame.dtype.byteorder not in ("=", "|"):
        frame = frame.astype(frame.dtype.newbyteorder("="))
    rows, columns = frame.shape[:2]
    samples = frame.shape[2] if frame.ndim > 2 else 1
    signed = frame.dtype.kind == "i"
    raw = frame.reshape(-1).view(np.uint8)
    return _rust.j2k_encode(
        raw, rows, columns, samples, frame.dtype.itemsize, bits_stored, signed, float(ratio), threads
    )


def jpegls_decode(data, shape: tuple[int, ...] | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """JPEG-LS lossless and near-lossless: uint8 up to 8 bits, uint16 above (the caller applies the sign).

    ``out``: a C-contiguous array of the frame's shape to decode into when its
    item size matches the codestream's samples (no allocation, no copy); it
    is returned as it is (its own dtype). Otherwise a new array is returned.
    """
    if shape is None:
        raise ValueError("the native JPEG-LS decoder needs the frame shape")
    rows, columns = shape[0], shape[1]
    samples = shape[2] if len(shape) > 2 else 1
    if out is not None and out.flags.c_contiguous and out.dtype.itemsize in (1, 2) and out.shape == tuple(shape):
        try:
            _rust.jls_decode_into(data, out.reshape(-1).view(np.uint8), rows, columns, samples)
            return out
        except ValueError as exc:
            if not str(exc).startswith("destination"):
                raise
    raw, _bits, size = _rust.jls_decode(data, rows, columns, samples)
    arr = np.frombuffer(raw, dtype=np.uint8 if size == 1 else np.uint16)
    return arr.reshape((rows, columns, samples) if samples > 1 else (rows, columns))


def jpegls_encode(frame: np.ndarray, bits_stored: int, near: int = 0) -> bytes:
    """One frame as JPEG-LS; signed samples are stored as their ``bits_stored``-bit two's complement."""
    unsigned = unsigned_codes(frame, bits_stored, "JPEG-LS")
    rows, columns = unsigned.shape[:2]
    samples = unsigned.shape[2] if unsigned.ndim > 2 else 1
    raw = unsigned.reshape(-1).view(np.uint8)
    return _rust.jls_encode(raw, rows, columns, samples, bits_stored, near)


def jpeg_decode(data, shape=None, out=None, photometric: str = "", as_rgb: bool = True) -> np.ndarray:
    """JPEG baseline, extended (12-bit) and lossless (processes 14 and SV1, 2 to 16 bits).

    A 3-component stream is YCbCr or RGB by its markers (the data set's
    ``photometric`` where they are silent: see
    :func:`fastdicom.pixels.codecs.jpeg_is_ycbcr`, the same rule); YCbCr
    comes out as RGB unless ``as_rgb`` is False. ``out``: a C-contiguous
    integer array of the frame's shape to decode into (returned as it is);
    otherwise a new uint8 (up to 8 bits) or uint16 array is returned.
    """
    if shape is None:
        raise ValueError("the native JPEG decoder needs the frame shape")
    shape = tuple(shape)
    rows, columns = shape[0], shape[1]
    samples = shape[2] if len(shape) > 2 else 1
    head = _rust.jpeg_header(data)
    precision = head[0] if head else 8
    dest = out
    if (
        dest is None
        or not dest.flags.c_contiguous
        or dest.shape != shape
        or dest.dtype.kind not in "iu"
        or dest.dtype.itemsize not in (1, 2)
        or (precision > 8 and dest.dtype.itemsize == 1)
    ):
        dest = np.empty(shape, dtype=np.uint8 if precision <= 8 else np.uint16)
    _precision, lossless, ycbcr, _converted = _rust.jpeg_decode_into(
        data,
        dest.reshape(-1).view(np.uint8),
        rows,
        columns,
        samples,
        dest.dtype.itemsize,
        photometric == "RGB",
        not as_rgb,
    )
    if ycbcr and lossless and as_rgb:  # libjpeg converts no colour losslessly
        if dest.dtype.itemsize != 1:
            raise ValueError("YCbCr to RGB for a lossless JPEG of more than 8 bits is not supported")
        from .processing import convert_color_space

        dest[...] = convert_color_space(dest, "YBR_FULL", "RGB")
    return dest


def jpeg_encode(
    frame: np.ndarray, bits_stored: int, *, lossless: bool = True, quality: int = 90, subsample: bool = True
) -> bytes:
    """One frame as JPEG: lossless process 14 SV1 at ``bits_stored`` bits (signed samples as their
    Bits Stored two's complement), or baseline 8-bit at ``quality`` (colour as YCbCr, 4:2:2 when
    ``subsample``). Even length."""
    if not lossless and (bits_stored > 8 or np.asarray(frame).dtype.itemsize != 1):
        raise ValueError("JPEG baseline holds 8-bit samples")
    codes = unsigned_codes(frame, bits_stored, "JPEG")
    rows, columns = codes.shape[:2]
    samples = codes.shape[2] if codes.ndim > 2 else 1
    return _rust.jpeg_encode(
        codes.reshape(-1).view(np.uint8), rows, columns, samples, bits_stored, lossless, quality, subsample
    )
