"""JPEG 2000 and HTJ2K decoding through glymur over the system's OpenJPEG (libopenjp2): a pure-Python backend.

Importing this module fails without glymur, or when glymur finds no
libopenjp2 (Debian: ``apt-get install libopenjp2-7``), which tells the
registry that this implementation is missing. glymur reads files only, so
each codestream goes through a private temporary file that is removed
before returning; this twin is the slowest and comes last. Decoding only.
"""

from __future__ import annotations

import os
import tempfile

import glymur
import numpy as np

REQUIRES = "glymur"

if tuple(int(p) for p in glymur.version.openjpeg_version.split(".")[:2]) < (2, 3):
    raise ImportError(f"glymur finds no usable libopenjp2 ({glymur.version.openjpeg_version!r}; 2.3 or later needed)")


def jpeg2000_decode(data, shape=None) -> np.ndarray:
    """One J2K codestream or JP2 file; ``shape`` is accepted for the native twin's sake."""
    fd, path = tempfile.mkstemp(suffix=".jp2" if bytes(data[4:8]) == b"jP  " else ".j2k")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return np.ascontiguousarray(glymur.Jp2k(path)[:])
    finally:
        os.unlink(path)


def htj2k_decode(data, shape=None) -> np.ndarray:
    """HTJ2K through OpenJPEG's HT block decoder (libopenjp2 2.5 or later)."""
    if tuple(int(p) for p in glymur.version.openjpeg_version.split(".")[:2]) < (2, 5):
        raise ValueError(f"libopenjp2 {glymur.version.openjpeg_version} has no HTJ2K decoder (2.5 or later)")
    return jpeg2000_decode(data, shape)
