"""Pure-Python twin of the Rust tokenizer (``fastdicom._rust.parse_dataset``).

This is the reference implementation: same functions, same results, same
errors as ``rust/crates/fastdicom-parse``. See that crate's documentation for
the rules; they are repeated briefly here.

- One level of a data set is read per call; sequences of defined length are
  skipped, sequences of undefined length are walked only to find their end.
- In explicit VR, an element whose VR bytes are not two upper-case letters is
  read as implicit VR; each data set is checked at its first element for an
  explicit/implicit switch; items of an implicit VR data set stay implicit.
- VR UN with undefined length holds implicit VR little endian items (CP-246).
- Every length is checked before use; nesting is limited by ``max_depth``.
"""

from __future__ import annotations

import os
import struct
from bisect import bisect_left
from functools import partial

from ..dictionary.uid import encoding_of
from ..errors import InvalidDicomError
from . import values as _values
from ._records import Columns, Item, Opened, Record

UNDEFINED_LENGTH = 0xFFFFFFFF
ITEM = 0xFFFEE000
ITEM_DELIMITATION = 0xFFFEE00D
SEQUENCE_DELIMITATION = 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010
#: VRs whose values ``ElementTable.value`` decodes (the Rust fast path's set).
_SIMPLE = {
    vr: _values.DECODERS[vr]
    for vr in (
        "UI",
        "DA",
        "DT",
        "TM",
        "AS",
        "CS",
        "AE",
        "UR",
        "DS",
        "IS",
        "US",
        "SS",
        "UL",
        "SL",
        "UV",
        "SV",
        "FL",
        "FD",
        "AT",
    )
}


def decode_simple(vr: str, raw, little_endian: bool, missing):
    """The value of ``raw`` decoded as ``vr`` for the simple VRs, else ``missing`` (twin of the Rust fast path)."""
    decoder = _SIMPLE.get(vr)
    if decoder is None:
        return missing
    if not raw:
        return _values.empty_value(vr)
    try:
        return decoder(raw, little_endian, ())
    except InvalidDicomError:
        return missing


STOP_TAGS = frozenset((0x7FE00010, 0x7FE00008, 0x7FE00009))
MAX_DEPTH = 64

