"""Frames of Pixel Data: zero-copy views for uncompressed data, a frame index for encapsulated data.

Uncompressed, byte-aligned, little-endian data is returned as numpy views of
the buffer the data set was read from (a memory map for files): ``frame(i)``
costs O(1) whatever the file size. Bits Allocated 1 and planar configuration 1
are handled as pydicom handles them, copying only where a view is impossible.
Big-endian data is read by the standard's rules (``dataset/byteorder.py``):
OW in 16-bit words whatever Bits Allocated, OB never swapped, OF and OD in
4- and 8-byte floats. pydicom differs for 1-bit OW, for OW wider than 16 bits
and for OB wider than 8 bits.

Encapsulated data gets a frame index built lazily from the fragment headers
(PS3.5 A.4): the Extended Offset Table, else one fragment per frame, else the
Basic Offset Table, else codec end-of-image markers. ``encoded_frame(i)`` is
then O(1).
"""

from __future__ import annotations

import os
import struct
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..dataset import byteorder as _byteorder
from ..dictionary import uid as _uid
from ..errors import FastDicomError, InvalidDicomError
from . import codecs as _codecs

PIXEL_DATA = 0x7FE00010
FLOAT_PIXEL_DATA = 0x7FE00008
DOUBLE_FLOAT_PIXEL_DATA = 0x7FE00009
EXTENDED_OFFSET_TABLE = 0x7FE00001
EXTENDED_OFFSET_TABLE_LENGTHS = 0x7FE00002


def _int(ds, key: int, default: int | None = None) -> int:
    v = ds.get(key, default)
    if isinstance(v, list):
        v = v[0] if v else default
    if v is None or v == "":
        if default is None:
            raise InvalidDicomError(f"missing ({key >> 16:04X},{key & 0xFFFF:04X}) needed for Pixel Data")
        return default
    try:
        return int(v)
    except (TypeError, ValueError):
        raise InvalidDicomError(f"({key >> 16:04X},{key & 0xFFFF:04X}) is not an integer: {v!r}", key) from None


