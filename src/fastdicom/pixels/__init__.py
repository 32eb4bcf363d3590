"""Pixel Data: frames without copies, frame index for encapsulated data, colour helpers."""

from . import processing
from .batch import DecodeError, DecodeReport, decode
from .codecs import NoDecoderError
from .frames import Frames
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
