"""Pixel Data: frames without copies, frame index for encapsulated data, colour helpers."""

from . import processing
from .batch import DecodeError, DecodeReport, decode
from .frames import Frames, NoDecoderError
from .transforms import pixel_array, ybr_full_to_rgb

__all__ = [
    "DecodeError",
    "DecodeReport",
    "Frames",
    "NoDecoderError",
    "decode",
    "pixel_array",
    "processing",
    "ybr_full_to_rgb",
]
