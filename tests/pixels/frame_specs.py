"""What a test gives a codec it calls directly: a DecodeFrame with a fresh array to decode into, EncodeOptions."""

from __future__ import annotations

import numpy as np

from fastdicom.pixels.codecs import DecodeFrame, EncodeOptions


def decode_spec(
    shape: tuple[int, ...],
    dtype=np.uint16,
    *,
    photometric: str = "",
    as_rgb: bool = True,
    threads: int = 1,
    bits_stored: int | None = None,
) -> DecodeFrame:
    """A frame of ``shape`` to decode into a new array of ``dtype`` (Bits Allocated and signedness from it)."""
    dt = np.dtype(dtype)
    bits = 8 * dt.itemsize
    rows, columns, samples = shape[0], shape[1], shape[2] if len(shape) > 2 else 1
    out = np.zeros(shape, dt)
    return DecodeFrame(
        out, rows, columns, samples, bits, bits_stored or bits, int(dt.kind == "i"), photometric, "", as_rgb, threads
    )


def spec_like(frame: np.ndarray, **kw) -> DecodeFrame:
    """To decode a codestream of ``frame`` into a new array of its shape and type."""
    return decode_spec(frame.shape, frame.dtype, **kw)


def spec_of(px, *, as_rgb: bool = True) -> DecodeFrame:
    """To decode a frame of ``px`` (Frames) into a new array, as the data set describes it."""
    return DecodeFrame.of(px, np.zeros(px._frame_shape(), px.dtype), as_rgb=as_rgb)


def options(bits_stored: int, *, near: int = 0, **kw) -> EncodeOptions:
    """Lossless unless ``near``, ``ratio``, ``qstep`` or ``lossless=False`` say otherwise."""
    lossy = bool(near or kw.get("ratio") or kw.get("qstep"))
    kw.setdefault("lossless", not lossy)
    return EncodeOptions(bits_stored, near=near, **kw)
