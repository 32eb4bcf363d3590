"""``fastdicom.read``: Part 10 files, raw data sets, bytes and file objects."""

from __future__ import annotations

import mmap
import os
import struct
import zlib
from typing import Any

from .. import _backends
from ..dictionary import uid as _uid
from ..errors import InvalidDicomError
from .dataset import Dataset

#: Files up to this size are read into memory rather than mapped (a mapping
#: costs a system call and a page fault per touched page; copying a small file is cheaper).
MAP_THRESHOLD = 64 * 1024
#: First prefix read for ``stop_before_pixels`` (grown 4x until the header fits).
PREFIX = 16 * 1024

#: Largest inflated size accepted for a deflated data set (bytes); see FASTDICOM_MAX_INFLATE.
MAX_INFLATE = int(os.environ.get("FASTDICOM_MAX_INFLATE", str(4 << 30)))


def _open(source: Any) -> tuple[Any, str | None]:
    """Return ``(buffer, filename)`` for any accepted source."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            size = os.fstat(fd).st_size
            if size <= MAP_THRESHOLD:
                return memoryview(_read_fd(fd, size)), path
            try:
                m = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError):  # not mappable (a pipe, some file systems)
                with open(fd, "rb", closefd=False) as f:
                    return memoryview(f.read()), path
        finally:
            os.close(fd)
        return memoryview(m), path
    if isinstance(source, memoryview):
        return (source if source.format == "B" and source.ndim == 1 else source.cast("B")), None
    if isinstance(source, (bytes, bytearray, mmap.mmap)):
        return memoryview(source), None
    read = getattr(source, "read", None)
    if read is not None:
        data = read()
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError("file object must be opened in binary mode")
        return memoryview(data), getattr(source, "name", None)
    raise TypeError(f"cannot read DICOM from {type(source).__name__}")


def _read_fd(fd: int, size: int) -> bytes:
    chunks = []
    left = size
    while left > 0:
        chunk = os.read(fd, left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _read_prefix(path: str, size: int) -> tuple[bytes, bool]:
    """The first ``size`` bytes of a file, and whether that is the whole file."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        data = _read_fd(fd, size + 1)
    finally:
        os.close(fd)
    if len(data) > size:
        return data[:size], False
    return data, True


def _looks_little(buf, pos: int) -> bool:
    """Guess byte order from the first tag's group (small groups come first)."""
    if len(buf) - pos < 2:
        return True
    le = buf[pos] | buf[pos + 1] << 8
    be = buf[pos] << 8 | buf[pos + 1]
    return not (le > 0xFF and be <= 0xFF)


def _looks_explicit(buf, pos: int) -> bool:
    if len(buf) - pos < 6:
        return True
    return 0x41 <= buf[pos + 4] <= 0x5A and 0x41 <= buf[pos + 5] <= 0x5A


def _meta_end(buf, pos: int) -> int:
    """Offset just past the File Meta group (group 0002), found element by element."""
    n = len(buf)
    while n - pos >= 8:
        group = buf[pos] | buf[pos + 1] << 8
        if group != 0x0002:
            break
        if _looks_explicit(buf, pos):
            vr = bytes(buf[pos + 4 : pos + 6])
            if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT", b"UC", b"UR", b"OD", b"OF", b"OL", b"OV", b"SV", b"UV"):
                if n - pos < 12:
                    break
                length = struct.unpack_from("<L", buf, pos + 8)[0]
                pos += 12
            else:
                length = struct.unpack_from("<H", buf, pos + 6)[0]
                pos += 8
        else:
            length = struct.unpack_from("<L", buf, pos + 4)[0]
            pos += 8
        if length == 0xFFFFFFFF or length > n - pos:
            raise InvalidDicomError("File Meta element length goes past the end of the file", None, pos)
        pos += length
    return pos


