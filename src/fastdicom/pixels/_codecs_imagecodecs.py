"""Frame codecs over imagecodecs (libjpeg-turbo, CharLS, OpenJPEG, OpenJPH): the pure-Python backend.

Importing this module fails without imagecodecs, which tells the registry
that this implementation is missing. The contracts of
``fastdicom.pixels.codecs``: each decoder takes one frame's codestream and
its ``DecodeFrame`` and returns a new ndarray as the library gives it (none
writes into ``frame.out``); the DICOM rules (sign, precision, colour) are
applied by the runner. Each encoder takes a frame and its ``EncodeOptions``.
"""

from __future__ import annotations

import imagecodecs
import numpy as np

from .codecs import (
    HTJ2K_MAX_QSTEP,
    DecodeFrame,
    EncodeOptions,
    check_range,
    jp2_codestream,
    jpegls_decode_with,
    unsigned_codes,
)

REQUIRES = "imagecodecs"
#: None of these decoders writes into ``frame.out``.
WRITES_OUT: frozenset[str] = frozenset()
#: The runner finds the end of each codestream for them.
FINDS_END = False


def _ycbcr_to_rgb(arr: np.ndarray) -> np.ndarray:
    """Lossless JPEG decoders never convert colour: YCbCr to RGB here (8-bit only)."""
    if arr.dtype != np.uint8:
        raise ValueError("YCbCr to RGB for a lossless JPEG of more than 8 bits is not supported")
    from .processing import convert_color_space

    return convert_color_space(arr, "YBR_FULL", "RGB")


def jpeg_decode(data, frame: DecodeFrame) -> np.ndarray:
    """JPEG baseline, extended (12-bit) and lossless (processes 14 and SV1) through libjpeg-turbo 3.

    As the native decoder: a 3-component stream is YCbCr or RGB by its
    markers (``frame.photometric`` where they are silent, see
    :func:`fastdicom.pixels.codecs.jpeg_is_ycbcr`); YCbCr comes out as RGB
    unless ``frame.as_rgb`` is False (then as coded). The result is a new array.
    """
    from .codecs import jpeg_is_ycbcr

    colour = len(frame.shape) == 3
    ycbcr = jpeg_is_ycbcr(data, frame.photometric) if colour else False
    keep = ycbcr and not frame.as_rgb
    try:
        if not colour:
            return imagecodecs.jpeg8_decode(data)
        if ycbcr and keep:
            return imagecodecs.jpeg8_decode(data, colorspace="YCbCr", outcolorspace="YCbCr")
        return imagecodecs.jpeg8_decode(data, colorspace="YCbCr" if ycbcr else "RGB", outcolorspace="RGB")
    except Exception as first:  # noqa: BLE001 - try the dedicated lossless decoders before giving up
        for fallback in (imagecodecs.ljpeg_decode, imagecodecs.jpegsof3_decode):
            try:
                arr = fallback(data)
            except Exception:  # noqa: BLE001
                continue
            if arr.size == 0:
                continue
            if ycbcr and not keep and arr.ndim == 3 and arr.shape[-1] == 3:
                arr = _ycbcr_to_rgb(arr)
            return arr
        raise ValueError(str(first)) from None


def jpeg_encode(frame: np.ndarray, options: EncodeOptions) -> bytes:
    """Twin of the native JPEG encoder (libjpeg-turbo inside imagecodecs), even length.

    Lossless: process 14, selection value 1, precision Bits Stored, signed
    samples stored as their Bits Stored two's complement. Baseline: 8-bit at
    ``options.quality``, colour as YCbCr (4:2:2 when ``options.subsample``).
    """
    bits_stored = options.bits_stored
    frame = unsigned_codes(frame, bits_stored, "JPEG")
    if options.lossless:
        out = imagecodecs.jpeg8_encode(frame, lossless=True, predictor=1, bitspersample=bits_stored)
    else:
        if bits_stored > 8 or frame.dtype != np.uint8:
            raise ValueError("JPEG baseline holds 8-bit samples")
        colour = frame.ndim == 3
        out = imagecodecs.jpeg8_encode(
            frame,
            level=options.quality,
            colorspace="RGB" if colour else None,
            outcolorspace="YCbCr" if colour else None,
            subsampling="422" if options.subsample else "444",
        )
    out = bytes(out)
    return out + b"\0" if len(out) % 2 else out


def _charls_version() -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in imagecodecs.jpegls_version().split()[-1].split(".")[:3])
    except Exception:  # noqa: BLE001 - an unknown version is an old one
        return (0,)


#: CharLS 2.4.3 skips a zero byte before the marker that ends a scan by itself (2.4.2 refuses it).
_SKIPS_ZERO_BYTE = _charls_version() >= (2, 4, 3)


def jpegls_decode(data, frame: DecodeFrame) -> np.ndarray:
    """CharLS inside imagecodecs, with the native decoder's rules around it (LSE MAXVAL, padding):
    see :func:`fastdicom.pixels.codecs.jpegls_decode_with`."""
    return jpegls_decode_with(imagecodecs.jpegls_decode, data, skips_zero_byte=_SKIPS_ZERO_BYTE)


