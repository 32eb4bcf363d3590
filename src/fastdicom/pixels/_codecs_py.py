"""Codecs that need nothing but the standard library (and their own twin): Deflated Image Frame Compression."""

from __future__ import annotations

import zlib

from ..errors import InvalidDicomError

REQUIRES = ""


def deflate_image_decode(data, size: int) -> bytes:
    """Raw DEFLATE of one frame's uncompressed bytes (1.2.840.10008.1.2.8.1); at most ``size`` bytes come out."""
    d = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        out = d.decompress(bytes(data), size)
    except zlib.error as exc:
        raise InvalidDicomError(f"deflated frame does not inflate: {exc}") from None
    if d.unconsumed_tail:
        raise InvalidDicomError(f"deflated frame inflates past the {size} bytes of a frame")
    if len(out) < size:
        raise InvalidDicomError(f"deflated frame inflates to {len(out)} bytes, a frame holds {size}")
    return out
