"""``fastdicom.read``: Part 10 files, raw data sets, bytes and file objects."""

from __future__ import annotations

import mmap
import os
import zlib
from typing import Any

from .. import _backends
from ..dictionary import uid as _uid
from ..errors import InvalidDicomError
from ._parse_py import read_fd
from .dataset import Dataset

#: Files up to this size are read into memory rather than mapped (a mapping
#: costs a system call and a page fault per touched page; copying a small file is cheaper).
MAP_THRESHOLD = 64 * 1024
#: First prefix read for ``stop_before_pixels`` (grown 4x until the header fits; most headers are 2-8 KiB).
PREFIX = 8 * 1024

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)  # O_BINARY exists on Windows only

#: Largest inflated size accepted for a deflated data set (bytes); see FASTDICOM_MAX_INFLATE.
MAX_INFLATE = int(os.environ.get("FASTDICOM_MAX_INFLATE", str(4 << 30)))


def _open(source: Any) -> tuple[Any, str | None]:
    """Return ``(buffer, filename)`` for any accepted source."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        fd = os.open(path, _OPEN_FLAGS)
        try:
            size = os.fstat(fd).st_size
            if size <= MAP_THRESHOLD:
                return memoryview(read_fd(fd, size)), path
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
    mod = _backends.resolve("parse", backend)[1]
    if stop_before_pixels and isinstance(source, (str, os.PathLike)):
        # Headers only: read a prefix instead of mapping the file; grow it until
        # parsing stops at Pixel Data or reaches the end of the file.
        path = os.fspath(source)
        size = PREFIX
        while True:
            data, complete = mod.read_prefix(path, size)
            try:
                ds = _from_opened(memoryview(data), path, True, mod, complete)
            except InvalidDicomError:
                if complete:
                    raise
            else:
                if complete or ds._stopped_before_pixels:
                    return ds
            size *= 4
    buf, filename = _open(source)
    return _from_opened(buf, filename, stop_before_pixels, mod, True)


def _from_opened(buf, filename, stop_before_pixels: bool, mod, complete: bool) -> Dataset:
    o = mod.open_dataset(buf, stop_before_pixels)
    little = o.little_endian
    src, pos, body = buf, o.body_start, o.body_table
    if o.deflated:
        if not complete:
            raise InvalidDicomError("deflated data set: the whole file is needed", None, pos)
        buf, pos = _inflate(buf, pos), 0
        body = mod.parse_dataset(buf, 0, len(buf), little, o.explicit_vr, stop_before_pixels)
    meta = o.meta_table
    # Positional: this runs once per file of a header scan.
    return Dataset._from_file(
        buf,
        body,
        pos,
        little,
        mod,
        stop_before_pixels,
        None if meta is None else (src, meta, o.meta_start, o.meta_end, mod),
        bytes(src[:128]) if o.preamble else None,
        filename,
        o.transfer_syntax or _detected_syntax(little, body.explicit_vr),
    )


def _detected_syntax(little: bool, explicit: bool) -> str:
    if not explicit:
        return _uid.ImplicitVRLittleEndian
    return _uid.ExplicitVRLittleEndian if little else _uid.ExplicitVRBigEndian


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
    if not d.eof:
        raise InvalidDicomError("deflated data set is cut short: its deflate stream does not end", None, len(buf))
    return memoryview(out)
