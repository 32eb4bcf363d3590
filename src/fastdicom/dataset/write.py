"""``fastdicom.write``: byte-exact for unmodified data sets, re-encoding otherwise.

An unmodified data set read from a Part 10 file is written back byte for
byte. A modified one is re-encoded: elements that did not change are copied
from the source buffer when the encoding is the same (and byte-swapped by VR
when the byte order changes, by the rules in ``byteorder``: OW in 16-bit
words, Pixel Data too whatever Bits Allocated; OB Pixel Data of more than 8
bits written as OW); changed elements and sequences are encoded afresh.
Bytes values (OB, OW, OF, ...) set by the caller are taken to be in the byte
order of the data set that holds them (little endian for a new one). The four
uncompressed encodings (implicit VR LE, explicit VR LE and BE, deflated
explicit VR LE) convert into each other. File Meta is created or updated:
this module is where fastdicom writes File Meta (a new object's from its
UIDs: :func:`part10_header`, used by the Storage SCP).

fastdicom names itself in File Meta (Implementation Class UID and Version
Name) when it wrote the content: a new data set, a syntax conversion, or
Pixel Data it encoded (:func:`fastdicom.transcode`). An unchanged file, or one
whose other elements were edited, keeps the writer it names.
"""

from __future__ import annotations

import functools
import os
import struct
import zlib
from typing import Any

from .._version import __version__
from ..dictionary import uid as _uid
from ..errors import FastDicomError
from . import byteorder, values
from .dataset import Dataset, Element

#: fastdicom's Implementation Class UID (PS3.7 D.3.3.2, PS3.10 7.1): a 2.25 UID derived from a fixed UUID
#: (PS3.5 B.2), so nobody needs to register it; with the version name, in the File Meta of what fastdicom
#: writes and in every A-ASSOCIATE it sends. Defined here only.
IMPLEMENTATION_CLASS_UID = "2.25.293749828714376233497417934316453410427"
IMPLEMENTATION_VERSION_NAME = ("FASTDICOM_" + __version__.replace(".", ""))[:16]

LONG_VRS = frozenset(("OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"))


def _tag_bytes(tag: int, little: bool) -> bytes:
    return struct.pack("<HH" if little else ">HH", tag >> 16, tag & 0xFFFF)


