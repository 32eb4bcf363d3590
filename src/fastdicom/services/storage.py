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
import ssl
import threading
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
from .base import ALL_TRANSFER_SYNTAXES, Request, RequestSink, Respond, response
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
    ) -> None:
        self.archive = archive
        #: Who may store (None: anyone who associated).
        self.config = config
        self.accept_private = accept_private
        self.on_store = on_store
        self.notify = notify
        #: Counters: stored, failed, bytes.
        self.stats = {"stored": 0, "failed": 0, "bytes": 0}
        self._lock = threading.Lock()

    def transfer_syntaxes(self, abstract_syntax: str) -> Collection[str]:
        storage = abstract_syntax in STORAGE_SOP_CLASSES or (
            self.accept_private and abstract_syntax not in UIDS and safe_uid(abstract_syntax)
        )
        return ALL_TRANSFER_SYNTAXES if storage else ()  # stored as it comes: never decoded to be stored

    def sink(self, request: Request) -> RequestSink | None:
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
            if r.sink is None:
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
        stored = failed = nbytes = 0
        for (k, _r), outcome in zip(batch, outcomes):
            status = StoreStatus.SUCCESS if outcome.reason is Reason.STORED else STATUS[outcome.reason]
            answers[k] = (status, outcome.detail, outcome.path)
            stored += outcome.ok
            nbytes += outcome.bytes
        failed = len(requests) - stored
        with self._lock:
            self.stats["stored"] += stored
            self.stats["failed"] += failed
            self.stats["bytes"] += nbytes
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
        tls: ssl.SSLContext | None = None,
        max_pdu: int = DEFAULT_MAX_PDU,
        network_timeout: float = 60.0,
        artim_timeout: float = 30.0,
        accept_private_sop_classes: bool = True,
        require_identity: bool = False,
        on_association: Callable[[AssociationInfo], Any] | None = None,
        on_store: Callable[[str | None, dict, AssociationInfo], Any] | None = None,
        authenticate: Callable[[pdu.UserIdentity, str], bool | bytes | None] | None = None,
        services: Sequence[Any] = (),
        requestor_scp: Collection[str] = (),
    ) -> None:
        if duplicates not in DUPLICATE_POLICIES:
            raise ValueError("duplicates must be 'overwrite', 'keep' or 'reject'")
        if not sink and not directory and archive is None:
            raise ValueError("a Storage SCP needs a directory (or sink=True)")
        self._owns_archive = archive is None and index and not sink
        if self._owns_archive:
            archive = Archive(str(directory), checksum=checksum, duplicates=duplicates)
        #: The indexed archive stored into (None: files only, or a sink).
        self.archive = None if sink else archive
        store: FolderArchive | DiscardArchive
        if sink:
            store = DiscardArchive()
        elif archive is not None:
            store = archive.folder
        else:
            store = FolderArchive(str(directory), duplicates=duplicates)
        self.directory = store.root if isinstance(store, FolderArchive) else None
        self.sink = sink
        notifier = Notifier()
        self.storage = StorageService(
            store, accept_private=accept_private_sop_classes, on_store=on_store, notify=notifier.post
        )
        limits = Limits(
            max_associations=max_associations,
            max_pdu=max_pdu,
            network_timeout=network_timeout,
            artim_timeout=artim_timeout,
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
        """Counters: stored, failed, bytes, associations, rejected."""
        return {**self.storage.stats, **self.counters}

    def start(self) -> StorageSCP:
        """Remove what a killed server left in ``.incoming``, listen, serve in background threads; return self."""
        self.storage.archive.sweep()
        super().start()
        return self

    def __enter__(self) -> StorageSCP:
        return self.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving (see :meth:`AssociationServer.stop`), then close the archive this server opened."""
        super().stop(timeout)
        if self._owns_archive and self.archive is not None:
            self.archive.close()
