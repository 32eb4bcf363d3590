"""``fastdicom transcode IN... --to UID|NAME -o DIR -j N``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def _inputs(paths: list[str]) -> list[tuple[str, str]]:
    """(path, name relative to its input folder) of every file."""
    out = []
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                out += [(os.path.join(root, f), os.path.relpath(os.path.join(root, f), p)) for f in sorted(files)]
        else:
            out.append((p, os.path.basename(p)))
    return out


def cmd_transcode(args: argparse.Namespace) -> int:
    from ..dataset.read import read
    from ..dataset.write import write
    from ..errors import FastDicomError
    from ..transcode import syntax_uid, transcode

    try:
        target = syntax_uid(args.to)
    except ValueError as exc:
        print(f"fastdicom transcode: {exc}", file=sys.stderr)
        return 2
    files = _inputs(args.inputs)
    os.makedirs(args.output, exist_ok=True)

    jobs = args.jobs or os.cpu_count() or 1
    # Files in parallel, or one file's frames over the cores: not both (no pools inside pools).
    frame_threads = 1 if len(files) > 1 and jobs > 1 else None

    def one(item: tuple[str, str]) -> str | None:
        src, rel = item
        try:
            out = transcode(
                read(src), target, ratio=args.ratio, near=args.near, quality=args.quality, threads=frame_threads
            )
            dst = os.path.join(args.output, rel)
            os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
            write(dst, out)
            return None
        except (FastDicomError, OSError, ValueError, NotImplementedError) as exc:
            return f"{src}: {exc}"

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        errors = [e for e in pool.map(one, files) if e]
    dt = time.perf_counter() - t0
    for e in errors[:20]:
        print(f"fastdicom transcode: {e}", file=sys.stderr)
    print(f"{len(files) - len(errors)} of {len(files)} files written as {target} to {args.output} in {dt:.2f} s")
    return 1 if errors else 0


def register(sub) -> None:
    p = sub.add_parser("transcode", help="write files again in another transfer syntax")
    p.add_argument("inputs", nargs="+", help="files or folders")
    p.add_argument(
        "--to",
        required=True,
        help="UID, keyword (ExplicitVRLittleEndian) or explicit/implicit/big/deflated/rle/j2k/j2k-lossy/jls/jls-near/jpeg/jpeg-lossless/"
        "htj2k/htj2k-rpcl/htj2k-lossy",
    )
    p.add_argument(
        "--ratio", type=float, default=10.0, help="compression ratio of lossy JPEG 2000 and HTJ2K (default 10)"
    )
    p.add_argument("--near", type=int, default=2, help="largest error per sample of near-lossless JPEG-LS (default 2)")
    p.add_argument("--quality", type=int, default=90, help="quality of JPEG Baseline, 1 to 100 (default 90)")
    p.add_argument("-o", "--output", required=True, help="output folder (folder structure kept)")
    p.add_argument("-j", "--jobs", type=int, default=None, help="threads (default: the cores)")
    p.set_defaults(func=cmd_transcode)
