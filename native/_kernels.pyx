# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Array kernels over byte buffers (fastdicom._cy._kernels).

Twin: fastdicom._kernels_py (same functions, same results).
"""

from libc.string cimport memcpy
from libc.stdint cimport uint8_t

__version__ = "0.1.0"


def byteswap(const uint8_t[::1] src, int itemsize):
    """Reverse the byte order of each ``itemsize``-byte item of ``src``; return bytes.

    A trailing partial item is copied unchanged.
    """
    cdef Py_ssize_t n = src.shape[0]
    cdef Py_ssize_t i, j, whole
    if itemsize not in (1, 2, 4, 8):
        raise ValueError("itemsize must be 1, 2, 4 or 8")
    out = bytearray(n)
    cdef uint8_t[::1] dst = out
    if n == 0:
        return bytes(out)
    whole = n - n % itemsize
    with nogil:
        if itemsize == 1:
            memcpy(&dst[0], &src[0], n)
        else:
            i = 0
            while i < whole:
                for j in range(itemsize):
                    dst[i + j] = src[i + itemsize - 1 - j]
                i += itemsize
            for i in range(whole, n):
                dst[i] = src[i]
    return bytes(out)
