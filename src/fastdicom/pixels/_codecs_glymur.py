"""JPEG 2000 and HTJ2K decoding through glymur over the system's OpenJPEG (libopenjp2): a pure-Python backend.

Importing this module fails without glymur, or when glymur finds no
libopenjp2 of at least 2.4 (what glymur 0.14 reads with; Debian:
``apt-get install libopenjp2-7``), which tells the registry that this
implementation is missing; ``htj2k_decode`` exists only with libopenjp2 2.5
or later (OpenJPEG's HT decoder). glymur reads files only, so each
codestream goes through a private temporary file that is removed before
returning; JP2 boxes are dropped first (the native decoder ignores them).
This twin is the slowest and comes last; it decodes up to 16 bits a sample.
"""

from __future__ import annotations

import os
import tempfile

import glymur
import numpy as np

from .codecs import DecodeFrame, jp2_codestream

REQUIRES = "glymur"
#: Its decoders return a new array (they do not write into ``frame.out``).
WRITES_OUT: frozenset[str] = frozenset()
#: The runner finds the end of each codestream for them.
FINDS_END = False
_LIBRARY = tuple(int(p) for p in glymur.version.openjpeg_version.split(".")[:2])

if _LIBRARY < (2, 4):
    raise ImportError(f"glymur finds no usable libopenjp2 ({glymur.version.openjpeg_version!r}; 2.4 or later needed)")


def jpeg2000_decode(data, frame: DecodeFrame) -> np.ndarray:
    """One J2K codestream (or JP2 file, its boxes ignored)."""
    fd, path = tempfile.mkstemp(suffix=".j2k")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(jp2_codestream(data))
        return np.ascontiguousarray(glymur.Jp2k(path)[:])
    finally:
        os.unlink(path)


if _LIBRARY >= (2, 5):

    def htj2k_decode(data, frame: DecodeFrame) -> np.ndarray:
        """HTJ2K through OpenJPEG's HT block decoder."""
        return jpeg2000_decode(data, frame)