class Frames:
    """The frames of a data set's Pixel Data.

    Attributes
    ----------
    shape : tuple
        ``(frames, rows, columns[, samples])``.
    dtype : numpy.dtype
        Of the decoded pixels.
    """

    def __init__(self, ds, found: tuple | None = None) -> None:
        self._ds = ds
        if found is not None:  # (tag, element), when the caller has looked already
            tag, elem = found
        else:
            for tag in (PIXEL_DATA, FLOAT_PIXEL_DATA, DOUBLE_FLOAT_PIXEL_DATA):
                elem = ds._lookup(tag)
                if elem is not None:
                    break
            else:
                raise InvalidDicomError("no Pixel Data")
        self._tag = tag
        self._elem = elem
        self.rows = _int(ds, 0x00280010)
        self.columns = _int(ds, 0x00280011)
        self.samples = _int(ds, 0x00280002, 1)
        self.number_of_frames = _int(ds, 0x00280008, 1) or 1
        self.planar = _int(ds, 0x00280006, 0) if self.samples > 1 else 0
        self.photometric = str(ds.get(0x00280004) or "").strip()
        self.transfer_syntax = ds.transfer_syntax or _uid.ExplicitVRLittleEndian
        self.encapsulated = self._elem.is_undefined_length
        if tag == FLOAT_PIXEL_DATA:
            self.bits_allocated, self.pixel_representation, kind = 32, 0, "f"
        elif tag == DOUBLE_FLOAT_PIXEL_DATA:
            self.bits_allocated, self.pixel_representation, kind = 64, 0, "f"
        else:
            self.bits_allocated = _int(ds, 0x00280100)
            self.pixel_representation = _int(ds, 0x00280103, 0)
            kind = "i" if self.pixel_representation else "u"
        self.bits_stored = _int(ds, 0x00280101, self.bits_allocated)
        ba = self.bits_allocated
        if ba == 1:
            self.dtype = np.dtype("u1")
        elif ba in (8, 16, 32, 64):
            self.dtype = np.dtype(f"{kind}{ba // 8}")
        else:
            raise InvalidDicomError(f"unsupported Bits Allocated {ba}", tag)
        self._index: list[list[tuple[int, int]]] | None = None
        # What each DecodeFrame of these frames holds besides its array and options, and what that array must be.
        self._frame_args = (
            self.rows,
            self.columns,
            self.samples,
            ba,
            self.bits_stored,
            self.pixel_representation,
            self.photometric,
            self.transfer_syntax,
        )
        self._slot = (self._frame_shape(), self.dtype.newbyteorder("<"))

    # -- geometry ---------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        base = (self.number_of_frames, self.rows, self.columns)
        return base + (self.samples,) if self.samples > 1 else base

    def __len__(self) -> int:
        return self.number_of_frames

    @property
    def frame_pixels(self) -> int:
        return self.rows * self.columns * self.samples

    def _frame_shape(self) -> tuple[int, ...]:
        return self.shape[1:]

    def check_size(self) -> None:
        """Refuse geometry the Pixel Data cannot hold, before anything is allocated for it.

        Uncompressed data must hold every frame; RLE can expand at most 64x
        (PackBits); other encapsulated syntaxes are checked by their codecs.
        """
        n_bytes = len(self._elem.raw)
        if self._subsampled_422:
            need = self.number_of_frames * self.rows * self.columns * 2 * self.dtype.itemsize
        elif self.bits_allocated == 1:
            need = (self.number_of_frames * self.frame_pixels + 7) // 8
        else:
            need = self.number_of_frames * self.frame_pixels * self.dtype.itemsize
        if not self.encapsulated and need > n_bytes:
            raise InvalidDicomError(
                f"Pixel Data holds {n_bytes} bytes; {self.number_of_frames} frames of "
                f"{self.rows}x{self.columns}x{self.samples} need {need}",
                self._tag,
            )
        if (
            self.encapsulated
            and self.transfer_syntax == _uid.RLELossless
            and need > 64 * n_bytes + 64 * self.number_of_frames
        ):
            raise InvalidDicomError(f"{n_bytes} bytes of RLE data cannot decode to {need} bytes", self._tag)
        if self.encapsulated:
            fragments = len(self._fragments()) - 1  # after the Basic Offset Table item
            if self.number_of_frames > max(fragments, 0):
                raise InvalidDicomError(
                    f"Number of Frames {self.number_of_frames} but only {fragments} fragments", self._tag
                )

    # -- uncompressed -------------------------------------------------------
    def _raw_little(self) -> bool:
        return self._ds.is_little_endian

    @property
    def _swap_unit(self) -> int:
        """Bytes per unit to reverse for little-endian pixel cells: 1 (none), 2 (OW), 4 (OF), 8 (OD)."""
        if self._raw_little():
            return 1
        return _byteorder.swap_size(self._elem.vr, self._tag)

    def _little_bytes(self, start: int, stop: int) -> np.ndarray:
        """Bytes ``start:stop`` of the value with the cells in little-endian order (a view when no swap is needed).

        Units are reversed over the whole units that cover the range; a partial
        unit at the end of an odd-length value stays as it is.
        """
        raw = self._elem.raw
        unit = self._swap_unit
        if unit == 1:
            return np.frombuffer(raw, dtype=np.uint8, count=stop - start, offset=start)
        lo = start - start % unit
        hi = min(-(-stop // unit) * unit, len(raw))
        seg = np.frombuffer(raw, dtype=np.uint8, count=hi - lo, offset=lo)
        whole = len(seg) - len(seg) % unit
        out = np.empty(len(seg), dtype=np.uint8)
        out[:whole] = seg[:whole].view(f"<u{unit}").byteswap().view(np.uint8)
        out[whole:] = seg[whole:]
        return out[start - lo : stop - lo]

    def _check_index(self, i: int) -> int:
        n = self.number_of_frames
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"frame {i} out of range (0..{n - 1})")
        return i

    @property
    def _subsampled_422(self) -> bool:
        """Uncompressed YBR_FULL_422: two pixels stored as Y1 Y2 Cb Cr (PS3.3 C.7.6.3.1.2)."""
        return self.photometric == "YBR_FULL_422" and self.samples == 3 and not self.encapsulated

    def _frame_422(self, i: int) -> np.ndarray:
        raw = self._elem.raw
        r, c = self.rows, self.columns
        if c % 2:
            raise InvalidDicomError("YBR_FULL_422 needs an even number of columns", self._tag)
        n = r * c * 2
        if (i + 1) * n * self.dtype.itemsize > len(raw):
            raise InvalidDicomError(f"Pixel Data is shorter than frame {i}", self._tag)
        size = self.dtype.itemsize
        quads = self._little_bytes(i * n * size, (i + 1) * n * size).view(self.dtype.newbyteorder("<"))
        quads = quads.reshape(r, c // 2, 4)
        out = np.empty((r, c, 3), dtype=self.dtype)
        out[:, 0::2, 0] = quads[..., 0]
        out[:, 1::2, 0] = quads[..., 1]
        out[:, :, 1] = np.repeat(quads[..., 2], 2, axis=1)
        out[:, :, 2] = np.repeat(quads[..., 3], 2, axis=1)
        return out

    def _uncompressed_frame(self, i: int) -> np.ndarray:
        if self._subsampled_422:
            return self._frame_422(i)
        raw = self._elem.raw
        px = self.frame_pixels
        if self.bits_allocated == 1:
            # Pixel k of each byte (of each 16-bit word in big-endian OW) is in its bit k.
            start_bit = i * px
            first, last = start_bit // 8, (start_bit + px + 7) // 8
            if last > len(raw):
                raise InvalidDicomError("Pixel Data is shorter than its frames", self._tag)
            bits = np.unpackbits(self._little_bytes(first, last), bitorder="little")
            out = bits[start_bit - first * 8 : start_bit - first * 8 + px]
            return self._arrange(out)
        itemsize = self.dtype.itemsize
        nbytes = px * itemsize
        offset = i * nbytes
        if offset + nbytes > len(raw):
            raise InvalidDicomError(
                f"Pixel Data holds {len(raw)} bytes, frame {i} needs bytes {offset}..{offset + nbytes}", self._tag
            )
        arr = self._little_bytes(offset, offset + nbytes).view(self.dtype.newbyteorder("<"))
        if not arr.dtype.isnative:
            arr = arr.astype(self.dtype.newbyteorder("="))
        return self._arrange(self._sign_correct(arr))

    def _sign_correct(self, arr: np.ndarray) -> np.ndarray:
        bs, ba = self.bits_stored, self.bits_allocated
        if self.pixel_representation == 1 and bs < ba and arr.dtype.kind == "i":
            shift = ba - bs
            return (arr << shift) >> shift  # sign-extend from Bits Stored (a copy)
        return arr

    def _arrange(self, flat: np.ndarray) -> np.ndarray:
        r, c, s = self.rows, self.columns, self.samples
        if s == 1:
            return flat.reshape(r, c)
        if self.planar == 1:
            return flat.reshape(s, r, c).transpose(1, 2, 0)
        return flat.reshape(r, c, s)

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i`` as an ndarray (a view of the buffer where possible)."""
        i = self._check_index(i)
        if self.encapsulated:
            return self._decoded_frame(i)
        return self._uncompressed_frame(i)

    def _decoded_frame(self, i: int) -> np.ndarray:
        out = np.empty(self._frame_shape(), dtype=self.dtype.newbyteorder("<"))
        self._decode_into_slot(i, out)
        return out

    @property
    def decoded_photometric(self) -> str:
        """The colour space frames come out in (JPEG decoders turn YCbCr into RGB, J2K ones undo RCT/ICT)."""
        if not self.encapsulated:
            return self.photometric
        return _codecs.decoded_photometric(self.transfer_syntax, self.photometric, self.samples)

    def _decode_into_slot(self, i: int, out: np.ndarray, as_rgb: bool = True) -> None:
        """Decode encapsulated frame ``i`` straight into ``out`` (frame shape, little-endian, C-contiguous).

        ``as_rgb=False`` keeps JPEG YCbCr frames in YCbCr (the stored colour space).
        """
        _codecs.decode_frame(self.encoded_frame(i), _codecs.DecodeFrame(out, *self._frame_args, as_rgb))

    def _fits(self, out: np.ndarray) -> bool:
        """Whether frames can be decoded straight into ``out`` (a slot of a caller's array)."""
        shape, dtype = self._slot
        return out.shape == shape and out.dtype == dtype and out.flags.c_contiguous and out.flags.writeable

    def __iter__(self):
        for i in range(self.number_of_frames):
            yield self.frame(i)

    def array(self, *, as_rgb: bool = True) -> np.ndarray:
        """All frames as one ndarray, always with the frames axis.

        ``as_rgb=False`` keeps JPEG YCbCr frames in YCbCr instead of letting the decoder convert them.
        """
        self.check_size()
        if self.encapsulated:
            out = np.empty(self.shape, dtype=self.dtype)
            n = self.number_of_frames
            workers = min(n, os.cpu_count() or 1)
            if workers > 1:  # codecs release the GIL: frames decode on every core
                self.encoded_frame(0)  # build the frame index once, before the threads
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    list(pool.map(lambda i: self.frame_into(i, out[i], as_rgb=as_rgb), range(n)))
            else:
                for i in range(n):
                    self.frame_into(i, out[i], as_rgb=as_rgb)
            return out
        n = self.number_of_frames
        itemsize = self.dtype.itemsize
        px = self.frame_pixels
        simple = (
            self.bits_allocated != 1
            and self._swap_unit == 1
            and not (self.pixel_representation == 1 and self.bits_stored < self.bits_allocated)
            and self.planar == 0
            and not self._subsampled_422
        )
        if simple:
            raw = self._elem.raw
            if n * px * itemsize > len(raw):
                raise InvalidDicomError(
                    f"Pixel Data holds {len(raw)} bytes, {n} frames need {n * px * itemsize}", self._tag
                )
            return np.frombuffer(raw, dtype=self.dtype, count=n * px).reshape(self.shape)
        out = np.empty(self.shape, dtype=self.dtype)
        for i in range(n):
            out[i] = self._uncompressed_frame(i)
        return out

    def decode_into(self, out: np.ndarray, frames: Any = None) -> np.ndarray:
        """Write frames (all, or the indices given) into ``out``; return ``out``."""
        idx = range(self.number_of_frames) if frames is None else list(frames)
        for k, i in enumerate(idx):
            self.frame_into(i, out[k])
        return out

    def frame_into(self, i: int, out: np.ndarray, *, as_rgb: bool = True) -> None:
        """Write frame ``i`` into ``out`` (one frame's shape); encapsulated frames decode straight into it."""
        i = self._check_index(i)
        if self.encapsulated and self._fits(out):
            self._decode_into_slot(i, out, as_rgb)
        elif self.encapsulated:
            tmp = np.empty(self._frame_shape(), dtype=self.dtype.newbyteorder("<"))
            self._decode_into_slot(i, tmp, as_rgb)
            out[...] = tmp
        else:
            out[...] = self.frame(i)

    # -- encapsulated -------------------------------------------------------
    def _fragments(self) -> list[tuple[int, int]]:
        elem = self._elem
        ds = elem._ds
        items = ds._mod.parse_fragments(ds._buf, elem._value_offset, len(elem._raw), ds.is_little_endian, elem.tag)
        return [(it.value_offset, it.value_length) for it in items]

    def _build_index(self) -> list[list[tuple[int, int]]]:
        frags = self._fragments()
        if not frags:
            raise InvalidDicomError("encapsulated Pixel Data has no Basic Offset Table item", self._tag)
        bot_off, bot_len = frags[0]
        frags = frags[1:]
        n = self.number_of_frames
        buf = self._elem._ds._buf
        first_item = frags[0][0] - 8 if frags else 0
        eot = self._ds.get(EXTENDED_OFFSET_TABLE)
        if eot:
            offsets = list(struct.unpack(f"<{len(eot) // 8}Q", eot))
            return self._group_by_offsets(frags, offsets, first_item)
        if n == 1:
            return [frags]
        if len(frags) == n:
            return [[f] for f in frags]
        if bot_len:
            if bot_len % 4:
                raise InvalidDicomError("Basic Offset Table length is not a multiple of 4", self._tag)
            offsets = list(struct.unpack(f"<{bot_len // 4}L", bytes(buf[bot_off : bot_off + bot_len])))
            return self._group_by_offsets(frags, offsets, first_item)
        # No table: a frame ends with a fragment that ends with an end-of-image marker (FFD9), then
        # padding (PS3.5 A.4): zero bytes, or one byte of any value that makes the item even.
        index: list[list[tuple[int, int]]] = []
        current: list[tuple[int, int]] = []
        for off, length in frags:
            current.append((off, length))
            tail = bytes(buf[max(off, off + length - 8) : off + length])
            if tail.rstrip(b"\0").endswith(b"\xff\xd9") or tail[-3:-1] == b"\xff\xd9":
                index.append(current)
                current = []
        if current:
            index.append(current)
        if len(index) != n:
            raise InvalidDicomError(f"found {len(index)} frames in the fragments, Number of Frames is {n}", self._tag)
        return index

    def _group_by_offsets(self, frags, offsets, first_item: int) -> list[list[tuple[int, int]]]:
        n = self.number_of_frames
        if len(offsets) != n:
            raise InvalidDicomError(f"offset table has {len(offsets)} entries, Number of Frames is {n}", self._tag)
        starts = [first_item + o for o in offsets]
        if any(b <= a for a, b in zip(starts, starts[1:])):
            raise InvalidDicomError("offset table is not increasing", self._tag)
        index: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        k = 0
        for off, length in frags:
            item = off - 8
            while k + 1 < n and item >= starts[k + 1]:
                k += 1
            if item < starts[0]:
                raise InvalidDicomError("offset table points past the first fragment", self._tag)
            index[k].append((off, length))
        if any(not frame for frame in index):
            raise InvalidDicomError("offset table points between fragments or past the end", self._tag)
        return index

    def encoded_frame(self, i: int):
        """The compressed bytes of frame ``i`` (a memoryview when it is one fragment)."""
        if not self.encapsulated:
            raise FastDicomError("Pixel Data is not encapsulated")
        i = self._check_index(i)
        if self._index is None:
            self._index = self._build_index()
        buf = self._elem._ds._buf
        parts = self._index[i]
        if len(parts) == 1:
            off, length = parts[0]
            return buf[off : off + length]
        return b"".join(bytes(buf[off : off + length]) for off, length in parts)
