"""Durable file operations: what makes a write survive a crash (fsync of the file, rename, fsync of the folder).

A file is durable once its data is flushed (``fsync``) and its name is too:
a rename or a new entry lives in the folder, which is flushed separately
(``fsync`` of the folder). Failures propagate: nothing is durable then.
Used by the archive (:mod:`fastdicom.archive.folder`) and by
:func:`fastdicom.write` for paths.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from typing import Any


def fsync_dir(path: str) -> None:
    """fsync a folder (its entries: a rename or a new sub-folder)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(root: str, *parts: str, sync: bool = True) -> str:
    """Create ``root/parts...`` (``root`` exists) and fsync the parent of every folder created (unless not
    ``sync``); the path."""
    path = root
    for part in parts:
        child = os.path.join(path, part)
        if not os.path.isdir(child):
            with contextlib.suppress(FileExistsError):
                os.mkdir(child)
            if sync:
                fsync_dir(path)
        path = child
    return path


def write_atomic(path: str, chunks: Iterable[Any]) -> None:
    """Write ``chunks`` to ``path`` so that it holds either its old content or all of the new, durably.

    A temporary file in the same folder is written, fsynced, renamed over
    ``path``, and the folder fsynced; on any failure the temporary file goes.
    """
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".fastdicom-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            for c in chunks:
                f.write(c)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(folder)
