"""The ``fastdicom`` command line."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator

from .. import _backends
from ..dataset import read
from ..dataset.dataset import Dataset, Element
from ..dataset.values import BYTES_VRS
from ..errors import FastDicomError


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


def dump_lines(ds: Dataset, indent: int = 0) -> Iterator[str]:
    """Lines like dcmdump's: ``(gggg,eeee) VR value  # length, VM name``."""
    pad = "  " * indent
    for elem in ds:
        tag = f"({elem.tag >> 16:04x},{elem.tag & 0xFFFF:04x})"
        length = "u/l" if elem.is_undefined_length else str(len(elem.raw) if elem.vr != "SQ" else len(elem._raw or b""))
        name = elem.keyword or elem.name
        if elem.vr == "SQ":
            items = elem.value
            yield f"{pad}{tag} SQ (Sequence with {len(items)} item(s))   # {length}, 1 {name}"
            for item in items:
                yield f"{pad}  (fffe,e000) na (Item)"
                yield from dump_lines(item, indent + 2)
                yield f"{pad}  (fffe,e00d) na (ItemDelimitationItem)"
            continue
        text = _fmt_value(elem)
        yield f"{pad}{tag} {elem.vr} {text:<40} # {length:>4}, {elem.vm} {name}"


def cmd_dump(args: argparse.Namespace) -> int:
    status = 0
    for path in args.files:
        try:
            ds = read(path, stop_before_pixels=args.stop_before_pixels)
            if len(args.files) > 1:
                print(f"# {path}")
            if ds.file_meta is not None:
                print("# Dicom-Meta-Information-Header")
                for line in dump_lines(ds.file_meta):
                    print(line)
                print()
            print("# Dicom-Data-Set")
            print(f"# Used TransferSyntax: {ds.transfer_syntax}")
            for line in dump_lines(ds):
                print(line)
        except (FastDicomError, OSError) as exc:
            print(f"fastdicom dump: {path}: {exc}", file=sys.stderr)
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
    p = sub.add_parser("dump", help="print the elements of DICOM files, like dcmdump")
    p.add_argument("files", nargs="+")
    p.add_argument("--stop-before-pixels", action="store_true")
    p.set_defaults(func=cmd_dump)
    p = sub.add_parser("scan", help="scan the headers of files or folders (a synthetic CT series when none given)")
    p.add_argument("paths", nargs="*")
    p.add_argument("--slices", type=int, default=300)
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=cmd_scan)
    p = sub.add_parser("backends", help="print the backend chosen for each capability and what is missing")
    p.set_defaults(func=cmd_backends)
    from .net import register
    from .transcode import register as register_transcode

    register(sub)
    register_transcode(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:
        return 0
