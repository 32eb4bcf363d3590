"""The ``fastdicom`` command line."""

from __future__ import annotations

import argparse
import os
import struct
import sys
import time
import zlib
from collections.abc import Iterator

from .. import _backends
from ..dataset import _parse_py, read
from ..dataset._parse_py import LONG_VRS
from ..dataset.dataset import Dataset, Element
from ..dataset.read import MAX_INFLATE, _detected_syntax
from ..dataset.values import BYTES_VRS
from ..dictionary import entry as dict_entry
from ..errors import FastDicomError, InvalidDicomError


def _fmt_value(elem: Element, width: int = 64) -> str:
    if elem.vr in BYTES_VRS or elem.tag in (0x7FE00010, 0x7FE00008, 0x7FE00009):
        raw = bytes(elem.raw[:16])
        words = "\\".join(f"{b:02x}" for b in raw)
        more = "..." if len(elem.raw) > 16 else ""
        return f"{words}{more}"
    v = elem.value
    if v is None or v == "":
        return "(no value available)"
    if isinstance(v, list):
        s = "\\".join(_scalar(x, elem.vr) for x in v)
    else:
        s = _scalar(v, elem.vr)
    s = f"[{s}]" if elem.vr not in ("US", "SS", "UL", "SL", "FL", "FD", "UV", "SV", "AT") else s
    return s if len(s) <= width else s[: width - 3] + "..."


def _scalar(x, vr: str) -> str:
    if vr == "AT":
        return f"({x >> 16:04x},{x & 0xFFFF:04x})"
    return str(x)


def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04x},{tag & 0xFFFF:04x})"


def _cut_sequence_line(pad: str, tag: int, length: int, name: str) -> str:
    shown = "u/l" if length == _UNDEFINED else str(length)
    return f"{pad}{_tag_text(tag)} SQ (Sequence, not read to its end)   # {shown}, 1 {name}"


def dump_lines(ds: Dataset, indent: int = 0, stops: list[tuple[int, int | None]] | None = None) -> Iterator[str]:
    """Lines like dcmdump's: ``(gggg,eeee) VR value  # length, VM name``.

    A sequence whose items cannot be read gives the items read before the
    fault, then raises the tokenizer's :class:`~fastdicom.errors.InvalidDicomError`;
    ``(offset, tag)`` of each fault met on the way in is appended to ``stops``
    (the last is where reading stopped).
    """
    pad = "  " * indent
    for elem in ds:
        tag = _tag_text(elem.tag)
        length = "u/l" if elem.is_undefined_length else str(len(elem.raw) if elem.vr != "SQ" else len(elem._raw or b""))
        name = elem.keyword or elem.name
        if elem.vr == "SQ":
            try:
                items = elem.value
            except InvalidDicomError:
                if elem._hdr < 0:
                    raise
                yield _cut_sequence_line(pad, elem.tag, _UNDEFINED if elem.is_undefined_length else len(elem.raw), name)
                little, explicit = elem._seq_enc or (ds._little, ds._explicit)
                start = elem._value_offset
                if stops is not None:
                    stops.append((elem._hdr, elem.tag))
                yield from _items_read(
                    ds._buf,
                    start,
                    start + len(elem.raw),
                    little,
                    explicit,
                    ds._mod,
                    ds._depth + 1,
                    ds,
                    indent + 1,
                    stops,
                )
                raise
            yield f"{pad}{tag} SQ (Sequence with {len(items)} item(s))   # {length}, 1 {name}"
            for item in items:
                yield f"{pad}  (fffe,e000) na (Item)"
                yield from dump_lines(item, indent + 2, stops)
                yield f"{pad}  (fffe,e00d) na (ItemDelimitationItem)"
            continue
        text = _fmt_value(elem)
        yield f"{pad}{tag} {elem.vr} {text:<40} # {length:>4}, {elem.vm} {name}"


