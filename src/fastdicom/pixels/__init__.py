"""Pixel Data: frames without copies, frame index for encapsulated data, colour helpers."""

from .frames import Frames, NoDecoderError
from .transforms import pixel_array, ybr_full_to_rgb

__all__ = ["Frames", "NoDecoderError", "pixel_array", "ybr_full_to_rgb"]
