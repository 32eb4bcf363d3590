"""The Storage service (PS3.4 Annex B), SCP role: C-STORE into an archive; and :class:`StorageSCP`.

For each C-STORE the data set goes from the socket straight into an object
the archive stages (:meth:`fastdicom.archive.FolderArchive.stage`), behind
the File Meta written first (:func:`fastdicom.dataset.write.part10_header`),
so memory stays flat whatever the object size. Once received, the archive
commits it (fsync, checks, rename, folder fsync) and only then is success
answered; requests that waited together are committed as one batch. The
archive's :class:`~fastdicom.archive.Reason` becomes the C-STORE status here
(:data:`STATUS`). The SCU role is :func:`fastdicom.services.store.store`.

:class:`StorageSCP` is an :class:`~fastdicom.net.server.AssociationServer`
with the Verification and Storage services.
"""

from __future__ import annotations

import enum
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

from ..archive import Archive, DiscardArchive, FolderArchive, Reason, safe_uid
from ..archive.folder import DUPLICATE_POLICIES
from ..config import ServerConfig
from ..dataset.write import part10_header
from ..dictionary._uids import UIDS
from ..net import dimse, pdu
from ..net.association import DEFAULT_MAX_PDU
from ..net.dimse import Status
from ..net.negotiation import AcceptPolicy, Limits
from ..net.server import AssociationInfo, AssociationServer, Notifier
from .base import ALL_TRANSFER_SYNTAXES, Drain, Request, RequestSink, Respond, response
from .dispatch import Dispatcher
from .verification import VerificationService


class StoreStatus(enum.IntEnum):
    """C-STORE statuses (PS3.4 B.2.3), beside the general ones of :class:`fastdicom.net.dimse.Status`."""

    SUCCESS = 0x0000
    COERCION_OF_DATA_ELEMENTS = 0xB000
    ELEMENTS_DISCARDED = 0xB006
    DATA_SET_DOES_NOT_MATCH_SOP_CLASS_WARNING = 0xB007
    OUT_OF_RESOURCES = 0xA700  # A7xx
    DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xA900  # A9xx
    CANNOT_UNDERSTAND = 0xC000  # Cxxx


def out_of_resources(status: int) -> bool:
    """Whether a C-STORE status says out of resources (A7xx): worth trying again later."""
    return 0xA700 <= status <= 0xA7FF


#: The C-STORE status of each archive outcome.
STATUS: dict[Reason, int] = {
    Reason.STORED: StoreStatus.SUCCESS,
    Reason.DUPLICATE_KEPT: StoreStatus.SUCCESS,
    Reason.DUPLICATE_REFUSED: Status.DUPLICATE_SOP_INSTANCE,
    Reason.INVALID_UID: Status.INVALID_SOP_INSTANCE,
    Reason.MISMATCH: StoreStatus.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
    Reason.NO_STUDY_OR_SERIES: StoreStatus.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
    Reason.UNREADABLE: StoreStatus.CANNOT_UNDERSTAND,
    Reason.OUT_OF_RESOURCES: StoreStatus.OUT_OF_RESOURCES,
}

log = logging.getLogger("fastdicom.storage")

_NOT_STORAGE = ("Commitment", "Storage Management", "Media Storage Directory")
#: Storage SOP classes known to the dictionary (PS3.6 Table A-1: SOP classes named "... Storage").
STORAGE_SOP_CLASSES = frozenset(
    uid
    for uid, (name, kind, _info, _retired, _kw) in UIDS.items()
    if kind == "SOP Class" and "Storage" in name and not any(x in name for x in _NOT_STORAGE)
)


