"""Pure-Python (numpy) twins of the Cython kernels in ``native/_kernels.pyx``."""

from __future__ import annotations

import numpy as np


def byteswap(src, itemsize: int) -> bytes:
    """Reverse the byte order of each ``itemsize``-byte item of ``src``; return bytes.

    A trailing partial item is copied unchanged.
    """
    if itemsize not in (1, 2, 4, 8):
        raise ValueError("itemsize must be 1, 2, 4 or 8")
    a = np.frombuffer(src, dtype=np.uint8)
    whole = len(a) - len(a) % itemsize
    if itemsize == 1 or whole == 0:
        return a.tobytes()
    swapped = a[:whole].view(f"<u{itemsize}").byteswap().tobytes()
    return swapped + a[whole:].tobytes()