def _file_lines(ds: Dataset, stops: list | None = None) -> Iterator[str]:
    if ds.file_meta is not None:
        yield "# Dicom-Meta-Information-Header"
        yield from dump_lines(ds.file_meta, 0, stops)
        yield ""
    yield "# Dicom-Data-Set"
    yield f"# Used TransferSyntax: {ds.transfer_syntax}"
    yield from dump_lines(ds, 0, stops)


# -- what a file cut short still holds --------------------------------------------------------------
#
# When the tokenizer stops at a fault, dump walks the level once more, element
# header by element header, with the same rules (_parse_py is the reference), to
# find where the last element read whole ends; the registry's parser then reads
# that range, and the element at the fault is opened as far as it goes when it is
# a sequence. The fault reported is the tokenizer's own.

_ITEM, _ITEM_END, _SEQ_END, _PIXEL_DATA = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD, 0x7FE00010
_UNDEFINED = 0xFFFFFFFF
_MAX_DEPTH = 64
#: ``(tag, vr, value_offset, length)`` of an element header; vr is "" in implicit VR.
_Header = tuple[int, str, int, int]


def _is_vr(b0: int, b1: int) -> bool:
    return 0x41 <= b0 <= 0x5A and 0x41 <= b1 <= 0x5A


def _header(buf, pos: int, end: int, little: bool, explicit: bool) -> _Header | None:
    """The element header at ``pos``; None when fewer bytes than a header are left before ``end``."""
    if end - pos < 8:
        return None
    o = "<" if little else ">"
    group, elem = struct.unpack_from(o + "HH", buf, pos)
    tag = group << 16 | elem
    if explicit and group != 0xFFFE and _is_vr(buf[pos + 4], buf[pos + 5]):
        vr = bytes(buf[pos + 4 : pos + 6]).decode("ascii")
        if vr.encode("ascii") in LONG_VRS:
            if end - pos < 12:
                return None
            return tag, vr, pos + 12, struct.unpack_from(o + "L", buf, pos + 8)[0]
        return tag, vr, pos + 8, struct.unpack_from(o + "H", buf, pos + 6)[0]
    return tag, "", pos + 8, struct.unpack_from(o + "L", buf, pos + 4)[0]


def _end_of_undefined(buf, hdr: _Header, end: int, little: bool, explicit: bool, mod, depth: int) -> int | None:
    """Where an element of undefined length ends (after its Sequence Delimitation Item), None if not before ``end``."""
    tag, vr, vo, _length = hdr
    try:
        if vr == "UN":
            items = mod.parse_items(buf, vo, end - vo, True, False, depth + 1, tag)
        elif tag == _PIXEL_DATA or vr in ("OB", "OW"):
            items = mod.parse_fragments(buf, vo, end - vo, little, tag)
        else:
            items = mod.parse_items(buf, vo, end - vo, little, explicit, depth + 1, tag)
    except InvalidDicomError:
        return None
    last = items[-1] if items else None
    pos = vo if last is None else last.value_offset + last.value_length + (8 if last.undefined_length else 0)
    if end - pos < 8 or struct.unpack_from("<HHL" if little else ">HHL", buf, pos)[:2] != (0xFFFE, 0xE0DD):
        return None
    return pos + 8


def _read_whole(
    buf, start: int, end: int, little: bool, explicit: bool, mod, *, in_item=False, delimited=False, depth=0, group=None
) -> tuple[int, bool, bool, _Header | None]:
    """Walk one level from ``start`` as the tokenizer does.

    Returns ``(h, explicit, done, fault)``: the elements in ``buf[start:h]`` are
    whole; ``done`` when the level ended there (at ``end``, at an Item
    Delimitation Item, or at the first element outside ``group``), else
    ``fault`` is the header of the element that could not be read (None when
    its header itself is cut).
    """
    if not (in_item and not explicit) and end - start >= 6:
        explicit = _is_vr(buf[start + 4], buf[start + 5])
    pos = start
    while pos < end:
        hdr = _header(buf, pos, end, little, explicit)
        if hdr is None:
            return pos, explicit, False, None
        tag, _vr, vo, length = hdr
        if group is not None and tag >> 16 != group or tag == _ITEM_END:
            return pos, explicit, True, None
        if tag in (_SEQ_END, _ITEM):
            if tag == _SEQ_END and length == 0 and not in_item:
                pos = vo
                continue
            return pos, explicit, False, hdr
        if length == _UNDEFINED:
            nxt = _end_of_undefined(buf, hdr, end, little, explicit, mod, depth)
            if nxt is None:
                return pos, explicit, False, hdr
        elif length > end - vo:
            return pos, explicit, False, hdr
        else:
            nxt = vo + length
        pos = nxt
    return pos, explicit, not delimited, None


