"""The disk's own limit for the durable store path: write, fsync, rename, fsync the folder, nothing else.

:func:`probe` does to the same files what ``fastdicom serve`` (durability
``fsync``) does to the objects it receives, minus the network and DICOM:
each file is created in ``.incoming``, written in one go, fsynced, renamed
into ``<study>/<series>/`` and that folder fsynced, by ``concurrency``
threads at once (one per association). The durable server's rate over the
probe's says how much of the disk's limit it reaches (issue 13 asks 85 %).

Run alone: ``python3 benchmarks/disk_probe.py FOLDER_OF_DCM [--jobs 4] [--dir /tmp]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence


def probe(paths: Sequence[str], root: str, concurrency: int = 4) -> float:
    """Seconds to write ``paths``' bytes durably under ``root`` (which is emptied first) with ``concurrency``
    threads; every file is checked afterwards (size) so that a probe that skipped work cannot pass."""
    blobs = [open(p, "rb").read() for p in paths]  # read first: the server gets its bytes from the network
    shutil.rmtree(root, ignore_errors=True)
    incoming = os.path.join(root, ".incoming")
    folder = os.path.join(root, "1.2.3", "1.2.3.4")
    os.makedirs(incoming)
    os.makedirs(folder)
    todo = iter(range(len(blobs)))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            while True:
                with lock:
                    k = next(todo, None)
                if k is None:
                    return
                tmp = os.path.join(incoming, f"{uuid.uuid4().hex}.part")
                with open(tmp, "xb", buffering=1 << 20) as f:
                    f.write(blobs[k])
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, os.path.join(folder, f"{k}.dcm"))
                os.fsync(dir_fd)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            os.close(dir_fd)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    if errors:
        raise errors[0]
    for k, blob in enumerate(blobs):
        assert os.path.getsize(os.path.join(folder, f"{k}.dcm")) == len(blob)
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", help="a folder of .dcm files")
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--dir", default=None, help="where to write (default: a temporary folder)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    paths = sorted(os.path.join(args.folder, f) for f in os.listdir(args.folder) if f.endswith(".dcm"))
    root = tempfile.mkdtemp(prefix="fastdicom-probe-", dir=args.dir)
    try:
        times = sorted(probe(paths, root, args.jobs) for _ in range(args.rounds))
        size = sum(os.path.getsize(p) for p in paths)
        med = times[len(times) // 2]
        print(
            f"{len(paths)} files, {size / 1e6:.1f} MB, {args.jobs} threads: median {med:.2f} s, "
            f"{len(paths) / med:,.0f} files/s, {size / 1e6 / med:,.1f} MB/s"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
