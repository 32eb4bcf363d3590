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


# -- image processing kernels (fastdicom.pixels.processing) --------------------
# Same signatures and bits as the Cython kernels: flat C-contiguous inputs,
# caller-allocated outputs, the same operations in the same order.

_KG_B = 0.114 * 1.772 / 0.587
_KG_R = 0.299 * 1.402 / 0.587


def _check(src, out) -> None:
    if out.shape[0] != src.shape[0]:
        raise ValueError("out must have as many items as src")


def rescale(src, slope: float, intercept: float, out) -> None:
    """``out = src * slope + intercept`` in float64 (Modality rescale)."""
    _check(src, out)
    np.multiply(src, slope, out=out, dtype=np.float64)
    out += intercept


def apply_lut(src, luts, first_map: int, out) -> None:
    """``out[i, k] = luts[k, clip(src[i] - first_map, 0, entries - 1)]``."""
    if out.shape != (src.shape[0], luts.shape[0]):
        raise ValueError("out must be (len(src), number of LUTs)")
    if luts.shape[1] == 0:
        raise ValueError("empty LUT")
    idx = src.astype(np.int64)
    idx -= first_map
    np.clip(idx, 0, luts.shape[1] - 1, out=idx)
    for k in range(luts.shape[0]):
        np.take(luts[k], idx, out=out[:, k])


def window_linear(src, center: float, width: float, y_min: float, y_max: float, exact: bool, out) -> None:
    """VOI LINEAR / LINEAR_EXACT windowing (PS3.3 C.11.2.1.2), as pydicom 3 computes it."""
    _check(src, out)
    c, w = (center, width) if exact else (center - 0.5, width - 1)
    lo = c - w / 2
    hi = c + w / 2
    x = src.astype(np.float64)
    below = x <= lo
    above = x > hi
    between = ~(below | above)
    out[below] = y_min
    out[above] = y_max
    if between.any():
        out[between] = ((x[between] - c) / w + 0.5) * (y_max - y_min) + y_min


def window_sigmoid(src, center: float, width: float, y_min: float, y_max: float, out) -> None:
    """VOI SIGMOID windowing (PS3.3 C.11.2.1.3.1)."""
    _check(src, out)
    x = src.astype(np.float64)
    x -= center
    x *= -4
    x /= width
    np.exp(x, out=x)
    x += 1
    np.divide(y_max - y_min, x, out=out)
    out += y_min


def invert(src, low: float, high: float, out) -> None:
    """``out = low + high - src`` (MONOCHROME1 to MONOCHROME2), in the type of ``src``."""
    _check(src, out)
    if src.dtype.kind == "f":
        np.subtract(low + high, src, out=out, dtype=np.float64, casting="unsafe")
    else:
        np.subtract(int(low) + int(high), src, out=out, dtype=np.int64, casting="unsafe")


def ybr_full_to_rgb(src, out) -> None:
    """YBR_FULL to RGB for 8-bit pixels (PS3.3 C.7.6.3.1.2), rounded to nearest and clipped."""
    if src.ndim != 2 or src.shape[1] != 3 or out.shape != src.shape:
        raise ValueError("src and out must be (pixels, 3)")
    y = src[:, 0].astype(np.float64)
    cb = src[:, 1] - 128.0
    cr = src[:, 2] - 128.0
    rgb = np.empty(src.shape, dtype=np.float64)
    rgb[:, 0] = y + 1.402 * cr
    rgb[:, 1] = y - _KG_B * cb - _KG_R * cr
    rgb[:, 2] = y + 1.772 * cb
    rgb += 0.5 + 1e-9  # exact halves round up (see native/_kernels.pyx)
    np.floor(rgb, out=rgb)
    np.clip(rgb, 0, 255, out=rgb)
    out[...] = rgb
