"""The one exception hierarchy, shared by every backend."""

from __future__ import annotations


class FastDicomError(Exception):
    """Base class of every error fastdicom raises on purpose."""


class InvalidDicomError(FastDicomError, ValueError):
    """The input is not valid DICOM (truncated, lying lengths, garbage...).

    Parameters
    ----------
    message : str
        What is wrong.
    tag : int, optional
        The tag of the element being read, when known.
    offset : int, optional
        The byte offset in the buffer where the problem was found.
    """

    def __init__(self, message: str, tag: int | None = None, offset: int | None = None) -> None:
        self.message = message
        self.tag = tag
        self.offset = offset
        text = message
        where = []
        if tag is not None:
            where.append(f"tag ({tag >> 16:04X},{tag & 0xFFFF:04X})")
        if offset is not None:
            where.append(f"at offset {offset}")
        if where:
            text = f"{message} ({' '.join(where)})"
        super().__init__(text)

    def __reduce__(self):  # keep pickling (multiprocessing) working
        return (type(self), (self.message, self.tag, self.offset))


class BackendError(FastDicomError, ImportError):
    """A required native backend is missing, stale, or was asked for and is absent."""
