"""JPEG-LS through pyjpegls (CharLS): a pure-Python backend for where imagecodecs is not.

Importing this module fails without the ``jpeg_ls`` package (``pip install
pyjpegls``), which tells the registry that this implementation is missing.
Same calls as the native codec: decoding returns the unsigned codes (the
caller applies the sign), encoding takes the Bits Stored two's complement of
signed samples, as natively.
"""

from __future__ import annotations

import jpeg_ls
import numpy as np

from .codecs import jpegls_decode_with, unsigned_codes

REQUIRES = "pyjpegls"


def jpegls_decode(data, shape=None) -> np.ndarray:
    """One JPEG-LS codestream: (rows, columns[, samples]) uint8 up to 8 bits, uint16 above, interleaved.

    CharLS inside pyjpegls, with the native decoder's rules around it (LSE
    MAXVAL, padding): see :func:`fastdicom.pixels.codecs.jpegls_decode_with`.
    """
    return jpegls_decode_with(lambda cs: jpeg_ls.decode(np.frombuffer(cs, dtype=np.uint8)), data)


def jpegls_encode(frame: np.ndarray, bits_stored: int, near: int = 0) -> bytes:
    """One frame as JPEG-LS at precision ``bits_stored``, samples interleaved by pixel. Even length."""
    codes = unsigned_codes(frame, bits_stored, "JPEG-LS")
    rows, columns = codes.shape[:2]
    samples = codes.shape[2] if codes.ndim > 2 else 1
    if samples not in (1, 3):
        raise ValueError(f"JPEG-LS encoding of {samples} samples is not supported")
    little = codes.astype(codes.dtype.newbyteorder("<"), copy=False)
    out = bytes(
        jpeg_ls.encode_buffer(
            little.tobytes(),
            rows,
            columns,
            samples,
            bits_stored,
            lossy_error=near,
            interleave_mode=2 if samples > 1 else None,
        )
    )
    return out + b"\0" if len(out) % 2 else out