def _fault_lines(buf, pos: int, hdr: _Header | None, end: int, little, explicit, mod, depth, parent, indent, stops):
    """The element at a fault: a sequence opened as far as it goes, any other element named (as dcmdump does)."""
    if stops is not None:
        stops.append((pos, hdr[0] if hdr is not None else None))
    if hdr is None or depth > _MAX_DEPTH:
        return
    tag, vr, vo, length = hdr
    if tag >> 16 == 0xFFFE:
        return
    bare = Element(tag, "UN")
    name = bare.keyword or bare.name
    e = dict_entry(tag) if not tag >> 16 & 1 else None
    pad = "  " * indent
    if vr == "SQ" or (length == _UNDEFINED and vr in ("", "UN") and tag != _PIXEL_DATA):
        seq_little, seq_explicit = (True, False) if vr == "UN" else (little, explicit)
    elif not vr and e is not None and e[0] == "SQ":
        seq_little, seq_explicit = little, False
    else:
        shown_vr = vr or (e[0].split(" or ")[0] if e is not None else "UN")
        if length == _UNDEFINED:  # encapsulated data cut short: its fragments are not listed
            yield f"{pad}{_tag_text(tag)} {shown_vr} (PixelSequence, not read to its end)   # u/l, 1 {name}"
        else:
            text = f"(not read: {max(0, end - vo)} of {length} bytes)"
            yield f"{pad}{_tag_text(tag)} {shown_vr} {text:<40} # {length:>4}, 0 {name}"
        return
    yield _cut_sequence_line(pad, tag, length, name)
    stop = end if length == _UNDEFINED else min(end, vo + length)
    yield from _items_read(buf, vo, stop, seq_little, seq_explicit, mod, depth + 1, parent, indent + 1, stops)


def _items_read(buf, start: int, end: int, little: bool, explicit: bool, mod, depth, parent, indent, stops):
    """The items of a sequence value ``buf[start:end]`` up to the first that cannot be read whole, and that one."""
    pad = "  " * indent
    pos = start
    while depth <= _MAX_DEPTH:
        if end - pos < 8:
            if stops is not None:
                stops.append((pos, None))
            return
        group, elem, length = struct.unpack_from("<HHL" if little else ">HHL", buf, pos)
        if group << 16 | elem != _ITEM:
            if stops is not None:
                stops.append((pos, group << 16 | elem))
            return
        vo = pos + 8
        undefined = length == _UNDEFINED
        whole = undefined or length <= end - vo
        stop = end if not whole or undefined else vo + length
        h, _exp, done, fault = _read_whole(
            buf, vo, stop, little, explicit, mod, in_item=True, delimited=undefined, depth=depth
        )
        yield f"{pad}(fffe,e000) na (Item)"
        item = Dataset._from_buffer(buf, vo, h, little, explicit, mod, in_item=True, depth=depth, parent=parent)
        yield from dump_lines(item, indent + 1, stops)
        if not (done and whole):
            yield from _fault_lines(buf, h, fault, stop, little, _exp, mod, depth, item, indent + 1, stops)
            return
        yield f"{pad}(fffe,e00d) na (ItemDelimitationItem)"
        pos = h + 8 if undefined else vo + length