def _header(tag: int, vr: str, length: int, little: bool, explicit: bool) -> bytes:
    e = "<" if little else ">"
    if not explicit or tag >> 16 == 0xFFFE:
        return struct.pack(e + "HHL", tag >> 16, tag & 0xFFFF, length)
    if vr in LONG_VRS:
        return struct.pack(e + "HH2sHL", tag >> 16, tag & 0xFFFF, vr.encode(), 0, length)
    if length > 0xFFFF:
        if length == 0xFFFFFFFF:
            raise FastDicomError(f"VR {vr} cannot have undefined length (tag {tag:08X})")
        # Too long for a 16-bit length: PS3.5 6.2.2 allows UN in that case.
        return struct.pack(e + "HH2sHL", tag >> 16, tag & 0xFFFF, b"UN", 0, length)
    return struct.pack(e + "HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), length)


def _item(content: list[bytes], little: bool) -> list[bytes]:
    n = sum(len(c) for c in content)
    return [_tag_bytes(0xFFFEE000, little) + struct.pack("<L" if little else ">L", n), *content]


def encode_sequence_value(elem: Element, little: bool, explicit: bool) -> bytes:
    """The encoded items of a sequence element (without its own header)."""
    out: list[bytes] = []
    for item in elem.value:
        out += _item(encode_dataset(item, little, explicit), little)
    return b"".join(out)


def _element_bytes(elem: Element, ds: Dataset, little: bool, explicit: bool) -> list[bytes]:
    # The element's own data set holds its source bytes (it may come from another data set).
    ds = elem._ds if elem._ds is not None and elem._ds._buf is not None else ds
    same = ds._buf is not None and ds._little == little and ds._explicit == explicit
    if same and elem._hdr >= 0 and elem._pristine():
        return [ds._buf[elem._hdr : elem._end]]
    vr = elem.vr
    if vr == "SQ":
        body: list[bytes] = []
        for item in elem.value:
            body += _item(encode_dataset(item, little, explicit), little)
        n = sum(len(b) for b in body)
        return [_header(elem.tag, vr, n, little, explicit), *body]
    if isinstance(elem._value, values.Encapsulated):
        return [_header(elem.tag, "OB", 0xFFFFFFFF, little, explicit), *elem._value.items(little)]
    if elem._undefined and elem._raw is not None and not elem._dirty:
        # Encapsulated data: fragments keep their bytes; only the headers' byte order can change.
        content = bytes(elem._raw)
        if ds._little != little:
            content = _swap_fragment_headers(content, ds._little)
        return [
            _header(elem.tag, vr if vr in ("OB", "OW", "UN") else "OB", 0xFFFFFFFF, little, explicit),
            content,
            _tag_bytes(0xFFFEE0DD, little) + b"\0\0\0\0",
        ]
    if elem._raw is not None and not elem._dirty:
        raw, src_little = elem._raw, ds._little
    elif vr in values.BYTES_VRS:
        # A bytes value (OB, OW, OF...) is in the byte order of the data set that holds it.
        raw, src_little = values.encode(vr, elem._value, little, ds._codecs()), ds._little
    else:
        raw, src_little = values.encode(vr, elem._value, little, ds._codecs()), little
    out_vr = vr
    if elem.tag == byteorder.PIXEL_DATA:
        out_vr = byteorder.written_vr(elem.tag, vr, ds.get(0x00280100))  # OB of > 8 bits: OW (PS3.5 8.2)
    raw = byteorder.convert(raw, vr, src_little, little, tag=elem.tag, dst_vr=out_vr)
    return [_header(elem.tag, out_vr, len(raw), little, explicit), raw]


def _swap_fragment_headers(content: bytes, src_little: bool) -> bytes:
    out = bytearray(content)
    pos = 0
    src = "<HHL" if src_little else ">HHL"
    dst = ">HHL" if src_little else "<HHL"
    while pos + 8 <= len(out):
        g, e, n = struct.unpack_from(src, out, pos)
        struct.pack_into(dst, out, pos, g, e, n)
        pos += 8 + n
    return bytes(out)


def encode_dataset(ds: Dataset, little: bool, explicit: bool) -> list[bytes]:
    """The encoded elements of a data set, as a list of byte chunks.

    When the data set is re-encoded, Group Length elements (gggg,0000) get the
    length of their group as now encoded.
    """
    if ds._buf is not None and ds._pristine() and ds._little == little and ds._explicit == explicit:
        return [ds._buf[ds._start : ds._end]]
    parts: list[tuple[int, list]] = []
    for elem in ds:
        if elem.tag >> 16 == 0x0002 and ds._parent is None and ds.file_meta is not None:
            continue
        parts.append((elem.tag, _element_bytes(elem, ds, little, explicit)))
    if any(tag & 0xFFFF == 0 for tag, _ in parts):
        sizes: dict[int, int] = {}
        for tag, chunks in parts:
            if tag & 0xFFFF:
                sizes[tag >> 16] = sizes.get(tag >> 16, 0) + sum(len(c) for c in chunks)
        fmt = "<L" if little else ">L"
        parts = [
            (tag, [_header(tag, "UL", 4, little, explicit), struct.pack(fmt, sizes.get(tag >> 16, 0))])
            if tag & 0xFFFF == 0
            else (tag, chunks)
            for tag, chunks in parts
        ]
    return [c for _, chunks in parts for c in chunks]


def _meta_bytes(meta: Dataset) -> bytes:
    body: list[bytes] = []
    for elem in meta:
        if elem.tag == 0x00020000:
            continue
        body += _element_bytes(elem, meta, True, True)
    content = b"".join(bytes(b) for b in body)
    glen = _header(0x00020000, "UL", 4, True, True) + struct.pack("<L", len(content))
    return glen + content


def _meta_element(tag: int, vr: str, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\0" if vr == "UI" else b" "
    return _header(tag, vr, len(value), True, True) + value


_PREAMBLE_DICM = bytes(128) + b"DICM"


@functools.lru_cache(maxsize=256)
def _meta_around_instance(sop_class: str, transfer_syntax: str, source_ae: str | None) -> tuple[bytes, bytes]:
    """The File Meta elements before and after (0002,0003) for objects of one kind (the same for a whole series)."""
    before = _meta_element(0x00020001, "OB", b"\x00\x01") + _meta_element(
        0x00020002, "UI", sop_class.encode("ascii", "replace")
    )
    after = [
        _meta_element(0x00020010, "UI", transfer_syntax.encode("ascii", "replace")),
        _meta_element(0x00020012, "UI", IMPLEMENTATION_CLASS_UID.encode()),
        _meta_element(0x00020013, "SH", IMPLEMENTATION_VERSION_NAME.encode()),
    ]
    if source_ae:
        after.append(_meta_element(0x00020016, "AE", source_ae.encode("ascii", "replace")[:16]))
    return before, b"".join(after)


def part10_header(sop_class: str, sop_instance: str, transfer_syntax: str, source_ae: str | None = None) -> bytes:
    """Preamble, ``DICM`` and the File Meta group of a new object written by fastdicom (PS3.10 7.1).

    For a data set received over the network, before its bytes: ``source_ae``
    is the AE title that sent it ((0002,0016); text that is not ASCII is
    replaced, never refused).
    """
    before, after = _meta_around_instance(sop_class, transfer_syntax, source_ae)
    instance = _meta_element(0x00020003, "UI", sop_instance.encode("ascii", "replace"))
    length = struct.pack("<L", len(before) + len(instance) + len(after))
    return b"".join((_PREAMBLE_DICM, _meta_element(0x00020000, "UL", length), before, instance, after))


def _build_meta(ds: Dataset, ts: str, rewritten: bool) -> Dataset:
    meta = Dataset()
    old = ds.file_meta
    if old is not None:
        for elem in old:
            meta[elem.tag] = Element(elem.tag, elem.vr, elem.value)
    if 0x00020001 not in meta:
        meta.add_new(0x00020001, "OB", b"\x00\x01")
    sop_class = ds.get(0x00080016)
    sop_inst = ds.get(0x00080018)
    if sop_class:
        meta.add_new(0x00020002, "UI", sop_class)
    if sop_inst:
        meta.add_new(0x00020003, "UI", sop_inst)
    meta.add_new(0x00020010, "UI", ts)
    if rewritten or old is None or 0x00020012 not in meta:
        meta.add_new(0x00020012, "UI", IMPLEMENTATION_CLASS_UID)
        meta.add_new(0x00020013, "SH", IMPLEMENTATION_VERSION_NAME)
    return meta


def to_bytes(ds: Dataset, *, transfer_syntax: str | None = None) -> bytes:
    """The Part 10 encoding of ``ds`` (preamble, ``DICM``, File Meta, data set)."""
    chunks = encode_part10(ds, transfer_syntax=transfer_syntax)
    return b"".join(bytes(c) if not isinstance(c, bytes) else c for c in chunks)


def encode_part10(ds: Dataset, *, transfer_syntax: str | None = None) -> list[Any]:
    """The Part 10 encoding of ``ds`` as a list of byte chunks (views into the source when unchanged)."""
    if ds._stopped_before_pixels:
        raise FastDicomError("this data set was read with stop_before_pixels; writing it would drop Pixel Data")
    src_ts = ds.transfer_syntax
    ts = transfer_syntax or src_ts or _uid.ExplicitVRLittleEndian
    little, explicit, deflated = _uid.encoding_of(ts)
    src_deflated = src_ts is not None and _uid.encoding_of(src_ts)[2]
    meta = ds.file_meta
    same_ts = ts == src_ts
    if (
        same_ts
        and meta is not None
        and meta._pristine()
        and ds.preamble is not None
        and ds._buf is not None
        and ds._pristine()
        and not src_deflated
        and meta._buf is ds._buf
    ):
        # Unmodified: the original bytes, from the preamble to the end of the data set.
        return [ds._buf[0 : ds._end]]
    if ts != src_ts and _uid.is_encapsulated(ts) != _uid.is_encapsulated(src_ts or ts) and 0x7FE00010 in ds:
        raise FastDicomError(f"converting Pixel Data to {ts} needs a codec (see fastdicom.transcode)")
    if meta is not None and same_ts and meta._pristine() and meta._buf is not None:
        meta_bytes: Any = meta._buf[meta._start : meta._end]
    else:
        # fastdicom wrote the content when it converted the syntax or encoded the Pixel Data.
        pixels_encoded = 0x7FE00010 in ds and not ds[0x7FE00010]._pristine()
        meta_bytes = _meta_bytes(_build_meta(ds, ts, rewritten=not same_ts or pixels_encoded))
    body = encode_dataset(ds, little, explicit)
    if deflated:
        c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        parts = [c.compress(b) for b in body]
        parts.append(c.flush())
        data = b"".join(parts)
        if len(data) % 2:
            data += b"\0"
        body = [data]
    preamble = ds.preamble if ds.preamble is not None else b"\0" * 128
    return [preamble, b"DICM", meta_bytes, *body]


def write(dest: Any, ds: Dataset, *, transfer_syntax: str | None = None) -> None:
    """Write ``ds`` as a Part 10 file.

    Parameters
    ----------
    dest : str, os.PathLike or binary file object
        A path is written atomically and durably (temporary file, fsync,
        rename, fsync of the folder).
    ds : Dataset
    transfer_syntax : str, optional
        Convert to this transfer syntax (one of the four uncompressed
        encodings, or the data set's own). Default: the data set's own.
    """
    chunks = encode_part10(ds, transfer_syntax=transfer_syntax)
    if hasattr(dest, "write"):
        for c in chunks:
            dest.write(c)
        return
    from ..archive.durable import write_atomic  # here: the archive imports this module's package

    write_atomic(os.fspath(dest), chunks)
