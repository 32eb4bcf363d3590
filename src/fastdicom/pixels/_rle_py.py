"""RLE Lossless (PS3.5 Annex G) in Python and numpy: the twin of ``fastdicom_codecs::rle``.

Same functions, same results, same errors as the Rust crate: the byte-level
kernels (``rle_decode_frame``, ``rle_decode_into``, ``rle_encode_frame``,
twins of ``fastdicom._rust``'s), and over them the codec contract of
``fastdicom.pixels.codecs`` (``rle_decode``, ``rle_encode``), twins of
``_codecs_rust``'s.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InvalidDicomError

if TYPE_CHECKING:
    from .codecs import DecodeFrame, EncodeOptions

PIXEL_DATA = 0x7FE00010
#: The decoders that write into ``frame.out``.
WRITES_OUT = frozenset(("rle_decode",))
#: RLE has no end marker to find (``fastdicom.pixels.codecs`` looks for none either).
FINDS_END = False


def _fail(message: str) -> InvalidDicomError:
    return InvalidDicomError(message, PIXEL_DATA, 0)


def segment_offsets(data) -> list[int]:
    if len(data) < 64:
        raise _fail(f"RLE frame of {len(data)} bytes is shorter than its 64-byte header")
    words = struct.unpack_from("<16L", data)
    n = words[0]
    if n == 0 or n > 15:
        raise _fail(f"RLE header gives {n} segments (1 to 15 allowed)")
    offsets = list(words[1 : n + 1])
    for k, o in enumerate(offsets):
        if o < 64 or o > len(data):
            raise _fail(f"RLE segment {k} offset {o} is outside the frame ({len(data)} bytes)")
        if k > 0 and o < offsets[k - 1]:
            raise _fail(f"RLE segment offsets are not increasing at segment {k}")
    return offsets


def _decode_segment(seg: bytes, count: int) -> bytearray:
    out = bytearray()
    i = 0
    n = len(seg)
    while i < n and len(out) < count:
        h = seg[i]
        i += 1
        if h < 128:
            out += seg[i : i + h + 1]
            i += h + 1
        elif h != 128:
            if i >= n:
                break
            out += bytes((seg[i],)) * (257 - h)
            i += 1
    return out


def _decoded_size(data: bytes, rows: int, columns: int, samples: int, bits_allocated: int) -> int:
    if bits_allocated not in (8, 16, 32, 64):
        raise _fail(f"RLE decoding of Bits Allocated {bits_allocated} is not supported")
    if samples == 0 or samples > 15:
        raise _fail(f"Samples per Pixel {samples} is invalid for RLE")
    total = rows * columns * samples * bits_allocated // 8
    if total > len(data) * 64 + 64:
        raise _fail(f"RLE frame of {len(data)} bytes cannot decode to {total} bytes")
    return total


def rle_decode_into(buf, out, rows: int, columns: int, samples: int, bits_allocated: int) -> None:
    """Decode one RLE Lossless frame into ``out`` (a writable buffer of exactly the frame's size)."""
    data = bytes(buf)
    total = _decoded_size(data, rows, columns, samples, bits_allocated)
    dst = memoryview(out)
    if dst.readonly:
        raise ValueError("output buffer is read-only")
    dst = dst.cast("B")
    if dst.nbytes != total:
        raise _fail(f"output holds {dst.nbytes} bytes, the frame needs {total}")
    dst[:] = rle_decode_frame(data, rows, columns, samples, bits_allocated)


def rle_decode_frame(buf, rows: int, columns: int, samples: int, bits_allocated: int) -> bytes:
    """Decode one RLE Lossless frame to interleaved little-endian pixel bytes."""
    data = bytes(buf)
    _decoded_size(data, rows, columns, samples, bits_allocated)
    bpp = bits_allocated // 8
    pixels = rows * columns
    offsets = segment_offsets(data)
    expected = samples * bpp
    if len(offsets) != expected:
        raise _fail(
            f"RLE frame has {len(offsets)} segments, {samples} samples of {bits_allocated} bits need {expected}"
        )
    out = np.zeros((pixels, expected), dtype=np.uint8)
    bounds = [*offsets, len(data)]
    for k in range(expected):
        plane = _decode_segment(data[bounds[k] : bounds[k + 1]], pixels)
        if len(plane) < pixels:
            raise _fail(f"RLE segment {k} decodes to {len(plane)} bytes, the plane holds {pixels}")
        sample, byte = divmod(k, bpp)
        out[:, sample * bpp + (bpp - 1 - byte)] = np.frombuffer(bytes(plane[:pixels]), dtype=np.uint8)
    return out.tobytes()


def _packbits_row(row: bytes, out: bytearray) -> None:
    i, n = 0, len(row)
    while i < n:
        run = 1
        while i + run < n and run < 128 and row[i + run] == row[i]:
            run += 1
        if run >= 2:
            out.append((1 - run) & 0xFF)
            out.append(row[i])
            i += run
            continue
        start = i
        while i < n and i - start < 128:
            if i + 1 < n and row[i + 1] == row[i]:
                break
            i += 1
        if i == start:
            i += 1
        out.append(i - start - 1)
        out += row[start:i]


def rle_encode_frame(buf, rows: int, columns: int, samples: int, bits_allocated: int) -> bytes:
    """Encode one frame of interleaved little-endian pixel bytes as RLE Lossless."""
    if bits_allocated not in (8, 16, 32, 64):
        raise ValueError(f"RLE encoding of Bits Allocated {bits_allocated} is not supported")
    bpp = bits_allocated // 8
    segments = samples * bpp
    if segments == 0 or segments > 15:
        raise ValueError(f"{samples} samples of {bits_allocated} bits need {segments} segments (at most 15)")
    pixels = np.frombuffer(bytes(buf), dtype=np.uint8)
    if len(pixels) != rows * columns * segments:
        raise ValueError(f"frame holds {len(pixels)} bytes, expected {rows * columns * segments}")
    planes = pixels.reshape(rows * columns, segments)
    out = bytearray(64)
    struct.pack_into("<L", out, 0, segments)
    for k in range(segments):
        sample, byte = divmod(k, bpp)
        plane = planes[:, sample * bpp + (bpp - 1 - byte)].tobytes()
        struct.pack_into("<L", out, 4 + 4 * k, len(out))
        for r in range(rows):
            _packbits_row(plane[r * columns : (r + 1) * columns], out)
        if len(out) % 2:
            out.append(0)
    return bytes(out)


def rle_decode(data, frame: DecodeFrame) -> np.ndarray:
    """One RLE Lossless frame straight into ``frame.out``: the codec contract over :func:`rle_decode_into`."""
    out = frame.out
    rle_decode_into(
        data, out.reshape(-1).view(np.uint8), frame.rows, frame.columns, frame.samples, frame.bits_allocated
    )
    return out


def rle_encode(frame: np.ndarray, options: EncodeOptions) -> bytes:
    """One frame as RLE Lossless: the codec contract over :func:`rle_encode_frame` (``options`` asks nothing of it)."""
    little = np.ascontiguousarray(frame.astype(frame.dtype.newbyteorder("<"), copy=False))
    samples = little.shape[2] if little.ndim > 2 else 1
    return rle_encode_frame(little.tobytes(), little.shape[0], little.shape[1], samples, 8 * little.itemsize)