def jpegls_encode(frame: np.ndarray, options: EncodeOptions) -> bytes:
    """Twin of the native JPEG-LS encoder (CharLS inside imagecodecs), even length; no preset coding
    parameters (imagecodecs has no option for them)."""
    if options.preset is not None:
        raise NotImplementedError("JPEG-LS preset coding parameters need the native build of fastdicom")
    bits_stored, near = options.bits_stored, 0 if options.lossless else options.near
    frame = np.ascontiguousarray(frame)
    if frame.dtype.itemsize > 2:
        raise ValueError("JPEG-LS holds at most 16 bits per sample")
    check_range(frame, bits_stored, "JPEG-LS")
    coded = 8 if frame.dtype.kind == "u" and bits_stored <= 8 else 8 * frame.dtype.itemsize
    if near and bits_stored < coded:
        # imagecodecs codes that precision, not Bits Stored: an error of +-near could leave Bits Stored.
        raise ValueError("near-lossless JPEG-LS below the container's precision needs the native build or pyjpegls")
    frame = frame.astype(frame.dtype.newbyteorder("="), copy=False)
    if frame.dtype.kind == "i":
        # imagecodecs sets the codestream precision from the container, not from Bits Stored:
        # store the container's two's complement (readers take it as it is, no sign extension).
        frame = frame.view(f"u{frame.dtype.itemsize}")
    elif bits_stored <= 8:
        frame = frame.astype(np.uint8)
    frame = np.ascontiguousarray(frame)
    out = bytes(imagecodecs.jpegls_encode(frame, level=near))
    return out + b"\0" if len(out) % 2 else out


def jpeg2000_decode(data, frame: DecodeFrame) -> np.ndarray:
    """JPEG 2000 Part 1 through OpenJPEG (the runner checks the result's shape). JP2 boxes are ignored, as
    natively: only the codestream is decoded."""
    return imagecodecs.jpeg2k_decode(jp2_codestream(data))


def htj2k_decode(data, frame: DecodeFrame) -> np.ndarray:
    """OpenJPEG first (what pydicom's plugins use, so lossy frames round alike), then OpenJPH."""
    data = jp2_codestream(data)
    try:
        return imagecodecs.jpeg2k_decode(data)
    except Exception:  # noqa: BLE001
        return imagecodecs.htj2k_decode(data)


def htj2k_encode(frame: np.ndarray, options: EncodeOptions) -> bytes:
    """Twin of the native HTJ2K encoder (OpenJPH inside imagecodecs): same options, even length.

    imagecodecs' ``level`` is OpenJPH's quantisation step, scaled here so
    that ``options.qstep`` means the same as natively (relative to the Bits Stored
    range); the bytes differ from the native encoder's (imagecodecs bundles
    a newer OpenJPH). The codestream precision is the container's (8 or 16
    bits) rather than Bits Stored: imagecodecs has no option for it; values
    must still lie within Bits Stored.
    """
    bits_stored, rpcl = options.bits_stored, options.rpcl
    qstep = 0.0 if options.lossless else options.qstep
    if qstep > HTJ2K_MAX_QSTEP:  # the native encoder's limit, kept here so that both refuse the same steps
        raise ValueError(f"quantisation steps above {HTJ2K_MAX_QSTEP} of the sample range are refused")
    frame = np.ascontiguousarray(frame)
    if frame.dtype.kind not in "iu" or frame.ndim not in (2, 3) or frame.dtype.itemsize > 2:
        raise ValueError(f"cannot encode a {frame.ndim}-D {frame.dtype} frame as HTJ2K")
    signed = frame.dtype.kind == "i"
    if not 1 <= bits_stored <= 8 * frame.dtype.itemsize:
        raise ValueError(f"cannot encode {bits_stored} bits stored in {frame.dtype.itemsize}-byte samples")
    check_range(frame, bits_stored, "HTJ2K")
    if bits_stored <= 8:
        frame = frame.astype(np.int8 if signed else np.uint8)
    frame = frame.astype(frame.dtype.newbyteorder("="), copy=False)
    rows, columns = frame.shape[:2]
    levels = 5  # as _codecs_openjph.levels_for
    while levels and (1 << levels) > min(rows, columns):
        levels -= 1
    if rpcl:
        while -(-max(rows, columns) >> levels) > 64:
            levels += 1
    # OpenJPH's step is relative to the codestream's range: here the container's, natively Bits Stored's.
    step = qstep * 2.0 ** (bits_stored - 8 * frame.dtype.itemsize)
    out = bytes(
        imagecodecs.htj2k_encode(
            frame,
            level=step if qstep else None,
            reversible=not qstep,
            resolutions=max(levels, 1),  # imagecodecs takes 0 for its default (5)
            tlm=rpcl,
        )
    )
    return out + b"\0" if len(out) % 2 else out


def jpeg2000_encode(frame: np.ndarray, options: EncodeOptions) -> bytes:
    """Twin of the native encoder for lossless J2K codestreams (even length).

    Lossy encoding needs the native build: imagecodecs' quality setting does
    not mean a compression ratio, so its results would not match.
    """
    if not options.lossless:
        raise NotImplementedError("lossy JPEG 2000 encoding needs the native build of fastdicom")
    bits_stored = options.bits_stored
    frame = np.ascontiguousarray(frame)
    check_range(frame, bits_stored, "JPEG 2000")
    out = bytes(
        imagecodecs.jpeg2k_encode(frame, codecformat="J2K", reversible=True, bitspersample=bits_stored, mct=True)
    )
    return out + b"\0" if len(out) % 2 else out