LONG_VRS = frozenset((b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"))
_VR_STR: dict[bytes, str] = {}

_HH = {True: struct.Struct("<HH"), False: struct.Struct(">HH")}
_L = {True: struct.Struct("<L"), False: struct.Struct(">L")}
_H = {True: struct.Struct("<H"), False: struct.Struct(">H")}
_HHL = {True: struct.Struct("<HHL"), False: struct.Struct(">HHL")}


def _is_vr(b0: int, b1: int) -> bool:
    return 0x41 <= b0 <= 0x5A and 0x41 <= b1 <= 0x5A


def _vr_str(raw: bytes) -> str:
    s = _VR_STR.get(raw)
    if s is None:
        s = _VR_STR[raw] = raw.decode("ascii")
    return s


def _error(message: str, tag: int | None, offset: int) -> InvalidDicomError:
    return InvalidDicomError(message, tag, offset)


#: Fields of a Record.
_NF = len(Record._fields)
# A record from its fields in order, without NamedTuple's Python-level __new__.
_record = partial(tuple.__new__, Record)
_item = partial(tuple.__new__, Item)


class ElementTable:
    """The elements of one data set level, as located by the tokenizer.

    Same interface as ``fastdicom._rust.ElementTable`` (see
    :class:`fastdicom.dataset._records.ElementTable`): ``len()``,
    ``find(tag)``, ``record(i)``, ``build(i, factory)``, ``lookup(tag)``,
    ``records()``, ``columns()``, ``tags()``, ``value(...)``, ``end``,
    ``explicit_vr``, ``sorted``. The elements are kept in one flat list, the
    six :class:`Record` fields of each in turn (what the tokenizer appends
    fastest; a column is a strided slice of it); a :class:`Record` is made
    only when one is handed out.
    """

    __slots__ = ("_flat", "_tags", "end", "explicit_vr", "sorted")

    def __init__(self, flat: list, end: int, explicit_vr: bool, is_sorted: bool) -> None:
        self._flat = flat
        self._tags = flat[0::_NF]
        self.end = end
        self.explicit_vr = explicit_vr
        self.sorted = is_sorted

    def __len__(self) -> int:
        return len(self._tags)

    def _fields(self, i: int) -> list:
        if not 0 <= i < len(self._tags):
            raise IndexError("element index out of range")
        return self._flat[_NF * i : _NF * i + _NF]

    def find(self, tag: int) -> int:
        """Index of the element with ``tag``, or -1."""
        tags = self._tags
        if self.sorted:
            i = bisect_left(tags, tag)
            return i if i < len(tags) and tags[i] == tag else -1
        try:
            return tags.index(tag)
        except ValueError:
            return -1

    def lookup(self, tag: int) -> Record | None:
        """The record of the element with ``tag``, or None (``find`` and ``record`` in one call)."""
        i = self.find(tag)
        return None if i < 0 else _record(self._fields(i))

    def value(self, buf, tag: int, little_endian: bool, missing, factory=None, context=None):
        """The decoded value of ``tag`` for the simple VRs, else what ``factory`` makes of its fields.

        ``missing`` if absent; for a value not decoded here, what ``factory``
        makes of its fields (as ``build``), or its :class:`Record` without a
        factory. The Rust twin answers only plain values and hands the rest
        to the factory; this one decodes every value of the simple VRs it
        can, which ``Dataset.get`` cannot tell apart.
        """
        i = self.find(tag)
        if i < 0:
            return missing
        fields = self._fields(i)
        _tag, vr, _hdr, off, n, undefined = fields
        decoder = _SIMPLE.get(vr)
        if decoder is not None and not undefined:
            if n == 0:
                return _values.empty_value(vr)
            try:
                return decoder(buf[off : off + n], little_endian, ())
            except InvalidDicomError:
                pass
        if factory is None:
            return _record(fields)
        return factory(*fields) if context is None else factory(context, *fields)

    def build(self, i: int, factory, context=None):
        """What ``factory(tag, vr, header_offset, value_offset, value_length, undefined_length)`` makes of
        element ``i``'s fields (a :class:`Record`'s, in order; ``context`` before them when given): one call,
        no record object between."""
        fields = self._fields(i)
        return factory(*fields) if context is None else factory(context, *fields)

    def record(self, i: int) -> Record:
        """The :class:`Record` of element ``i`` (in the order they were read)."""
        return _record(self._fields(i))

    def records(self) -> list[Record]:
        """Every element's :class:`Record`, in the order they were read."""
        return list(map(_record, zip(*self.columns())))

    def columns(self) -> Columns:
        """The whole table as :class:`Columns`: one list per :class:`Record` field, in the order read."""
        f = self._flat
        return Columns(f[0::_NF], f[1::_NF], f[2::_NF], f[3::_NF], f[4::_NF], f[5::_NF])

    def tags(self) -> list[int]:
        """The tags in the order they were read."""
        return list(self._tags)


def _detect_explicit(buf, start: int, end: int, explicit: bool, in_item: bool) -> bool:
    if in_item and not explicit:
        return False
    if end < start + 6:
        return explicit
    return _is_vr(buf[start + 4], buf[start + 5])


def _walk_dataset(buf, start, end, little, explicit, stop_before_pixels, in_item, depth, max_depth, sink):
    """Walk one data set level; append each element's fields (in :class:`Record` order) to ``sink`` (a list) if given.

    Returns ``(end_offset, explicit_vr, sorted)``.
    """
    if depth > max_depth:
        raise _error(f"sequences nested deeper than {max_depth}", None, start)
    explicit = _detect_explicit(buf, start, end, explicit, in_item)
    unpack_hh = _HH[little].unpack_from
    unpack_l = _L[little].unpack_from
    unpack_h = _H[little].unpack_from
    add = sink.extend if sink is not None else None
    pos = start
    last_tag = -1
    is_sorted = True
    while True:
        if pos >= end:
            if in_item and sink is None:
                raise _error("item of undefined length has no Item Delimitation Item", None, pos)
            return pos, explicit, is_sorted
        if end - pos < 8:
            raise _error("data set ends inside an element header", None, pos)
        group, elem = unpack_hh(buf, pos)
        tag = group << 16 | elem
        vr = ""
        if explicit and group != 0xFFFE and _is_vr(buf[pos + 4], buf[pos + 5]):
            raw_vr = bytes(buf[pos + 4 : pos + 6])
            vr = _vr_str(raw_vr)
            if raw_vr in LONG_VRS:
                if end - pos < 12:
                    raise _error("data set ends inside an element header", tag, pos)
                length = unpack_l(buf, pos + 8)[0]
                value_offset = pos + 12
            else:
                length = unpack_h(buf, pos + 6)[0]
                value_offset = pos + 8
        else:
            length = unpack_l(buf, pos + 4)[0]
            value_offset = pos + 8

        if tag == ITEM_DELIMITATION:
            return value_offset, explicit, is_sorted
        if tag == SEQUENCE_DELIMITATION or tag == ITEM:
            if not in_item and tag == SEQUENCE_DELIMITATION and length == 0:
                pos = value_offset
                continue
            raise _error("item or delimiter tag outside a sequence", tag, pos)
        if stop_before_pixels and not in_item and depth == 0 and tag in STOP_TAGS:
            return pos, explicit, is_sorted

        if length == UNDEFINED_LENGTH:
            if vr == "UN":
                content_end = _walk_sequence(buf, value_offset, end, True, False, depth + 1, max_depth, tag)
            elif tag == PIXEL_DATA or vr == "OB" or vr == "OW":
                content_end = _walk_fragments(buf, value_offset, end, little, tag)
            else:
                content_end = _walk_sequence(buf, value_offset, end, little, explicit, depth + 1, max_depth, tag)
            value_length = content_end - value_offset
            nxt = content_end + 8
            undefined = True
        else:
            if length > end - value_offset:
                raise _error(
                    f"value length {length} goes past the end of its data set ({end - value_offset} bytes left)",
                    tag,
                    pos,
                )
            value_length = length
            nxt = value_offset + length
            undefined = False
        if add is not None:
            if tag <= last_tag:
                is_sorted = False
            add((tag, vr, pos, value_offset, value_length, undefined))
        last_tag = tag
        pos = nxt


def _walk_sequence(buf, pos, end, little, explicit, depth, max_depth, owner) -> int:
    if depth > max_depth:
        raise _error(f"sequences nested deeper than {max_depth}", owner, pos)
    unpack = _HHL[little].unpack_from
    while True:
        if end < pos + 8:
            raise _error("sequence of undefined length has no Sequence Delimitation Item", owner, pos)
        group, elem, length = unpack(buf, pos)
        tag = group << 16 | elem
        if tag == SEQUENCE_DELIMITATION:
            return pos
        if tag != ITEM:
            raise _error(f"expected an item tag in the sequence, found ({group:04X},{elem:04X})", owner, pos)
        if length == UNDEFINED_LENGTH:
            pos = _walk_dataset(buf, pos + 8, end, little, explicit, False, True, depth, max_depth, None)[0]
        else:
            if length > end - (pos + 8):
                raise _error(f"item length {length} goes past the end of the sequence", owner, pos)
            pos += 8 + length


def _walk_fragments(buf, pos, end, little, owner) -> int:
    unpack = _HHL[little].unpack_from
    while True:
        if end < pos + 8:
            raise _error("encapsulated data has no Sequence Delimitation Item", owner, pos)
        group, elem, length = unpack(buf, pos)
        tag = group << 16 | elem
        if tag == SEQUENCE_DELIMITATION:
            return pos
        if tag != ITEM:
            raise _error(f"expected a fragment item, found ({group:04X},{elem:04X})", owner, pos)
        if length == UNDEFINED_LENGTH:
            raise _error("fragment of encapsulated data with undefined length", owner, pos)
        if length > end - (pos + 8):
            raise _error(f"fragment length {length} goes past the end of the data", owner, pos)
        pos += 8 + length


def parse_dataset(
    buf,
    start: int,
    end: int,
    little_endian: bool,
    explicit_vr: bool,
    stop_before_pixels: bool = False,
    in_item: bool = False,
    depth: int = 0,
    max_depth: int = MAX_DEPTH,
) -> ElementTable:
    """Parse one level of a data set in ``buf[start:end]``."""
    if start < 0 or start > end or end > len(buf):
        raise _error("data set range outside the buffer", None, start)
    flat: list = []
    stop, explicit, is_sorted = _walk_dataset(
        buf, start, end, little_endian, explicit_vr, stop_before_pixels, in_item, depth, max_depth, flat
    )
    # A data set that ended at stop_before_pixels ends there; otherwise at ``end``
    # unless an Item Delimitation Item came first.
    return ElementTable(flat, stop, explicit, is_sorted)


def parse_items(buf, start, length, little_endian, explicit_vr, depth, tag, max_depth=MAX_DEPTH) -> list[Item]:
    """List the items of a sequence value ``buf[start:start + length]`` as :class:`Item` records."""
    end = start + length
    if start < 0 or end > len(buf):
        raise _error("sequence range outside the buffer", tag, start)
    if depth > max_depth:
        raise _error(f"sequences nested deeper than {max_depth}", tag, start)
    unpack = _HHL[little_endian].unpack_from
    items = []
    pos = start
    while pos < end:
        if end - pos < 8:
            raise _error("sequence ends inside an item header", tag, pos)
        group, elem, raw_length = unpack(buf, pos)
        item_tag = group << 16 | elem
        if item_tag == SEQUENCE_DELIMITATION:
            break
        if item_tag != ITEM:
            raise _error(f"expected an item tag in the sequence, found ({group:04X},{elem:04X})", tag, pos)
        if raw_length == UNDEFINED_LENGTH:
            after = _walk_dataset(buf, pos + 8, end, little_endian, explicit_vr, False, True, depth, max_depth, None)[0]
            items.append(_item((pos, pos + 8, after - 8 - (pos + 8), True)))
            pos = after
        else:
            if raw_length > end - (pos + 8):
                raise _error(f"item length {raw_length} goes past the end of the sequence", tag, pos)
            items.append(_item((pos, pos + 8, raw_length, False)))
            pos += 8 + raw_length
    return items


def parse_fragments(buf, start, length, little_endian, tag) -> list[Item]:
    """List the fragments of encapsulated data as :class:`Item` records (the first is the Basic Offset Table)."""
    end = start + length
    if start < 0 or end > len(buf):
        raise _error("fragment range outside the buffer", tag, start)
    unpack = _HHL[little_endian].unpack_from
    out = []
    pos = start
    while pos < end:
        if end - pos < 8:
            raise _error("data ends inside a fragment header", tag, pos)
        group, elem, flen = unpack(buf, pos)
        ftag = group << 16 | elem
        if ftag == SEQUENCE_DELIMITATION:
            break
        if ftag != ITEM:
            raise _error(f"expected a fragment item, found ({group:04X},{elem:04X})", tag, pos)
        if flen == UNDEFINED_LENGTH:
            raise _error("fragment of encapsulated data with undefined length", tag, pos)
        if flen > end - (pos + 8):
            raise _error(f"fragment length {flen} goes past the end of the data", tag, pos)
        out.append(_item((pos, pos + 8, flen, False)))
        pos += 8 + flen
    return out


# -- Part 10 framing (twin of fastdicom_parse::open) --------------------------------


def read_fd(fd: int, size: int) -> bytes:
    """Read up to ``size`` bytes from a file descriptor (fewer only at end of file)."""
    chunks = []
    left = size
    while left > 0:
        chunk = os.read(fd, left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def looks_little(buf, pos: int) -> bool:
    """Guess byte order from the first tag's group (small groups come first)."""
    if len(buf) < pos + 2:
        return True
    le = buf[pos] | buf[pos + 1] << 8
    be = buf[pos] << 8 | buf[pos + 1]
    return not (le > 0xFF and be <= 0xFF)


def looks_explicit(buf, pos: int) -> bool:
    if len(buf) < pos + 6:
        return True
    return _is_vr(buf[pos + 4], buf[pos + 5])


def _plausible_dataset(buf, pos: int) -> bool:
    le = buf[pos] | buf[pos + 1] << 8
    be = buf[pos] << 8 | buf[pos + 1]
    return min(le, be) <= 0x0FFF and le != 0xFFFE and be != 0xFFFE


def _meta_end_walk(buf, pos: int) -> int:
    n = len(buf)
    while n - pos >= 8:
        if buf[pos] | buf[pos + 1] << 8 != 0x0002:
            break
        if looks_explicit(buf, pos):
            if bytes(buf[pos + 4 : pos + 6]) in LONG_VRS:
                if n - pos < 12:
                    break
                length = _L[True].unpack_from(buf, pos + 8)[0]
                value = pos + 12
            else:
                length = _H[True].unpack_from(buf, pos + 6)[0]
                value = pos + 8
        else:
            length = _L[True].unpack_from(buf, pos + 4)[0]
            value = pos + 8
        if length == UNDEFINED_LENGTH or length > n - value:
            raise _error("File Meta element length goes past the end of the file", None, value)
        pos = value + length
    return pos


def open_dataset(buf, stop_before_pixels: bool = False) -> Opened:
    """Locate a Part 10 file or raw data set; parse its File Meta and top level.

    Returns an :class:`Opened` record; its ``body_table`` is None for a
    deflated data set.
    """
    n = len(buf)
    head = bytes(buf[:160])
    pos = 0
    preamble = False
    if n >= 132 and head[128:132] == b"DICM":
        preamble = True
        pos = 132
    elif n >= 4 and head[:4] == b"DICM":
        pos = 4
    meta = None
    meta_start = meta_end = 0
    ts = None
    if n - pos >= 8 and head[pos : pos + 2] == b"\x02\x00":
        end = None
        if n - pos >= 12 and head[pos : pos + 6] == b"\x02\x00\x00\x00UL":
            cand = pos + 12 + _L[True].unpack_from(head, pos + 8)[0]
            if cand <= n and (n - cand < 2 or bytes(buf[cand : cand + 2]) != b"\x02\x00"):
                end = cand
        if end is None:
            end = _meta_end_walk(buf, pos)
        meta = parse_dataset(buf, pos, end, True, True)
        r = meta.lookup(0x00020010)
        if r is not None:
            text = str(buf[r.value_offset : r.value_offset + r.value_length], "latin_1").rstrip("\0 ").split("\\")[0]
            ts = text or None
        meta_start, meta_end = pos, end
        pos = end
    elif not preamble and n >= 8 and not _plausible_dataset(buf, pos):
        raise _error("not a DICOM file: no preamble, no File Meta, no plausible data set", None, 0)
    if ts is not None:
        little, explicit, deflated = encoding_of(ts)
    else:
        little, explicit, deflated = looks_little(buf, pos), looks_explicit(buf, pos), False
    body = None if deflated else parse_dataset(buf, pos, n, little, explicit, stop_before_pixels)
    return Opened(preamble, meta, meta_start, meta_end, ts, little, explicit, deflated, pos, body)


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)  # O_BINARY exists on Windows only


def read_prefix(path, size: int) -> tuple[bytes, bool]:
    """The first ``size`` bytes of a file, and whether that is the whole file."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        total = os.fstat(fd).st_size
        data = read_fd(fd, min(size, total))
    finally:
        os.close(fd)
    return data, total <= size
