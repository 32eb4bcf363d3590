"""The header scan of ``test_bench_dataset.py`` as a plain script, for instruction counts (callgrind).

``python3 benchmarks/scan_once.py FOLDER [ROUNDS]`` reads every ``CT*.dcm`` of FOLDER
``ROUNDS`` more times after one warm-up scan; run it with ROUNDS 0 and 10 under
``valgrind --tool=callgrind`` and divide the difference by 10 x the number of files.
"""

from __future__ import annotations

import glob
import os
import sys

import fastdicom

TAGS = (0x00080018, 0x0020000E, 0x00200013, 0x00200032, 0x00281052)


def scan(paths: list[str]) -> list[tuple]:
    read = fastdicom.read
    out = []
    for p in paths:
        ds = read(p, stop_before_pixels=True)
        out.append(tuple(ds.get(t) for t in TAGS))
    return out


def main() -> None:
    paths = sorted(glob.glob(os.path.join(sys.argv[1], "CT*.dcm")))
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    scan(paths)
    for _ in range(rounds):
        scan(paths)


if __name__ == "__main__":
    main()