def read(source: Any, *, stop_before_pixels: bool = False, backend: str | None = None) -> Dataset:
    """Read a DICOM data set.

    Parameters
    ----------
    source : str, os.PathLike, bytes, bytearray, memoryview or binary file object
        A path is memory-mapped: values are views into the mapping and
        nothing is copied until asked for. Part 10 files with or without
        preamble, raw data sets without File Meta (encoding detected), and
        DICOMDIR files are accepted.
    stop_before_pixels : bool
        Stop at the top-level Pixel Data (or Float/Double Float Pixel Data).
    backend : str, optional
        ``"rust"`` or ``"python"``; by default the registry's choice.

    Returns
    -------
    Dataset

    Raises
    ------
    fastdicom.errors.InvalidDicomError
        Truncated or malformed input; the message names the tag and offset.

    Examples
    --------
    >>> ds = fastdicom.read("CT_small.dcm")  # doctest: +SKIP
    >>> ds.PatientName  # doctest: +SKIP
    'CompressedSamples^CT1'
    """
    if stop_before_pixels and isinstance(source, (str, os.PathLike)):
        # Headers only: read a prefix instead of mapping the file; grow it until
        # parsing stops at Pixel Data or reaches the end of the file.
        path = os.fspath(source)
        size = PREFIX
        while True:
            data, complete = _read_prefix(path, size)
            try:
                ds = _read_buffer(memoryview(data), path, True, backend, complete)
            except InvalidDicomError:
                if complete:
                    raise
            else:
                if complete or ds._stopped_before_pixels:
                    return ds
            size *= 4
    buf, filename = _open(source)
    return _read_buffer(buf, filename, stop_before_pixels, backend, True)


def _read_buffer(buf, filename, stop_before_pixels: bool, backend: str | None, complete: bool) -> Dataset:
    mod = _backends.resolve("parse", backend)[1]
    n = len(buf)
    head = bytes(buf[:160])  # comparisons on bytes: memoryview == bytes is slow
    pos = 0
    preamble = None
    if head[128:132] == b"DICM":
        preamble = head[:128]
        pos = 132
    elif head[:4] == b"DICM":
        pos = 4

    file_meta = None
    ts = None
    if head[pos : pos + 2] == b"\x02\x00" and n - pos >= 8:
        end = None
        # Fast path: (0002,0000) File Meta Information Group Length, explicit VR LE.
        if head[pos : pos + 6] == b"\x02\x00\x00\x00UL" and n - pos >= 12:
            glen = int.from_bytes(head[pos + 8 : pos + 12], "little")
            cand = pos + 12 + glen
            if cand <= n and (n - cand < 2 or bytes(buf[cand : cand + 2]) != b"\x02\x00"):
                end = cand
        if end is None:
            end = _meta_end(buf, pos)
        file_meta = Dataset._from_buffer(buf, pos, end, True, True, mod)
        ts = file_meta.get(0x00020010)
        if isinstance(ts, list):
            ts = ts[0] if ts else None
        pos = end
    elif preamble is None and n >= 8 and not _plausible_dataset(buf, pos):
        raise InvalidDicomError("not a DICOM file: no preamble, no File Meta, no plausible data set", None, 0)

    if ts:
        little, explicit, deflated = _uid.encoding_of(ts)
    else:
        little, explicit, deflated = _looks_little(buf, pos), _looks_explicit(buf, pos), False

    if deflated:
        if not complete:
            raise InvalidDicomError("deflated data set: the whole file is needed", None, pos)
        buf, pos = _inflate(buf, pos), 0

    ds = Dataset._from_buffer(buf, pos, len(buf), little, explicit, mod, stop_before_pixels=stop_before_pixels)
    ds.file_meta = file_meta
    ds.preamble = preamble
    ds.filename = filename
    ds._transfer_syntax = ts or _detected_syntax(little, ds._explicit)
    return ds


def _detected_syntax(little: bool, explicit: bool) -> str:
    if not explicit:
        return _uid.IMPLICIT_VR_LITTLE_ENDIAN
    return _uid.EXPLICIT_VR_LITTLE_ENDIAN if little else _uid.EXPLICIT_VR_BIG_ENDIAN


def _plausible_dataset(buf, pos: int) -> bool:
    """A raw data set starts with a small group number in either byte order."""
    le = buf[pos] | buf[pos + 1] << 8
    be = buf[pos] << 8 | buf[pos + 1]
    return min(le, be) <= 0x0FFF and le != 0xFFFE and be != 0xFFFE


def _inflate(buf, pos: int) -> memoryview:
    d = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        out = d.decompress(buf[pos:], MAX_INFLATE)
    except zlib.error as exc:
        raise InvalidDicomError(f"deflated data set does not inflate: {exc}", None, pos) from None
    if d.unconsumed_tail:
        raise InvalidDicomError(
            f"deflated data set inflates past {MAX_INFLATE} bytes (FASTDICOM_MAX_INFLATE)", None, pos
        )
    return memoryview(out)