class StorageService:
    """The Storage SCP: C-STORE requests committed to ``archive``, then answered.

    ``accept_private``: take SOP classes the dictionary does not know (a valid
    UID), as storage. ``config``: who may store (others: 0x0124, not authorized). ``on_store(path, command, info)`` runs through
    ``notify`` (off the data path) after each success.
    """

    commands = frozenset({dimse.C_STORE_RQ})

    def __init__(
        self,
        archive: FolderArchive | DiscardArchive,
        *,
        accept_private: bool = True,
        on_store: Callable[[str | None, dict, AssociationInfo], Any] | None = None,
        notify: Callable[..., None] | None = None,
        config: ServerConfig | None = None,
        stop_after_failures: int = 0,
        on_fatal: Callable[[str], Any] | None = None,
    ) -> None:
        self.archive = archive
        #: Who may store (None: anyone who associated).
        self.config = config
        self.accept_private = accept_private
        self.on_store = on_store
        self.notify = notify
        #: After this many out-of-resources failures in a row (no success between), ``on_fatal(why)`` runs
        #: once (a server that cannot store says so and stops). 0: never.
        self.stop_after_failures = stop_after_failures
        self.on_fatal = on_fatal
        #: Counters: stored, failed, bytes; refused (while the server stops).
        self.stats = {"stored": 0, "failed": 0, "bytes": 0, "refused": 0}
        #: Set when the server stops: new C-STOREs are answered 0xA700 and not received into the archive.
        self.draining = threading.Event()
        self._lock = threading.Lock()
        self._failures_in_a_row = 0
        self._fatal_sent = False

    def transfer_syntaxes(self, abstract_syntax: str) -> Collection[str]:
        storage = abstract_syntax in STORAGE_SOP_CLASSES or (
            self.accept_private and abstract_syntax not in UIDS and safe_uid(abstract_syntax)
        )
        return ALL_TRANSFER_SYNTAXES if storage else ()  # stored as it comes: never decoded to be stored

    def sink(self, request: Request) -> RequestSink | None:
        if self.draining.is_set():
            return Drain()
        if not self.archive.needs_header:
            return self.archive.stage()
        cmd = request.command
        header = part10_header(
            str(cmd.get("AffectedSOPClassUID", "")),
            str(cmd.get("AffectedSOPInstanceUID", "")),
            request.transfer_syntax,
            request.peer.calling_ae,
        )
        return self.archive.stage(header)

    def handle(self, requests: Sequence[Request], respond: Respond) -> None:
        """Commit the batch (every outcome settled first), then answer each request in order."""
        answers: list[tuple[int, str, str | None] | None] = [None] * len(requests)
        batch = []
        for k, r in enumerate(requests):
            sop_class = r.command.get("AffectedSOPClassUID")
            if isinstance(r.sink, Drain):  # announced while the server stops: never received into the archive
                answers[k] = (StoreStatus.OUT_OF_RESOURCES, "the server is shutting down", None)
            elif r.sink is None:
                answers[k] = (StoreStatus.CANNOT_UNDERSTAND, "no data set received", None)
            elif self.config is not None and not self.config.may(r.peer.calling_ae, "store"):
                r.sink.discard()
                answers[k] = (Status.NOT_AUTHORIZED, f"{r.peer.calling_ae} may not store here", None)
            elif r.abstract_syntax != sop_class:
                r.sink.discard()
                answers[k] = (Status.SOP_CLASS_NOT_SUPPORTED, "SOP Class differs from the presentation context's", None)
            else:
                batch.append((k, r))
        outcomes = self.archive.commit_batch(
            [
                (r.sink, str(r.command.get("AffectedSOPClassUID")), str(r.command.get("AffectedSOPInstanceUID")))
                for _, r in batch
            ]
        )
        stored = failed = nbytes = refused = 0
        full, n_full = "", 0  # the last out-of-resources reason of the batch, how many
        for (k, _r), outcome in zip(batch, outcomes):
            status = StoreStatus.SUCCESS if outcome.reason is Reason.STORED else STATUS[outcome.reason]
            answers[k] = (status, outcome.detail, outcome.path)
            stored += outcome.ok
            nbytes += outcome.bytes
            if outcome.reason is Reason.OUT_OF_RESOURCES:
                full, n_full = outcome.detail, n_full + 1
        for r, answer in zip(requests, answers):
            assert answer is not None
            if answer[0] == StoreStatus.SUCCESS:
                r.peer.stored += 1
                continue
            r.peer.failed += 1
            if isinstance(r.sink, Drain):
                refused += 1
                continue
            log.log(
                logging.ERROR if out_of_resources(answer[0]) else logging.WARNING,
                "C-STORE %s from %s failed: 0x%04X %s",
                r.command.get("AffectedSOPInstanceUID"),
                r.peer.calling_ae.strip(),
                answer[0],
                answer[1],
            )
        failed = len(requests) - stored
        fatal = None
        with self._lock:
            self.stats["stored"] += stored
            self.stats["failed"] += failed
            self.stats["bytes"] += nbytes
            self.stats["refused"] += refused
            if stored:
                self._failures_in_a_row = 0
            elif n_full:
                self._failures_in_a_row += n_full
                if 0 < self.stop_after_failures <= self._failures_in_a_row and not self._fatal_sent:
                    self._fatal_sent = True
                    fatal = f"{self._failures_in_a_row} objects in a row could not be stored ({full})"
        if fatal is not None and self.on_fatal is not None:
            self.on_fatal(fatal)
        for r, answer in zip(requests, answers):
            assert answer is not None
            status, comment, path = answer
            respond(r, response(r, status, ErrorComment=comment[:64] or None))
            if status == StoreStatus.SUCCESS and self.on_store is not None and self.notify is not None:
                self.notify(self.on_store, path, r.command, r.peer)

    def close(self) -> None:
        self.archive.close()


