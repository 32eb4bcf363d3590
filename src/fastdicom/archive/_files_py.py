"""Pure-Python twin of ``fastdicom._rust.stage_create`` and ``sync_close`` (crate ``fastdicom-net``, ``staging``).

Same arguments and results: :func:`stage_create` makes
``<incoming>/<32 hex digits>.part`` (never an existing file) holding
``header`` and returns ``(fd, path)``; :func:`sync_close` fsyncs and closes
each descriptor it is handed and returns one errno per descriptor (0:
flushed; a negative or repeated one is left alone and answers EBADF). The
flushes run in parallel when the first one waited for a device.
"""

from __future__ import annotations

import errno
import os
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
#: A first flush slower than this (seconds) means a device is waited for: the rest go in parallel.
PARALLEL_AFTER = 50e-6
THREADS = 16


def stage_create(incoming: str, header: bytes) -> tuple[int, str]:
    last: OSError | None = None
    for _ in range(16):
        path = os.path.join(incoming, f"{uuid.uuid4().hex}.part")
        try:
            fd = os.open(path, _FLAGS, 0o666)
        except FileExistsError as exc:
            last = exc
            continue
        try:
            view = memoryview(header)
            while view:
                view = view[os.write(fd, view) :]
        except OSError:
            os.close(fd)
            os.unlink(path)
            raise
        return fd, path
    raise last or FileExistsError(errno.EEXIST, "no fresh name")


def _sync(fd: int) -> int:
    try:
        os.fsync(fd)
        return 0
    except OSError as exc:
        return exc.errno or errno.EIO
    finally:
        try:
            os.close(fd)
        except OSError:
            pass


def sync_close(fds: Sequence[int]) -> list[int]:
    seen: set[int] = set()
    valid: list[int] = []
    for fd in fds:
        if fd >= 0 and fd not in seen:
            seen.add(fd)
            valid.append(fd)
    results: dict[int, int] = {}
    if valid:
        t0 = time.perf_counter()
        results[valid[0]] = _sync(valid[0])
        rest = valid[1:]
        if len(rest) > 1 and time.perf_counter() - t0 > PARALLEL_AFTER:
            with ThreadPoolExecutor(max_workers=min(THREADS, len(rest))) as pool:
                results.update(zip(rest, pool.map(_sync, rest)))
        else:
            results.update((fd, _sync(fd)) for fd in rest)
    out = []
    for fd in fds:
        code = results.pop(fd, None)  # a repeated descriptor finds its result taken
        out.append(errno.EBADF if code is None else code)
    return out