def partial_lines(buf, backend: str | None = None, stops: list[tuple[int, int | None]] | None = None) -> Iterator[str]:
    """The lines of every element read before a fault in a file that :func:`fastdicom.read` refuses.

    The File Meta and the top level are walked to the last element read whole;
    the element at the fault follows, opened as far as it goes when it is a
    sequence. A deflated data set is inflated as far as it goes. ``(offset,
    tag)`` of each fault met on the way in is appended to ``stops``: the last
    is the innermost, where reading stopped (offsets in a deflated data set
    count its inflated bytes, as the tokenizer's do).
    """
    mod = _backends.resolve("parse", backend)[1]
    buf = memoryview(buf).cast("B")
    n = len(buf)
    pos = 132 if n >= 132 and bytes(buf[128:132]) == b"DICM" else 4 if bytes(buf[:4]) == b"DICM" else 0
    ts = None
    little, explicit, deflated = _parse_py.looks_little(buf, pos), _parse_py.looks_explicit(buf, pos), False
    if n - pos >= 8 and bytes(buf[pos : pos + 2]) == b"\x02\x00":
        end = n
        if bytes(buf[pos : pos + 6]) == b"\x02\x00\x00\x00UL" and n - pos >= 12:
            cand = pos + 12 + struct.unpack_from("<L", buf, pos + 8)[0]
            if cand <= n and (n - cand < 2 or bytes(buf[cand : cand + 2]) != b"\x02\x00"):
                end = cand
        h, _explicit, done, fault = _read_whole(buf, pos, end, True, True, mod, group=2)
        meta = Dataset._from_buffer(buf, pos, h, True, True, mod)
        yield "# Dicom-Meta-Information-Header"
        yield from dump_lines(meta, 0, stops)
        if not done:
            yield from _fault_lines(buf, h, fault, n, True, True, mod, 0, meta, 0, stops)
            return
        yield ""
        try:
            o = mod.open_dataset(buf[:h])
        except InvalidDicomError:
            return
        ts, deflated, pos = o.transfer_syntax, o.deflated, o.body_start
        little, explicit = o.little_endian, o.explicit_vr
    body = buf
    if deflated:
        try:
            body, pos = memoryview(zlib.decompressobj(-zlib.MAX_WBITS).decompress(buf[pos:], MAX_INFLATE)), 0
        except zlib.error:
            return
    h, explicit, done, fault = _read_whole(body, pos, len(body), little, explicit, mod)
    ds = Dataset._from_buffer(body, pos, h, little, explicit, mod)
    yield "# Dicom-Data-Set"
    yield f"# Used TransferSyntax: {ts or _detected_syntax(little, ds._explicit)}"
    yield from dump_lines(ds, 0, stops)
    if not done:
        yield from _fault_lines(body, h, fault, len(body), little, explicit, mod, 0, ds, 0, stops)


def _report(path: str, exc: BaseException, stops: list[tuple[int, int | None]]) -> str:
    """The error line: the fault, and the offset (in the file, or in the inflated data set) where reading stopped."""
    if not isinstance(exc, InvalidDicomError):
        return f"fastdicom dump: {path}: {exc}"
    offset, tag = stops[-1] if stops else (exc.offset, exc.tag)
    if offset is None:
        return f"fastdicom dump: {path}: {exc}"
    where = f" in {_tag_text(tag)}" if tag is not None else ""
    fault = exc.message if (offset, tag) == (exc.offset, exc.tag) else str(exc)
    return f"fastdicom dump: {path}: {fault}; reading stopped at offset {offset}{where}"