class StorageSCP(AssociationServer):
    """A Storage SCP (and Verification SCP) on a port, storing into ``directory``.

    An :class:`~fastdicom.net.server.AssociationServer` with
    :class:`~fastdicom.services.verification.VerificationService` and
    :class:`StorageService` over a :class:`~fastdicom.archive.FolderArchive`
    (a :class:`~fastdicom.archive.DiscardArchive` with ``sink=True``).

    Parameters
    ----------
    directory : str
        The archive folder (created if missing). Ignored with ``sink=True``.
    ae_title : str
        Our AE title. Associations calling another title are rejected only with
        ``strict_called_ae``.
    port, host : int, str
        Where to listen (port 0 picks a free one; see :attr:`port`).
    max_associations : int
        More at once are answered with a transient A-ASSOCIATE-RJ (local limit exceeded).
    max_pending_connections, request_timeout : int, float
        Connections that have not sent their A-ASSOCIATE-RQ hold no association slot: at most this many
        (0: 4 x ``max_associations``), each closed when the request has not come within ``request_timeout``.
    allowed_aes : iterable of str, optional
        Calling AE titles allowed in (others get a permanent rejection).
    duplicates : {"overwrite", "keep", "reject"}
        What to do with an SOP Instance UID already stored (see :mod:`fastdicom.archive.folder`).
    sink : bool
        Check and discard objects instead of storing them (measuring a sender).
    index : bool
        Keep the archive's SQLite index (:class:`~fastdicom.archive.Archive`), written with each commit
        (the default); False stores files only.
    checksum : {"xxh3", "sha256", "md5"}
        The checksum of each stored file kept in the index.
    archive : Archive, optional
        Store into this :class:`~fastdicom.archive.Archive` (``directory`` is then ignored).
    durability : {"fsync", "os"}
        ``"fsync"`` (the default): success only once the object is on the disk. ``"os"``: the page
        cache only, like DCMTK's storescp and pynetdicom; not crash-safe (see :mod:`fastdicom.archive.folder`).
    stop_after_failures : int
        After this many objects in a row could not be stored for lack of resources (the archive folder
        unwritable, the disk full or gone), the server logs it at CRITICAL and stops (:attr:`fatal` says
        why). 0: never (each failure is still logged at ERROR).
    tls : ssl.SSLContext, optional
        A server context (TLS 1.2 or later; set ``verify_mode`` for mutual authentication).
    on_association, on_store : callable, optional
        Hooks called in a separate thread, off the data path:
        ``on_association(AssociationInfo)`` and ``on_store(path, command, AssociationInfo)``.
    authenticate : callable, optional
        ``authenticate(user_identity, calling_ae)`` for associations that carry
        User Identity negotiation (see :class:`~fastdicom.net.negotiation.AcceptPolicy`).
    services : sequence of Service, optional
        More services on the same port, ahead of Storage (e.g.
        :class:`~fastdicom.services.commitment.CommitmentService`); closed with the server.
    requestor_scp : collection of str
        SOP classes for which a requestor may take the SCP role (role selection).
    config : ServerConfig, optional
        Who may store (the peers' rights, :mod:`fastdicom.config`); None: anyone who associated.
    """

    def __init__(
        self,
        directory: str | None = None,
        *,
        ae_title: str = "FASTDICOM",
        port: int = 11112,
        host: str = "",
        max_associations: int = 32,
        allowed_aes: Any = None,
        strict_called_ae: bool = False,
        duplicates: str = "overwrite",
        sink: bool = False,
        index: bool = True,
        checksum: str = "xxh3",
        archive: Archive | None = None,
        durability: str = "fsync",
        stop_after_failures: int = 0,
        tls: ssl.SSLContext | None = None,
        max_pdu: int = DEFAULT_MAX_PDU,
        network_timeout: float = 60.0,
        artim_timeout: float = 30.0,
        max_pending_connections: int = 0,
        request_timeout: float = 10.0,
        accept_private_sop_classes: bool = True,
        require_identity: bool = False,
        on_association: Callable[[AssociationInfo], Any] | None = None,
        on_store: Callable[[str | None, dict, AssociationInfo], Any] | None = None,
        authenticate: Callable[[pdu.UserIdentity, str], bool | bytes | None] | None = None,
        services: Sequence[Any] = (),
        requestor_scp: Collection[str] = (),
        config: ServerConfig | None = None,
    ) -> None:
        if duplicates not in DUPLICATE_POLICIES:
            raise ValueError("duplicates must be 'overwrite', 'keep' or 'reject'")
        if not sink and not directory and archive is None:
            raise ValueError("a Storage SCP needs a directory (or sink=True)")
        self._owns_archive = archive is None and index and not sink
        if self._owns_archive:
            archive = Archive(str(directory), checksum=checksum, duplicates=duplicates, durability=durability)
        #: The indexed archive stored into (None: files only, or a sink).
        self.archive = None if sink else archive
        store: FolderArchive | DiscardArchive
        if sink:
            store = DiscardArchive()
        elif archive is not None:
            store = archive.folder
        else:
            store = FolderArchive(str(directory), duplicates=duplicates, durability=durability)
        self.directory = store.root if isinstance(store, FolderArchive) else None
        self.sink = sink
        self.durability = durability
        #: Why the server stopped by itself (None: it did not).
        self.fatal: str | None = None
        self._stop_begun = False
        self._stop_begun_lock = threading.Lock()
        self._stop_done = threading.Event()
        self._grace = 0.0
        notifier = Notifier()
        self.storage = StorageService(
            store,
            accept_private=accept_private_sop_classes,
            on_store=on_store,
            notify=notifier.post,
            stop_after_failures=stop_after_failures,
            on_fatal=self._fatal,
            config=config,
        )
        limits = Limits(
            max_associations=max_associations,
            max_pdu=max_pdu,
            network_timeout=network_timeout,
            artim_timeout=artim_timeout,
            max_pending_connections=max_pending_connections,
            request_timeout=request_timeout,
        )
        policy = AcceptPolicy(
            ae_title=ae_title,
            strict_called_ae=strict_called_ae,
            allowed_aes=None if allowed_aes is None else frozenset(a.strip() for a in allowed_aes),
            authenticate=authenticate,
            require_identity=require_identity,
            limits=limits,
        )
        super().__init__(
            Dispatcher(
                [VerificationService(), *services, self.storage], max_data=limits.max_data, requestor_scp=requestor_scp
            ),
            policy,
            port=port,
            host=host,
            tls=tls,
            on_association=on_association,
            notifier=notifier,
        )

    @property
    def stats(self) -> dict[str, int]:
        """Counters: stored, failed, bytes, refused, associations, rejected."""
        return {**self.storage.stats, **self.counters}

    def _fatal(self, why: str) -> None:
        """The archive cannot store: say so loudly and stop (on a thread of its own: stop() joins this one)."""
        self.fatal = why
        self.log.critical("cannot store: %s; the server stops", why)
        threading.Thread(target=self.stop, name="fastdicom-fatal-stop", daemon=True).start()

    def stop(self, timeout: float = 10.0, grace: float = 0.0) -> None:
        """Stop: no new connections; with ``grace``, objects being received get up to ``grace`` seconds to be
        committed and answered while new C-STOREs are answered 0xA700 (not stored); then the associations
        still open are aborted (what they were receiving is discarded) and nothing partial is left.

        Logs what it did (finished, refused, aborted) and a summary."""
        with self._stop_begun_lock:
            again, self._stop_begun = self._stop_begun, True
        if again:  # another thread stops it: wait for that
            self._stop_done.wait(timeout + max(grace, self._grace))
            return
        self._grace = grace
        try:
            self._stop(timeout, grace)
        finally:
            if self._owns_archive and self.archive is not None:
                self.archive.close()
            self._stop_done.set()

    def _stop(self, timeout: float, grace: float) -> None:
        t0 = time.monotonic()
        before = self.storage.stats["stored"]
        self.close_listener(timeout)
        self.storage.draining.set()
        incoming = self.storage.archive.incoming if isinstance(self.storage.archive, FolderArchive) else None
        in_flight = _staged(incoming)
        deadline = t0 + max(grace, 0.0)
        while in_flight and time.monotonic() < deadline:
            time.sleep(0.02)
            in_flight = _staged(incoming)
        at_deadline = self.storage.stats["stored"]
        open_now = self.open_associations
        super().stop(timeout)
        s = self.stats
        aborted = max(in_flight - (s["stored"] - at_deadline), 0)  # (fully received ones are still committed)
        left = _staged(incoming)
        if left and self.open_associations == 0:
            self.storage.archive.sweep()  # (never answered with success)
        elif left:
            self.log.warning("%d partial objects left in %s (removed at the next start)", left, incoming)
        if grace > 0 or in_flight:
            self.log.info(
                "stopping took %.1f s: %d objects finished, %d refused, %d aborted (%d associations were open)",
                time.monotonic() - t0,
                s["stored"] - before,
                s["refused"],
                aborted,
                open_now,
            )
        self.log.info(
            "summary: %d stored, %d failed, %.1f MB, %d associations, %d connections refused",
            s["stored"],
            s["failed"],
            s["bytes"] / 1e6,
            s["associations"],
            s["rejected"],
        )

    def start(self) -> StorageSCP:
        """Remove what a killed server left in ``.incoming``, listen, serve in background threads; return self."""
        self.storage.archive.sweep()
        super().start()
        return self

    def __enter__(self) -> StorageSCP:
        return self.start()


def _staged(incoming: str | None) -> int:
    """Objects staged and not yet committed or discarded (the ``.part`` files in ``incoming``)."""
    if incoming is None:
        return 0
    try:
        return sum(1 for name in os.listdir(incoming) if name.endswith(".part"))
    except OSError:
        return 0
