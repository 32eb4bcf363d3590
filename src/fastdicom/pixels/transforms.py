"""What ``Dataset.pixel_array`` returns: pydicom 3's ``pixel_array`` for the same file."""

from __future__ import annotations

import numpy as np

from .frames import Frames


def ybr_full_to_rgb(arr: np.ndarray) -> np.ndarray:
    """YBR_FULL (8-bit) to RGB, the PS3.3 C.7.6.3.1.2 equations, rounded to nearest and clipped."""
    ybr = arr.astype(np.float64)
    y = ybr[..., 0]
    cb = ybr[..., 1] - 128.0
    cr = ybr[..., 2] - 128.0
    rgb = np.empty_like(ybr)
    rgb[..., 0] = y + 1.402 * cr
    rgb[..., 1] = y - (0.114 * 1.772 / 0.587) * cb - (0.299 * 1.402 / 0.587) * cr
    rgb[..., 2] = y + 1.772 * cb
    return np.clip(np.floor(rgb + 0.5), 0, 255).astype(arr.dtype)


def pixel_array(frames: Frames, *, as_rgb: bool = True) -> np.ndarray:
    """All frames, shaped as pydicom shapes them (no frames axis for a single frame).

    With ``as_rgb`` (the default, as in pydicom), YBR_FULL data is converted to RGB.
    """
    arr = frames.array()
    if as_rgb and frames.samples == 3 and frames.photometric in ("YBR_FULL", "YBR_FULL_422") and arr.dtype == np.uint8:
        arr = ybr_full_to_rgb(arr)
    return arr[0] if frames.number_of_frames == 1 else arr
