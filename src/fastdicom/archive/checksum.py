"""Checksums of stored files: xxh3-128 by default, sha256 or md5 for archives that must match an external record.

A :func:`hasher` is fed the bytes of a file as they are written (the Storage
SCP's File Meta, then each received fragment), so the stored checksum costs
no second read; :func:`checksum_file` re-reads a file (verification, rebuild,
Storage Commitment). The digest is lower-case hex.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Protocol

ALGORITHMS = ("xxh3", "sha256", "md5")
_CHUNK = 1 << 20


class Hasher(Protocol):
    def update(self, data: Any, /) -> None: ...

    def hexdigest(self) -> str: ...


def hasher(algorithm: str) -> Hasher:
    """A new incremental hasher for ``algorithm`` (``xxh3`` is xxh3-128)."""
    if algorithm == "xxh3":
        return _xxh3()
    if algorithm in ("sha256", "md5"):
        return hashlib.new(algorithm)
    raise ValueError(f"unknown checksum algorithm {algorithm!r}: one of {', '.join(ALGORITHMS)}")


def _xxh3() -> Hasher:
    """xxh3-128 from the registry: ``fastdicom._rust.Xxh3`` (which the native data plane can feed while it
    receives) or its twin, the ``xxhash`` package's ``xxh3_128``."""
    from .. import _backends

    name, module = _backends.resolve("xxh3")
    attr = next(a for n, _m, a in _backends.REGISTRY["xxh3"] if n == name)
    return getattr(module, attr)()


def checksum_file(path: str | os.PathLike, algorithm: str = "xxh3") -> str:
    """Read the whole file and return its checksum."""
    h = hasher(algorithm)
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(_CHUNK)
        view = memoryview(buf)
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(view[:n])
    return h.hexdigest()
