"""Codecs that need nothing but the standard library (and their own twin): Deflated Image Frame Compression."""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InvalidDicomError

if TYPE_CHECKING:
    from .codecs import DecodeFrame

REQUIRES = ""
#: The decoders that write into ``frame.out``.
WRITES_OUT = frozenset(("deflate_image_decode",))
#: Raw DEFLATE has no end marker to find.
FINDS_END = False


def deflate_image_decode(data, frame: DecodeFrame) -> np.ndarray:
    """Raw DEFLATE of one frame's uncompressed bytes (1.2.840.10008.1.2.8.1) into ``frame.out``: exactly its
    size must come out."""
    out = frame.out
    size = out.nbytes
    d = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        raw = d.decompress(bytes(data), size)
    except zlib.error as exc:
        raise InvalidDicomError(f"deflated frame does not inflate: {exc}") from None
    if d.unconsumed_tail:
        raise InvalidDicomError(f"deflated frame inflates past the {size} bytes of a frame")
    if len(raw) < size:
        raise InvalidDicomError(f"deflated frame inflates to {len(raw)} bytes, a frame holds {size}")
    out.reshape(-1).view(np.uint8)[:] = np.frombuffer(raw, dtype=np.uint8)
    return out