def cmd_dump(args: argparse.Namespace) -> int:
    status = 0
    for path in args.files:
        if len(args.files) > 1:
            print(f"# {path}")
        stops: list[tuple[int, int | None]] = []
        try:
            try:
                ds = read(path, stop_before_pixels=args.stop_before_pixels, backend=args.backend)
            except InvalidDicomError as exc:
                # Cut short or malformed: what was read before the fault, then the fault.
                with open(path, "rb") as f:
                    data = f.read()
                for line in partial_lines(data, args.backend, stops):
                    print(line)
                raise exc from None
            for line in _file_lines(ds, stops):
                print(line)
        except (FastDicomError, OSError) as exc:
            sys.stdout.flush()
            print(_report(path, exc, stops), file=sys.stderr)
            status = 1
    return status


def cmd_backends(args: argparse.Namespace) -> int:
    info = _backends.backend_info()
    missing = _backends.missing_info()
    for cap, name in info.items():
        line = f"{cap:<14} {name}"
        miss = missing.get(cap) or {}
        if miss:
            line += "   (missing: " + "; ".join(f"{k}: {v}" for k, v in miss.items()) + ")"
        print(line)
    return 0


def _walk(paths: list[str]) -> list[str]:
    out = []
    for p in paths:
        if os.path.isdir(p):
            for root, _dirs, files in os.walk(p):
                out += [os.path.join(root, f) for f in sorted(files)]
        else:
            out.append(p)
    return out


def cmd_scan(args: argparse.Namespace) -> int:
    """Scan headers of many files: the main job until `fastdicom demo` exists."""
    import tempfile

    tmp = None
    paths = args.paths
    if not paths:
        from ..synth import write_ct_series

        tmp = tempfile.TemporaryDirectory(prefix="fastdicom-scan-")
        print(f"No paths given: writing a synthetic {args.slices}-slice CT series to {tmp.name}")
        write_ct_series(tmp.name, args.slices)
        paths = [tmp.name]
    files = _walk(paths)
    series: dict[str, int] = {}
    errors = 0
    t0 = time.perf_counter()
    for f in files:
        try:
            ds = read(f, stop_before_pixels=True)
            uid = ds.get(0x0020000E) or "?"
            series[uid] = series.get(uid, 0) + 1
            ds.get(0x00080018), ds.get(0x00200013), ds.get(0x00200032), ds.get(0x00281052)
        except (FastDicomError, OSError) as exc:
            errors += 1
            if args.verbose:
                print(f"{f}: {exc}", file=sys.stderr)
    dt = time.perf_counter() - t0
    rate = len(files) / dt if dt > 0 else float("inf")
    print(f"{len(files)} files, {len(series)} series, {errors} unreadable, {dt * 1000:.1f} ms ({rate:,.0f} files/s)")
    print(f"backend: {_backends.backend_info()['parse']}")
    for uid, n in sorted(series.items(), key=lambda kv: -kv[1])[:20]:
        print(f"  {n:6d}  {uid}")
    if tmp is not None:
        tmp.cleanup()
    return 1 if errors and not files else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fastdicom", description="Read, decode and move DICOM fast.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "dump",
        help="print the elements of DICOM files, like dcmdump",
        description="Print the elements of DICOM files, like dcmdump. A file cut short or malformed prints every "
        "element read before the fault, then the fault and the byte offset where reading stopped (on stderr).",
        epilog="Exit status: 0 when every file was read to its end, 1 when one could not be (2: bad arguments).",
    )
    p.add_argument("files", nargs="+")
    p.add_argument("--stop-before-pixels", action="store_true")
    p.add_argument("--backend", help="parse backend (rust, python); by default the registry's choice")
    p.set_defaults(func=cmd_dump)
    p = sub.add_parser("scan", help="scan the headers of files or folders (a synthetic CT series when none given)")
    p.add_argument("paths", nargs="*")
    p.add_argument("--slices", type=int, default=300)
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=cmd_scan)
    p = sub.add_parser("backends", help="print the backend chosen for each capability and what is missing")
    p.set_defaults(func=cmd_backends)
    from .archive import register as register_archive
    from .commit import register as register_commit
    from .net import register
    from .transcode import register as register_transcode

    register(sub)
    register_transcode(sub)
    register_archive(sub)
    register_commit(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:
        return 0
