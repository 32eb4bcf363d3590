"""JPEG-LS through pyjpegls (CharLS): a pure-Python backend for where imagecodecs is not.

Importing this module fails without the ``jpeg_ls`` package (``pip install
pyjpegls``), which tells the registry that this implementation is missing.
The contracts of ``fastdicom.pixels.codecs``, as natively: decoding returns
the unsigned codes as a new array (the runner applies the sign), encoding
takes the Bits Stored two's complement of signed samples.
"""

from __future__ import annotations

import jpeg_ls
import numpy as np

from .codecs import DecodeFrame, EncodeOptions, jpegls_decode_with, unsigned_codes

REQUIRES = "pyjpegls"
#: Its decoder returns a new array (it does not write into ``frame.out``).
WRITES_OUT: frozenset[str] = frozenset()
#: The runner finds the end of each codestream for it.
FINDS_END = False


def jpegls_decode(data, frame: DecodeFrame) -> np.ndarray:
    """One JPEG-LS codestream: (rows, columns[, samples]) uint8 up to 8 bits, uint16 above, interleaved.

    CharLS inside pyjpegls, with the native decoder's rules around it (LSE
    MAXVAL, padding): see :func:`fastdicom.pixels.codecs.jpegls_decode_with`.
    """
    return jpegls_decode_with(lambda cs: jpeg_ls.decode(np.frombuffer(cs, dtype=np.uint8)), data)


def jpegls_encode(frame: np.ndarray, options: EncodeOptions) -> bytes:
    """One frame as JPEG-LS at precision Bits Stored, samples interleaved by pixel. Even length. No preset
    coding parameters (pyjpegls has no option for them)."""
    if options.preset is not None:
        raise NotImplementedError("JPEG-LS preset coding parameters need the native build of fastdicom")
    bits_stored, near = options.bits_stored, 0 if options.lossless else options.near
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
