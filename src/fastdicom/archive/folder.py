"""The folder archive: stage an object into ``.incoming``, then commit it durably, alone or in a batch.

An object arrives as a :class:`Staged` file, ``<root>/.incoming/<random>.part``,
written as its bytes come (whoever writes it first writes its File Meta: a
Storage SCP writes one for a data set received over DIMSE, a STOW-RS part
brings its own). :meth:`FolderArchive.commit` makes it durable: the file is
flushed and fsynced, its header is read back to check the UIDs (and to find
the study and series), it is renamed atomically to
``<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm`` and the
folder is fsynced; only then is the outcome :attr:`Reason.STORED`.
:meth:`FolderArchive.commit_batch` does the same for many objects with a few
flushes: the files are fsynced in parallel, checked and renamed in order, and
each folder touched is fsynced once; every outcome is settled (a folder whose
fsync fails fails its objects) before the batch returns. Anything that fails
removes the staged file: no partial object is ever left where a reader would
find it. A process killed outright leaves ``.part`` files in ``.incoming``;
:meth:`FolderArchive.sweep` removes them (never answered with success).

UIDs become path components only after they pass :func:`safe_uid` (digits and
dots, at most 64 characters), so a hostile object cannot escape the archive.

Durability: ``"fsync"`` (the default) is the above: success only once the
file and its folder entry are on the disk. ``"os"`` leaves both to the page
cache (no fsync of file or folder; what DCMTK's storescp and pynetdicom do):
the rename is still atomic, so no partial file is ever visible, but an
object answered with success can be lost, or its name be, if the machine
crashes or loses power in the seconds that follow. It is not crash-safe.

Duplicates (the same SOP Instance UID again): ``"overwrite"`` (the default:
the new copy replaces the old one atomically, so a re-send after a doubtful
failure always leaves the latest object), ``"keep"`` (the stored copy stays;
:attr:`Reason.DUPLICATE_KEPT`) or ``"reject"`` (:attr:`Reason.DUPLICATE_REFUSED`).

:class:`DiscardArchive` checks and drops objects instead (``fastdicom serve
--sink``: measuring a sender without the disk).

There is no DIMSE here: the storage service maps each :class:`Reason` to a
C-STORE status, and an HTTP front end would map it to its codes.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from .. import _backends
from ..dataset.read import read
from ..errors import FastDicomError
from .checksum import Hasher, checksum_file, hasher
from .durable import fsync_dir, make_dirs

if TYPE_CHECKING:
    from .index import Entry, Index

log = logging.getLogger("fastdicom.archive")

_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
DUPLICATE_POLICIES = ("overwrite", "keep", "reject")
#: ``"fsync"``: durable before success (the default); ``"os"``: the page cache only (not crash-safe).
DURABILITY_MODES = ("fsync", "os")


def safe_uid(uid: Any) -> bool:
    """Whether ``uid`` may name a file or folder: digits and dots, at most 64 characters (nothing else, no newline)."""
    return isinstance(uid, str) and 0 < len(uid) <= 64 and _UID.fullmatch(uid) is not None


class Reason(enum.Enum):
    """Why an object was, or was not, committed."""

    STORED = "stored"
    #: The same SOP Instance was stored already and the policy keeps that copy (the new one is dropped).
    DUPLICATE_KEPT = "duplicate kept"
    #: The same SOP Instance was stored already and the policy refuses another.
    DUPLICATE_REFUSED = "duplicate refused"
    #: The SOP Class or Instance UID it was announced with cannot name a file.
    INVALID_UID = "invalid UID"
    #: Its SOP Class or Instance UID differ from the ones it was announced with.
    MISMATCH = "mismatch"
    #: No valid Study or Series Instance UID to file it under.
    NO_STUDY_OR_SERIES = "no study or series"
    #: It does not parse (or is empty).
    UNREADABLE = "unreadable"
    #: The disk said no: full, no descriptors, a folder gone, a failed fsync.
    OUT_OF_RESOURCES = "out of resources"


@dataclass
class Outcome:
    """What became of one object: the reason, why in words, where it is stored, its data bytes."""

    reason: Reason
    detail: str = ""
    path: str | None = None
    bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.reason is Reason.STORED or self.reason is Reason.DUPLICATE_KEPT


class Staged:
    """One object being received into a temporary file (a :class:`~fastdicom.net.dataplane.DataSink`).

    The file is created and its header written in one call, and flushed and
    closed with the rest of its batch in another (the ``staging`` capability:
    Rust, GIL released, or its twin :mod:`fastdicom.archive._files_py`): an SCP
    thread does not give up the interpreter lock once per system call. A disk
    error (full, no descriptors, folder gone) is remembered, the rest drained,
    and the commit answers :attr:`Reason.OUT_OF_RESOURCES`.
    """

    def __init__(
        self, incoming: str, header: bytes = b"", checksum: Hasher | None = None, *, sync: bool = True
    ) -> None:
        self.path = ""
        #: fsync when flushed (False: ``durability="os"``, the page cache only).
        self.sync = sync
        #: Bytes received after the header.
        self.bytes = 0
        self.header_bytes = len(header)
        self.error: OSError | None = None
        #: The checksum of what was written, fed as it is written (None: computed at the commit by reading).
        self.hasher = checksum
        #: The open descriptor (-1 once flushed, closed or failed).
        self.fd = -1
        try:
            self.fd, self.path = _staging().stage_create(incoming, header)
            if checksum is not None:
                checksum.update(header)
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        self.error = exc
        self.discard()

    def write(self, view: memoryview) -> None:
        self.bytes += len(view)
        if self.error is None and self.fd >= 0:
            try:
                while view:
                    if self.hasher is not None:
                        n = os.write(self.fd, view)
                        self.hasher.update(view[:n])
                        view = view[n:]
                    else:
                        view = view[os.write(self.fd, view) :]
            except OSError as exc:
                self._fail(exc)

    def data_plane_fd(self) -> int:
        """The descriptor the data plane appends to (-1 after an error: drain)."""
        return self.fd if self.error is None else -1

    def data_plane_hasher(self, plane: Any) -> Any:
        """The hasher the data plane feeds what it writes (None: none, or one ``plane`` cannot feed, in which
        case the commit reads the file for its checksum)."""
        if self.hasher is not None and not plane.takes(self.hasher):
            self.hasher = None
        return self.hasher

    def data_plane_done(self, received: int, errno: int) -> None:
        """The data plane received ``received`` bytes; ``errno`` is its first write error (0: none)."""
        self.bytes += received
        if errno and self.error is None:
            self._fail(OSError(errno, os.strerror(errno)))

    def finish(self) -> None:
        """fsync (unless not ``sync``) and close (the first error, from receiving or from this, is raised)."""
        result = _flush_all([self])[0]
        if isinstance(result, BaseException):
            raise result

    def _flushed(self, errno: int) -> None:
        """:func:`_flush_all` fsynced and closed the file (``errno``: 0, or why the flush failed)."""
        self.fd = -1
        if errno:
            self.error = OSError(errno, os.strerror(errno))

    def discard(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1
        if self.path:
            with contextlib.suppress(OSError):
                os.unlink(self.path)


def _staging() -> Any:
    return _backends.resolve("staging")[1]


def _flush_all(staged: Sequence[Staged]) -> list[bool | BaseException]:
    """fsync and close the files of ``staged`` in one call; for each, True or the error it had or got."""
    open_ = [s for s in staged if s.error is None and s.fd >= 0 and s.sync]
    if open_:
        for s, errno in zip(open_, _staging().sync_close([s.fd for s in open_])):
            s._flushed(errno)
    for s in staged:  # durability "os": closed, not fsynced
        if s.error is None and s.fd >= 0:
            try:
                os.close(s.fd)
                s._flushed(0)
            except OSError as exc:
                s._flushed(exc.errno or 5)
    return [True if s.error is None else s.error for s in staged]


class Counted:
    """A staged object of :class:`DiscardArchive`: counted and dropped."""

    error: OSError | None = None

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, view: memoryview) -> None:
        self.bytes += len(view)

    def data_plane_fd(self) -> int:
        return -1

    def data_plane_done(self, received: int, errno: int) -> None:
        self.bytes += received

    def discard(self) -> None:
        pass


def _oserror(exc: OSError) -> Outcome:
    return Outcome(Reason.OUT_OF_RESOURCES, f"cannot store: {exc.strerror or exc}")


class FolderArchive:
    """Objects as files under ``root``, by study and series; see the module docstring."""

    #: What it stages is a file: a received data set needs its File Meta written first.
    needs_header = True

    def __init__(
        self,
        root: str,
        *,
        duplicates: str = "overwrite",
        index: Index | None = None,
        checksum: str | None = None,
        durability: str = "fsync",
    ) -> None:
        if duplicates not in DUPLICATE_POLICIES:
            raise ValueError("duplicates must be 'overwrite', 'keep' or 'reject'")
        if durability not in DURABILITY_MODES:
            raise ValueError("durability must be 'fsync' or 'os'")
        if checksum is not None:
            hasher(checksum)  # a known algorithm
        self.root = os.path.abspath(root)
        self.incoming = os.path.join(self.root, ".incoming")
        self.duplicates = duplicates
        #: The archive index written with each commit (:class:`~fastdicom.archive.index.Index`), or None.
        self.index = index
        #: The checksum algorithm of stored files (None: none computed).
        self.checksum = checksum
        self.durability = durability
        self._sync = durability == "fsync"
        os.makedirs(self.incoming, exist_ok=True)
        self._closed = False
        self._lock = threading.Lock()  # one re-creation of .incoming at a time
        #: Study/series folders known to exist (made and fsynced by this archive): no stat per object.
        self._folders: set[str] = set()

    def sweep(self) -> None:
        """Remove the staged files a killed process left behind (they were never committed)."""
        try:
            names = os.listdir(self.incoming)
        except FileNotFoundError:
            return
        for name in names:
            if name.endswith(".part"):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(self.incoming, name))

    def _hasher(self) -> Hasher | None:
        return hasher(self.checksum) if self.checksum else None

    def stage(self, header: bytes = b"") -> Staged:
        """A new staged object; ``header`` goes first (a received data set's File Meta).

        When ``.incoming`` (or the whole archive folder) has vanished, say removed by hand while the server
        ran, it is made again (a WARNING) and the object goes there; when that fails too, the object
        fails (its commit answers out of resources) and the cause is logged at ERROR."""
        staged = Staged(self.incoming, header, self._hasher(), sync=self._sync)
        if isinstance(staged.error, FileNotFoundError) and not os.path.isdir(self.incoming):
            with self._lock:
                try:
                    os.makedirs(self.incoming, exist_ok=True)
                except OSError as exc:
                    log.error("cannot make the archive's staging folder %s again: %s", self.incoming, exc)
                    staged.error = exc  # the cause the answer gives (read-only, no space...)
                    return staged
                log.warning("the archive's staging folder %s had vanished: made again", self.incoming)
            staged = Staged(self.incoming, header, self._hasher(), sync=self._sync)
        return staged

    def commit(self, staged: Staged, sop_class: str | None = None, sop_instance: str | None = None) -> Outcome:
        """Make one object durable (see the module docstring). ``sop_class``, ``sop_instance``: what it was
        announced as (checked against the data set); None takes what the data set says."""
        return self.commit_batch([(staged, sop_class, sop_instance)])[0]

    def commit_batch(self, batch: Sequence[tuple[Any, str | None, str | None]]) -> list[Outcome]:
        """:meth:`commit` for many objects with a few flushes: fsyncs in parallel, checks and renames in order,
        one fsync per folder; every outcome is final when this returns."""
        flushed: list[bool | BaseException] = [False] * len(batch)
        if len(batch) > 1:
            flushed = _flush_all([staged for staged, _, _ in batch])
        folders: set[str] = set()
        checked = [
            self._check(staged, sop_class, sop_instance, flushed[k])
            for k, (staged, sop_class, sop_instance) in enumerate(batch)
        ]
        index = self.index
        ready = [c for c in checked if isinstance(c, _Ready)]
        if index is None or not ready:
            return self._settle([c if isinstance(c, Outcome) else self._rename(c, folders) for c in checked], folders)
        # The index: pending rows before the renames (an intent log), the entity rows after the folder fsyncs.
        entries = {id(r): self._entry(r) for r in ready}
        try:
            pending = index.intend(list(entries.values()))
        except Exception as exc:  # noqa: BLE001 - the index cannot be written: nothing is renamed
            log.error("archive index %s cannot be written: %s", index.path, exc)
            for r in ready:
                r.staged.discard()
            return [Outcome(Reason.OUT_OF_RESOURCES, f"index: {exc}") if isinstance(c, _Ready) else c for c in checked]
        outcomes = self._settle([c if isinstance(c, Outcome) else self._rename(c, folders) for c in checked], folders)
        stored = [
            entries[id(c)] for c, o in zip(checked, outcomes) if isinstance(c, _Ready) and o.reason is Reason.STORED
        ]
        try:
            index.record(stored, pending)
        except Exception as exc:  # noqa: BLE001 - durable but not indexed: its pending row is reconciled at start-up
            log.error(
                "archive index %s: %d stored objects not indexed (reconciled at the next start): %s",
                index.path,
                len(stored),
                exc,
            )
            return [
                Outcome(Reason.OUT_OF_RESOURCES, f"index: {exc}") if o.reason is Reason.STORED else o for o in outcomes
            ]
        return outcomes

    def _entry(self, r: _Ready) -> Entry:
        from .index import Entry

        return Entry(
            r.dataset,
            r.staged.path,
            r.final,
            r.staged.header_bytes + r.staged.bytes,
            r.checksum,
            self.checksum or "",
            str(r.dataset.transfer_syntax or ""),
        )

    def _settle(self, outcomes: list[Outcome], folders: set[str]) -> list[Outcome]:
        """fsync each folder that got a new entry; an object in a folder that fails is not durable: it fails."""
        failed: dict[str, OSError] = {}
        for folder in sorted(folders) if self._sync else ():
            try:
                fsync_dir(folder)
            except OSError as exc:
                failed[folder] = exc
        if not failed:
            return outcomes
        return [
            _oserror(failed[os.path.dirname(o.path)]) if o.path and os.path.dirname(o.path) in failed else o
            for o in outcomes
        ]

    def _check(
        self,
        staged: Staged,
        sop_class: str | None,
        sop_instance: str | None,
        flushed: bool | BaseException,
    ) -> Outcome | _Ready:
        """Check one object (its outcome when it goes no further) and find where it goes. ``flushed``: True when
        its file was fsynced already (in parallel), the error that gave, or False to fsync it here."""
        if sop_class is not None and sop_instance is not None and not (safe_uid(sop_instance) and safe_uid(sop_class)):
            staged.discard()
            return Outcome(Reason.INVALID_UID, "invalid SOP Class or Instance UID in the command")
        if staged.error is not None:
            return _oserror(staged.error)
        try:
            if isinstance(flushed, BaseException):
                raise flushed
            if not flushed:
                staged.finish()
            ds = read(staged.path, stop_before_pixels=True)
            got_class, got_instance = ds.get("SOPClassUID"), ds.get("SOPInstanceUID")
            if sop_class is None or sop_instance is None:  # as the object says (a STOW-RS part)
                sop_class, sop_instance = got_class, got_instance
                if not (safe_uid(sop_instance) and safe_uid(sop_class)):
                    staged.discard()
                    return Outcome(Reason.INVALID_UID, "invalid SOP Class or Instance UID in the data set")
            if got_class != sop_class or got_instance != sop_instance:
                staged.discard()
                return Outcome(Reason.MISMATCH, "SOP Class/Instance UID differ from the command")
            study, series = ds.get("StudyInstanceUID"), ds.get("SeriesInstanceUID")
            if not (safe_uid(study) and safe_uid(series)):
                staged.discard()
                return Outcome(Reason.NO_STUDY_OR_SERIES, "missing or invalid Study/Series Instance UID")
            assert isinstance(sop_instance, str)  # checked by safe_uid
            folder = os.path.join(self.root, study, series)
            if folder not in self._folders:
                self._made(make_dirs(self.root, study, series, sync=self._sync))
            final = os.path.join(folder, sop_instance + ".dcm")
            # ("overwrite" replaces whatever is there: no need to look first)
            if self.duplicates != "overwrite" and os.path.exists(final):
                if self.duplicates == "keep":
                    staged.discard()
                    return Outcome(Reason.DUPLICATE_KEPT, "", final)
                if self.duplicates == "reject":
                    staged.discard()
                    return Outcome(Reason.DUPLICATE_REFUSED, "SOP Instance already stored")
            digest = None
            if self.checksum:
                digest = (
                    staged.hasher.hexdigest()
                    if staged.hasher is not None
                    else checksum_file(staged.path, self.checksum)
                )
            return _Ready(staged, ds, folder, final, digest)
        except FastDicomError as exc:
            staged.discard()
            return Outcome(Reason.UNREADABLE, f"cannot read the data set: {exc}")
        except OSError as exc:
            staged.discard()
            return _oserror(exc)

    def _rename(self, ready: _Ready, folders: set[str]) -> Outcome:
        """Rename a checked object into place; its folder goes into ``folders`` to be fsynced."""
        try:
            try:
                os.replace(ready.staged.path, ready.final)
            except FileNotFoundError:  # the folder was removed under us (by hand?): make it again, once
                self._folders.discard(ready.folder)
                study, series = os.path.relpath(ready.folder, self.root).split(os.sep)[-2:]
                self._made(make_dirs(self.root, study, series, sync=self._sync))
                os.replace(ready.staged.path, ready.final)
        except OSError as exc:
            ready.staged.discard()
            return _oserror(exc)
        folders.add(ready.folder)
        return Outcome(Reason.STORED, "", ready.final, ready.staged.bytes)

    def _made(self, folder: str) -> None:
        if len(self._folders) >= 4096:  # bounded: an archive of ever new series forgets the oldest lookups
            self._folders.clear()
        self._folders.add(folder)

    def close(self) -> None:
        """Nothing is held between batches (kept for the archive interface)."""
        self._closed = True


class _Ready(NamedTuple):
    """A checked object about to be renamed: its header, folder, final path and checksum."""

    staged: Staged
    dataset: Any
    folder: str
    final: str
    checksum: str | None


class DiscardArchive:
    """Checks and drops objects (nothing is written): the receiving end of a sender's measurement."""

    needs_header = False

    def sweep(self) -> None:
        pass

    def stage(self, header: bytes = b"") -> Counted:
        return Counted()

    def commit(self, staged: Counted, sop_class: str | None = None, sop_instance: str | None = None) -> Outcome:
        if staged.bytes == 0 or staged.bytes % 2:
            return Outcome(Reason.UNREADABLE, "empty or odd-length data set")
        return Outcome(Reason.STORED, "", None, staged.bytes)

    def commit_batch(self, batch: Sequence[tuple[Any, str | None, str | None]]) -> list[Outcome]:
        return [self.commit(staged) for staged, _, _ in batch]

    def close(self) -> None:
        pass
