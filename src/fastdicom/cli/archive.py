"""``fastdicom archive rebuild | verify | stats DIR``: the archive index from the command line."""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import contextmanager
from typing import Any


@contextmanager
def _progress(label: str, total: int | None, quiet: bool):
    """A rich progress bar on stderr (nothing when quiet); yields ``advance(n)``."""
    if quiet:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _open(path: str, checksum: str | None = None, create: bool = False):
    from ..archive import Archive

    kwargs: dict[str, Any] = {"create": create}
    if checksum:
        kwargs["checksum"] = checksum
    return Archive(path, **kwargs)


def cmd_rebuild(args: argparse.Namespace) -> int:
    import os

    from ..archive import Archive
    from ..dataset.scan import dicom_files

    if not os.path.isdir(args.dir):
        print(f"fastdicom archive rebuild: no folder {args.dir}", file=sys.stderr)
        return 2
    archive = Archive(args.dir, checksum=args.checksum)
    try:
        t0 = time.perf_counter()
        total = sum(1 for _ in dicom_files(archive.root))
        with _progress("rebuilding", total, args.quiet) as advance:
            counts = archive.rebuild(checksum=not args.no_checksum, threads=args.threads, progress=advance)
        dt = time.perf_counter() - t0
        unknown = " (checksums unknown: run verify)" if args.no_checksum else ""
        print(f"{counts['added']} indexed, {counts['failed']} not DICOM or without UIDs, {dt:.1f} s{unknown}")
        return 0 if counts["failed"] == 0 else 1
    finally:
        archive.close()


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        archive = _open(args.dir)
    except FileNotFoundError as exc:
        print(f"fastdicom archive verify: {exc}", file=sys.stderr)
        return 2
    try:
        differences = 0
        total = archive.stats()["instance"]
        with _progress("verifying", total, args.quiet) as advance:
            for d in archive.verify(fill=not args.no_fill, threads=args.threads, progress=advance):
                differences += 1
                uid = f" {d.sop_instance_uid}" if d.sop_instance_uid else ""
                print(f"{d.kind}: {d.path}{uid}: {d.detail}", flush=True)
        print(f"{total} instances checked, {differences} differences", file=sys.stderr)
        return 0 if differences == 0 else 1
    finally:
        archive.close()


def cmd_stats(args: argparse.Namespace) -> int:
    try:
        archive = _open(args.dir)
    except FileNotFoundError as exc:
        print(f"fastdicom archive stats: {exc}", file=sys.stderr)
        return 2
    try:
        stats = archive.stats()
    finally:
        archive.close()
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"archive {stats['root']}")
    table.add_column("what")
    table.add_column("count", justify="right")
    for key in ("patient", "study", "series", "instance", "bytes", "unknown_checksums", "pending", "index_bytes"):
        table.add_row(key.replace("_", " "), f"{stats[key]:,}")
    table.add_row("checksum", str(stats["checksum_algorithm"]))
    Console().print(table)
    return 0


def register(sub) -> None:
    p = sub.add_parser("archive", help="the archive index: rebuild, verify, stats")
    asub = p.add_subparsers(dest="archive_command", required=True)
    r = asub.add_parser("rebuild", help="index every file of the archive folder again (headers on every core)")
    r.add_argument("dir")
    r.add_argument("--checksum", choices=["xxh3", "sha256", "md5"], default="xxh3")
    r.add_argument("--no-checksum", action="store_true", help="do not read whole files: checksums left unknown")
    r.add_argument("--threads", type=int, default=None)
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_rebuild)
    v = asub.add_parser("verify", help="compare index and files (presence, size, checksum); fill unknown checksums")
    v.add_argument("dir")
    v.add_argument("--no-fill", action="store_true", help="do not write the checksums found unknown")
    v.add_argument("--threads", type=int, default=None)
    v.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    v.set_defaults(func=cmd_verify)
    s = asub.add_parser("stats", help="counts of the archive index")
    s.add_argument("dir")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_stats)
