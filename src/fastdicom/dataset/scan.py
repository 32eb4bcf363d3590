"""The header scanner: read the headers of many files on a thread pool (stopping before the pixels).

One scan serves every index built from files: the archive's (``fastdicom
archive rebuild``, :meth:`fastdicom.Archive.add`) and the Parquet index of
the AI tools. For each path, in order, a :class:`ScanResult` gives the header
(a :class:`~fastdicom.Dataset`), the requested ``keys`` as decoded values,
the file size and, with ``checksum``, the checksum of the whole file (read
once more, on the same thread). Errors are reported per file, never raised.
The parser releases the GIL, so the threads read and parse in parallel.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

from ..errors import FastDicomError
from .read import read


class ScanResult(NamedTuple):
    """One scanned file: its path, header (None on error), the requested values, size, checksum, error."""

    path: str
    dataset: Any
    values: dict[str, Any]
    size: int
    checksum: str | None
    error: str | None


def _scan_one(path: str, keys: Sequence[Any], checksum: str | None, keep: bool) -> ScanResult:
    try:
        size = os.path.getsize(path)
        ds = read(path, stop_before_pixels=True)
        values = {str(k): ds.get(k) for k in keys}
        digest = None
        if checksum is not None:
            from ..archive.checksum import checksum_file

            digest = checksum_file(path, checksum)
        return ScanResult(path, ds if keep else None, values, size, digest, None)
    except (FastDicomError, OSError, ValueError) as exc:
        return ScanResult(path, None, {}, 0, None, f"{type(exc).__name__}: {exc}")


def scan_headers(
    paths: Iterable[str | os.PathLike],
    *,
    keys: Iterable[Any] = (),
    checksum: str | None = None,
    threads: int | None = None,
    keep_dataset: bool = True,
) -> Iterator[ScanResult]:
    """Scan the headers of ``paths`` in parallel; results in the order of the paths (a bounded window of work
    in flight, so millions of paths take flat memory). ``keys``: keywords or tags whose values to return;
    ``checksum``: an algorithm of :mod:`fastdicom.archive.checksum` to checksum each whole file."""
    wanted = tuple(keys)
    workers = threads or min(32, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fastdicom-scan") as pool:
        window: deque[Future[ScanResult]] = deque()
        for p in paths:
            window.append(pool.submit(_scan_one, os.fspath(p), wanted, checksum, keep_dataset))
            if len(window) >= workers * 4:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


def dicom_files(root: str, *, skip_hidden: bool = True) -> Iterator[str]:
    """Every regular file under ``root`` (folders whose name starts with a dot skipped), sorted per folder."""
    for folder, dirs, files in os.walk(root):
        if skip_hidden:
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        else:
            dirs.sort()
        for name in sorted(files):
            if not (skip_hidden and name.startswith(".")):
                yield os.path.join(folder, name)
