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


# -- image processing kernels (fastdicom.pixels.processing) --------------------
# Every kernel works on flat C-contiguous arrays that the caller allocated and
# releases the GIL. Arithmetic follows the twin in fastdicom._kernels_py step
# by step (same operations, same order, no fused multiply-add: built with
# -ffp-contract=off) so that both give the same bits.

from libc.math cimport exp, floor
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint16_t, uint32_t

ctypedef fused pixel_t:
    uint8_t
    int8_t
    uint16_t
    int16_t
    uint32_t
    int32_t
    float
    double

ctypedef fused int_pixel_t:
    uint8_t
    int8_t
    uint16_t
    int16_t
    uint32_t
    int32_t
    int64_t

ctypedef fused lut_t:
    uint8_t
    uint16_t


def rescale(const pixel_t[::1] src, double slope, double intercept, double[::1] out):
    """``out = src * slope + intercept`` in float64 (Modality rescale)."""
    cdef Py_ssize_t i, n = src.shape[0]
    if out.shape[0] != n:
        raise ValueError("out must have as many items as src")
    with nogil:
        for i in range(n):
            out[i] = <double>src[i] * slope + intercept


def apply_lut(const int_pixel_t[::1] src, const lut_t[:, ::1] luts, int64_t first_map, lut_t[:, ::1] out):
    """``out[i, k] = luts[k, clip(src[i] - first_map, 0, entries - 1)]`` (values below ``first_map`` map to entry 0)."""
    cdef Py_ssize_t i, k, n = src.shape[0]
    cdef Py_ssize_t channels = luts.shape[0], entries = luts.shape[1]
    cdef int64_t idx, last = entries - 1
    if out.shape[0] != n or out.shape[1] != channels:
        raise ValueError("out must be (len(src), number of LUTs)")
    if entries == 0:
        raise ValueError("empty LUT")
    with nogil:
        for i in range(n):
            idx = <int64_t>src[i] - first_map
            if idx < 0:
                idx = 0
            elif idx > last:
                idx = last
            for k in range(channels):
                out[i, k] = luts[k, idx]


def window_linear(const pixel_t[::1] src, double center, double width, double y_min, double y_max,
                  bint exact, double[::1] out):
    """VOI LINEAR / LINEAR_EXACT windowing (PS3.3 C.11.2.1.2), as pydicom 3 computes it."""
    cdef Py_ssize_t i, n = src.shape[0]
    cdef double c = center, w = width, x, lo, hi, y_range = y_max - y_min
    if out.shape[0] != n:
        raise ValueError("out must have as many items as src")
    if not exact:
        c = center - 0.5
        w = width - 1
    lo = c - w / 2
    hi = c + w / 2
    with nogil:
        for i in range(n):
            x = <double>src[i]
            if x <= lo:
                out[i] = y_min
            elif x > hi:
                out[i] = y_max
            else:
                out[i] = ((x - c) / w + 0.5) * y_range + y_min


def window_sigmoid(const pixel_t[::1] src, double center, double width, double y_min, double y_max,
                   double[::1] out):
    """VOI SIGMOID windowing (PS3.3 C.11.2.1.3.1)."""
    cdef Py_ssize_t i, n = src.shape[0]
    cdef double y_range = y_max - y_min
    if out.shape[0] != n:
        raise ValueError("out must have as many items as src")
    with nogil:
        for i in range(n):
            out[i] = y_range / (1 + exp(-4 * (<double>src[i] - center) / width)) + y_min


def invert(const pixel_t[::1] src, double low, double high, pixel_t[::1] out):
    """``out = low + high - src`` (MONOCHROME1 to MONOCHROME2), in the type of ``src``."""
    cdef Py_ssize_t i, n = src.shape[0]
    cdef int64_t isum = <int64_t>low + <int64_t>high
    cdef double fsum = low + high
    if out.shape[0] != n:
        raise ValueError("out must have as many items as src")
    with nogil:
        if pixel_t is float or pixel_t is double:
            for i in range(n):
                out[i] = <pixel_t>(fsum - src[i])
        else:
            for i in range(n):
                out[i] = <pixel_t>(isum - <int64_t>src[i])


def ybr_full_to_rgb(const uint8_t[:, ::1] src, uint8_t[:, ::1] out):
    """YBR_FULL to RGB for 8-bit pixels (PS3.3 C.7.6.3.1.2), rounded to nearest and clipped."""
    cdef Py_ssize_t i, n = src.shape[0]
    cdef double y, cb, cr, v
    cdef double kg_b = 0.114 * 1.772 / 0.587
    cdef double kg_r = 0.299 * 1.402 / 0.587
    cdef double rgb[3]
    cdef int k
    if src.shape[1] != 3 or out.shape[0] != n or out.shape[1] != 3:
        raise ValueError("src and out must be (pixels, 3)")
    with nogil:
        for i in range(n):
            y = src[i, 0]
            cb = <double>src[i, 1] - 128.0
            cr = <double>src[i, 2] - 128.0
            rgb[0] = y + 1.402 * cr
            rgb[1] = y - kg_b * cb - kg_r * cr
            rgb[2] = y + 1.772 * cb
            for k in range(3):
                # + 1e-9: exact halves (18.5 computed as 18.4999...) round up as the equations say;
                # no other true value lies that close to a half (denominators of 587000).
                v = floor(rgb[k] + 0.5 + 1e-9)
                if v < 0:
                    v = 0
                elif v > 255:
                    v = 255
                out[i, k] = <uint8_t>v
