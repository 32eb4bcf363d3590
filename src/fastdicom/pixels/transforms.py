"""What ``Dataset.pixel_array`` returns: pydicom 3's ``pixel_array`` for the same file."""

from __future__ import annotations

import numpy as np

from .frames import Frames
from .processing import convert_color_space


def ybr_full_to_rgb(arr: np.ndarray) -> np.ndarray:
    """YBR_FULL (8-bit) to RGB, the PS3.3 C.7.6.3.1.2 equations, rounded to nearest and clipped."""
    return convert_color_space(arr, "YBR_FULL", "RGB")


def pixel_array(frames: Frames, *, as_rgb: bool = True) -> np.ndarray:
    """All frames, shaped as pydicom shapes them (no frames axis for a single frame).

    With ``as_rgb`` (the default, as in pydicom), YBR_FULL and YBR_FULL_422
    data is converted to RGB; without it the stored colour space is kept.
    """
    arr = frames.array(as_rgb=as_rgb)
    stored = frames.decoded_photometric
    if as_rgb and frames.samples == 3 and stored in ("YBR_FULL", "YBR_FULL_422") and arr.dtype == np.uint8:
        arr = ybr_full_to_rgb(arr)
    return arr[0] if frames.number_of_frames == 1 else arr
