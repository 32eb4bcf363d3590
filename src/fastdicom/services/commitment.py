"""Storage Commitment Push Model (PS3.4 Annex J), both roles: :class:`CommitmentService` and :func:`commit`.

SCP (:class:`CommitmentService`, SOP class 1.2.840.10008.1.20.1 with its
well-known instance 1.2.840.10008.1.20.1.1):

1. an N-ACTION (Request Storage Commitment) is checked, written to the
   archive's database (:class:`~fastdicom.archive.commitments.CommitmentStore`)
   and answered at once;
2. a worker thread checks each referenced instance: present in the archive
   (``Archive.lookup``), of the SOP class the request names, and intact: the
   file is read again (``Archive.checksum_file``, on a few threads) and its
   size and checksum compared with the index. The outcome is written down
   before any report, so a report says what was checked, whenever it goes;
3. the N-EVENT-REPORT (event type 1: all committed; 2: some failed, with a
   Failure Reason each: 0x0112 no such object, 0x0119 class/instance
   conflict, 0x0110 processing failure) goes on the requestor's association
   when it is still open (sent from the worker while the dispatcher reads the
   answer: :class:`~fastdicom.services.base.Outbound`), otherwise on a new
   association to the address ``peers`` gives for the requestor's AE title,
   proposing the SCP role for ourselves (role selection), retried with
   backoff. A transaction is done only once the requestor answered the
   report; one that cannot be delivered after every retry is logged as an
   error and kept in the table as abandoned. A server started again reports
   what its predecessor left pending.

SCU (:func:`commit`): sends the N-ACTION for paths, data sets or
``(sop_class, sop_instance)`` pairs and waits for the report on the same
association, or with ``listen=port`` on its own listening port (the
association is released after the N-ACTION's answer, as Orthanc expects);
returns each instance committed or failed with its reason.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import logging
import os
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from .. import _backends
from ..archive.commitments import RECEIVED, VERIFIED, CommitmentStore, Transaction
from ..dataset.dataset import Dataset
from ..dataset.write import encode_dataset
from ..dictionary import uid as _uid
from ..dictionary.uid import UID
from ..errors import FastDicomError
from ..net import dimse, pdu
from ..net.association import Association, AssociationAborted, NetworkError, ReleaseRequested
from ..net.dimse import Category, DimseChannel, Message, Status
from ..net.negotiation import AcceptPolicy, Limits
from ..net.server import AssociationServer
from .base import Request, RequestSink, Respond, parse_address, response, sop_class
from .dispatch import Dispatcher

log = logging.getLogger("fastdicom.commitment")

STORAGE_COMMITMENT = sop_class("StorageCommitmentPushModel")
#: The well-known SOP instance every N-ACTION and N-EVENT-REPORT of the service names.
STORAGE_COMMITMENT_INSTANCE = UID("1.2.840.10008.1.20.1.1")
#: Action Type ID of Request Storage Commitment; Event Type IDs of the report.
REQUEST_COMMITMENT = 1
ALL_COMMITTED, SOME_FAILED = 1, 2
#: What the data sets of the service travel in (they are decoded here: no compressed syntax).
SYNTAXES = (_uid.ExplicitVRLittleEndian, _uid.ImplicitVRLittleEndian, _uid.ExplicitVRBigEndian)
#: Largest number of instances in one request (about 100 bytes each in the N-ACTION).
MAX_REFERENCES = 500_000


class FailureReason(enum.IntEnum):
    """Failure Reason (0008,1197) of a Failed SOP Sequence item (PS3.3 C.14.1.1)."""

    PROCESSING_FAILURE = 0x0110
    NO_SUCH_OBJECT_INSTANCE = 0x0112
    CLASS_INSTANCE_CONFLICT = 0x0119
    REFERENCED_SOP_CLASS_NOT_SUPPORTED = 0x0122
    DUPLICATE_TRANSACTION_UID = 0x0131
    RESOURCE_LIMITATION = 0x0213


class ActionStatus(enum.IntEnum):
    """The N-ACTION failure statuses this SCP answers (PS3.7 10.1.4.1.10), beside the general ones."""

    NO_SUCH_SOP_INSTANCE = 0x0112
    NO_SUCH_SOP_CLASS = 0x0118
    MISSING_ATTRIBUTE = 0x0120
    NO_SUCH_ACTION = 0x0123
    RESOURCE_LIMITATION = 0x0213


def reason_name(reason: int | None) -> str:
    if reason is None:
        return ""
    try:
        return FailureReason(reason).name.lower().replace("_", " ")
    except ValueError:
        return f"0x{reason:04X}"


# -- data sets -------------------------------------------------------------------------------------


def decode_data(raw: bytes, transfer_syntax: str) -> Dataset:
    """A bare data set received on a context of ``transfer_syntax`` (uncompressed, not deflated)."""
    ts = UID(transfer_syntax)
    mod = _backends.resolve("parse")[1]
    return Dataset._from_buffer(memoryview(raw), 0, len(raw), ts.is_little_endian, not ts.is_implicit_VR, mod)


def encode_data(ds: Dataset, transfer_syntax: str) -> bytes:
    ts = UID(transfer_syntax)
    return b"".join(bytes(c) for c in encode_dataset(ds, ts.is_little_endian, not ts.is_implicit_VR))


def _ref(sop_class_uid: str, sop_instance_uid: str, reason: int | None = None) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class_uid
    item.ReferencedSOPInstanceUID = sop_instance_uid
    if reason is not None:
        item.FailureReason = int(reason)
    return item


def request_data(transaction_uid: str, references: Iterable[tuple[str, str]]) -> Dataset:
    """The N-ACTION-RQ data set: Transaction UID and Referenced SOP Sequence."""
    ds = Dataset()
    ds.TransactionUID = transaction_uid
    ds.ReferencedSOPSequence = [_ref(c, i) for c, i in references]
    return ds


def report_data(
    transaction_uid: str, references: Sequence[tuple[str, str]], failures: Sequence[tuple[str, str, int]]
) -> tuple[int, Dataset]:
    """The N-EVENT-REPORT's event type and data set: the committed ones in Referenced SOP Sequence, the
    others in Failed SOP Sequence with their Failure Reason."""
    failed = {(c, i) for c, i, _ in failures}
    ds = Dataset()
    ds.TransactionUID = transaction_uid
    committed = [(c, i) for c, i in references if (c, i) not in failed]
    if committed or not failures:
        ds.ReferencedSOPSequence = [_ref(c, i) for c, i in committed]
    if failures:
        ds.FailedSOPSequence = [_ref(c, i, r) for c, i, r in failures]
    return (SOME_FAILED if failures else ALL_COMMITTED), ds


def _pairs(ds: Dataset, keyword: str) -> list[tuple[str, str, int | None]]:
    """(class, instance, Failure Reason) of each item of a reference sequence; a missing UID is refused."""
    out = []
    for item in ds.get(keyword) or []:
        c, i = item.get("ReferencedSOPClassUID"), item.get("ReferencedSOPInstanceUID")
        if not c or not i:
            raise FastDicomError(f"an item of {keyword} lacks its SOP Class or Instance UID")
        reason = item.get("FailureReason")
        out.append((str(c), str(i), None if reason is None else int(reason)))
    return out


# -- SCP -------------------------------------------------------------------------------------------


class CommitArchive(Protocol):
    """What the SCP needs of an archive (:class:`fastdicom.archive.Archive`)."""

    database_path: str

    def lookup(self, sop_instance_uids: Iterable[str]) -> Mapping[str, Any]: ...

    def checksum_file(self, path_or_instance: Any) -> str: ...


#: Where a requestor AE listens: a mapping AE -> (host, port), or a callable AE -> (host, port) or None.
Peers = Mapping[str, tuple[str, int]] | Callable[[str], tuple[str, int] | None]


@dataclass
class _Live:
    """The association a transaction's N-ACTION came on (the report goes there while it is open)."""

    outbound: Any
    context_id: int


class CommitmentService:
    """The Storage Commitment Push Model SCP over an archive (see the module).

    Parameters
    ----------
    archive : Archive
        ``lookup``, ``checksum_file`` and ``database_path`` (the transactions' table goes there).
    peers : mapping or callable, optional
        AE title -> (host, port) of the requestors, for reports on a new association.
    ae_title : str
        Our AE title, calling on those associations.
    retry_delays : sequence of float
        The waits before each new attempt to deliver a report (the last repeats) ...
    max_attempts : int
        ... until this many failed: the transaction is then abandoned (logged as an error).
    report_timeout : float
        How long the requestor may take to answer an N-EVENT-REPORT.
    verify_threads : int
        Files read at once to verify their checksums.
    workers : int
        Transactions handled at once (a requestor that cannot be reached holds up only one).
    may : callable, optional
        ``may(calling_ae, "commit")``: whether a requestor may ask (the server configuration's
        :meth:`~fastdicom.config.ServerConfig.may`); others are answered 0x0124 (not authorized).
    database : str, optional
        Another database file than the archive's (``":memory:"``: transactions are not kept).
    """

    commands = frozenset({dimse.N_ACTION_RQ})

    def __init__(
        self,
        archive: CommitArchive,
        *,
        peers: Peers | None = None,
        ae_title: str = "FASTDICOM",
        retry_delays: Sequence[float] = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
        max_attempts: int = 30,
        report_timeout: float = 30.0,
        network_timeout: float = 30.0,
        verify_threads: int = 4,
        workers: int = 2,
        may: Callable[[str, str], bool] | None = None,
        tls: ssl.SSLContext | None = None,
        database: str | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.archive = archive
        self.peers = peers
        self.ae_title = ae_title
        self.retry_delays = tuple(retry_delays) or (1.0,)
        self.max_attempts = max_attempts
        self.report_timeout = report_timeout
        self.network_timeout = network_timeout
        self.verify_threads = max(1, verify_threads)
        self.may = may
        self.tls = tls
        self.log = logger or log
        self.store = CommitmentStore(database or getattr(archive, "database_path", None) or ":memory:")
        #: Counters: requests, reported (same association / new one), failed deliveries, abandoned.
        self.stats = {"requests": 0, "reported_same": 0, "reported_new": 0, "delivery_failures": 0, "abandoned": 0}
        self._live: dict[str, _Live] = {}
        self._due: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopping = False
        self._idle = threading.Event()
        self._busy: set[str] = set()  # transactions a worker holds now
        now = time.time()
        for t in self.store.pending():  # what a previous run left: reported on a new association
            self._schedule(t.transaction_uid, max(t.next_attempt, now))
        if self._due:
            self.log.warning("%d storage commitment transactions pending from before: reporting them", len(self._due))
        self._threads = [
            threading.Thread(target=self._run, name=f"fastdicom-commitment-{n}", daemon=True)
            for n in range(max(1, workers))
        ]
        for thread in self._threads:
            thread.start()

    # -- the Service interface -------------------------------------------------------------------
    def transfer_syntaxes(self, abstract_syntax: str) -> Collection[str]:
        return SYNTAXES if abstract_syntax == STORAGE_COMMITMENT else ()

    def sink(self, request: Request) -> RequestSink | None:
        return None  # the request's data set is collected (bounded by the dispatcher's max_data)

    def handle(self, requests: Sequence[Request], respond: Respond) -> None:
        for r in requests:
            status, comment, uid = self._accept(r)
            command = response(
                r,
                status,
                AffectedSOPClassUID=STORAGE_COMMITMENT,
                AffectedSOPInstanceUID=STORAGE_COMMITMENT_INSTANCE,
                ActionTypeID=REQUEST_COMMITMENT if status == Status.SUCCESS else None,
                ErrorComment=comment[:64] if comment else None,
            )
            respond(r, command)
            if uid is not None:  # after the answer: the report must not overtake it
                self._schedule(uid, time.time())

    def close(self) -> None:
        """Stop the worker (what is pending stays in the table for the next start)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(30.0)
        self.store.close()

    # -- requests --------------------------------------------------------------------------------
    def _accept(self, r: Request) -> tuple[int, str | None, str | None]:
        """Check an N-ACTION and record it: (status, error comment, transaction UID when accepted)."""
        cmd = r.command
        if self.may is not None and not self.may(r.peer.calling_ae, "commit"):
            self.log.warning("storage commitment refused to %s: not allowed to commit", r.peer.calling_ae)
            return Status.NOT_AUTHORIZED, "not allowed to request storage commitment", None
        if cmd.get("RequestedSOPClassUID") != STORAGE_COMMITMENT or r.abstract_syntax != STORAGE_COMMITMENT:
            return ActionStatus.NO_SUCH_SOP_CLASS, "not the Storage Commitment Push Model SOP Class", None
        if cmd.get("RequestedSOPInstanceUID") != STORAGE_COMMITMENT_INSTANCE:
            return ActionStatus.NO_SUCH_SOP_INSTANCE, "not the well-known SOP instance", None
        if cmd.get("ActionTypeID") != REQUEST_COMMITMENT:
            return ActionStatus.NO_SUCH_ACTION, f"no action type {cmd.get('ActionTypeID')}", None
        if not r.data:
            return ActionStatus.MISSING_ATTRIBUTE, "no data set", None
        try:
            ds = decode_data(r.data, r.transfer_syntax)
            uid = ds.get("TransactionUID")
            refs = _pairs(ds, "ReferencedSOPSequence")
        except (FastDicomError, ValueError) as exc:
            return Status.PROCESSING_FAILURE, f"unreadable request: {exc}", None
        if not uid or not refs:
            return ActionStatus.MISSING_ATTRIBUTE, "Transaction UID or Referenced SOP Sequence missing", None
        if len(refs) > MAX_REFERENCES:
            return ActionStatus.RESOURCE_LIMITATION, f"more than {MAX_REFERENCES} instances in one request", None
        uid = str(uid)
        try:
            self.store.add(uid, r.peer.calling_ae, r.peer.called_ae, [(c, i) for c, i, _ in refs], r.transfer_syntax)
        except Exception as exc:  # noqa: BLE001 - a request we cannot keep is refused, loudly
            self.log.error("storage commitment %s from %s cannot be recorded: %s", uid, r.peer.calling_ae, exc)
            return Status.PROCESSING_FAILURE, "cannot record the transaction", None
        with self._cond:
            self.stats["requests"] += 1
            if r.outbound is not None:
                self._live[uid] = _Live(r.outbound, r.context_id)
        self.log.info("storage commitment %s from %s: %d instances", uid, r.peer.calling_ae, len(refs))
        return Status.SUCCESS, None, uid

    # -- the worker ------------------------------------------------------------------------------
    def _schedule(self, uid: str, when: float) -> None:
        with self._cond:
            heapq.heappush(self._due, (when, next(self._seq), uid))
            self._idle.clear()
            self._cond.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until nothing is due or in hand (tests, benchmarks); False on timeout."""
        return self._idle.wait(timeout)

    def _take(self) -> str | None:
        """The next transaction due that no other worker holds (None: stopping)."""
        with self._cond:
            while not self._stopping:
                if not self._due:
                    if not self._busy:
                        self._idle.set()
                    self._cond.wait()
                    continue
                when, _, uid = self._due[0]
                wait = when - time.time()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._due)
                if uid in self._busy:  # (the same Transaction UID asked again meanwhile): after this one
                    heapq.heappush(self._due, (time.time() + 0.5, next(self._seq), uid))
                    continue
                self._busy.add(uid)
                return uid
            return None

    def _run(self) -> None:
        while (uid := self._take()) is not None:
            try:
                self._process(uid)
            except Exception:  # noqa: BLE001 - the worker must survive anything one transaction does
                self.log.exception("storage commitment %s failed", uid)
                self._retry(uid, "internal error")
            finally:
                with self._cond:
                    self._busy.discard(uid)
                    if not self._due and not self._busy:
                        self._idle.set()
                    self._cond.notify_all()

    def _process(self, uid: str) -> None:
        t = self.store.get(uid)
        if t is None or t.state not in (RECEIVED, VERIFIED):
            return
        if t.state == RECEIVED:
            started = time.monotonic()
            failures = self.verify(t.references)
            self.store.set_verified(uid, failures)
            self.log.info(
                "storage commitment %s: %d of %d instances committed (%.2f s)",
                uid,
                len(t.references) - len(failures),
                len(t.references),
                time.monotonic() - started,
            )
            t = self.store.get(uid)
            assert t is not None
        self._deliver(t)

    def verify(self, references: Sequence[tuple[str, str]]) -> list[tuple[str, str, int]]:
        """The referenced instances that are not safely stored, with their Failure Reason, in request order."""
        found: dict[str, Any] = {}
        uids = [i for _, i in references]
        for k in range(0, len(uids), 900):
            found.update(self.archive.lookup(uids[k : k + 900]))
        reasons: dict[int, int] = {}
        to_read: list[tuple[int, Any]] = []
        for k, (sop_class_uid, sop_instance_uid) in enumerate(references):
            inst = found.get(sop_instance_uid)
            if inst is None:
                reasons[k] = FailureReason.NO_SUCH_OBJECT_INSTANCE
            elif inst.sop_class_uid != sop_class_uid:
                reasons[k] = FailureReason.CLASS_INSTANCE_CONFLICT
            else:
                to_read.append((k, inst))
        # One contiguous share per thread (a task per file costs more than hashing a small file).
        threads = max(1, min(self.verify_threads, len(to_read) // 64))
        shares = [to_read[n::threads] for n in range(threads)]
        if threads == 1:
            bad = [self._damaged(to_read)]
        else:
            with ThreadPoolExecutor(threads, "fastdicom-verify") as pool:
                bad = list(pool.map(self._damaged, shares))
        for share in bad:
            for k in share:
                reasons[k] = FailureReason.PROCESSING_FAILURE
        return [(references[k][0], references[k][1], int(reasons[k])) for k in sorted(reasons)]

    def _damaged(self, share: list[tuple[int, Any]]) -> list[int]:
        return [k for k, inst in share if not self._intact(inst)]

    def _intact(self, inst: Any) -> bool:
        """Whether the file is there, of the indexed size, and its bytes have the indexed checksum."""
        try:
            if os.stat(inst.path).st_size != inst.size:
                self.log.warning("%s: size differs from the index", inst.path)
                return False
            digest = self.archive.checksum_file(inst)
        except (OSError, FastDicomError) as exc:
            self.log.warning("%s cannot be read: %s", getattr(inst, "path", inst), exc)
            return False
        if inst.checksum is None:  # unknown (an index rebuilt without checksums): readable is all we know
            return True
        if digest != inst.checksum:
            self.log.error("%s: checksum differs from the index (corrupted on disk)", inst.path)
            return False
        return True

    # -- reports ---------------------------------------------------------------------------------
    def _address(self, ae: str) -> tuple[str, int] | None:
        if self.peers is None:
            return None
        if callable(self.peers):
            return self.peers(ae)
        return self.peers.get(ae)

    def _deliver(self, t: Transaction) -> None:
        uid = t.transaction_uid
        assert t.failures is not None
        event_type, ds = report_data(uid, t.references, t.failures)
        with self._cond:
            live = self._live.pop(uid, None)
        error = None
        if live is not None and live.outbound.open:
            try:
                status = self._report_on(live.outbound, live.context_id, t.transfer_syntax, event_type, ds)
                if dimse.status_category(status) in (Category.SUCCESS, Category.WARNING):
                    self._reported(uid, "same")
                    return
                error = f"the requestor answered the report with 0x{status:04X}"
            except (NetworkError, FastDicomError) as exc:
                self.log.info("storage commitment %s: the requestor's association ended (%s)", uid, exc)
        address = self._address(t.calling_ae)
        if address is None:
            error = error or f"no address known for AE {t.calling_ae!r} (its association is closed)"
        else:
            try:
                status = self._report_new(t.calling_ae, address, event_type, ds)
                if dimse.status_category(status) in (Category.SUCCESS, Category.WARNING):
                    self._reported(uid, "new")
                    return
                error = f"the requestor answered the report with 0x{status:04X}"
            except (NetworkError, FastDicomError) as exc:
                error = f"report to {t.calling_ae}@{address[0]}:{address[1]} failed: {exc}"
        self._retry(uid, error)

    def _reported(self, uid: str, how: str) -> None:
        self.store.set_reported(uid)
        with self._cond:
            self.stats["reported_" + how] += 1
        self.log.info("storage commitment %s reported (%s association)", uid, how)

    def _retry(self, uid: str, error: str) -> None:
        t = self.store.get(uid)
        if t is None:
            return
        with self._cond:
            self.stats["delivery_failures"] += 1
        attempts = t.attempts + 1
        if attempts >= self.max_attempts:
            self.store.set_abandoned(uid, error)
            with self._cond:
                self.stats["abandoned"] += 1
            self.log.error(
                "storage commitment %s for %s ABANDONED after %d attempts: %s", uid, t.calling_ae, attempts, error
            )
            return
        delay = self.retry_delays[min(attempts - 1, len(self.retry_delays) - 1)]
        self.store.set_attempt(uid, error, time.time() + delay)
        self.log.warning("storage commitment %s not reported (%s); again in %.0f s", uid, error, delay)
        self._schedule(uid, time.time() + delay)

    def _report_on(self, outbound: Any, context_id: int, ts: str | None, event_type: int, ds: Dataset) -> int:
        command = _report_command(event_type)
        answer = outbound.request(
            context_id, command, encode_data(ds, ts or _uid.ImplicitVRLittleEndian), timeout=self.report_timeout
        )
        return int(answer.command.get("Status", 0xFFFF))

    def _report_new(self, ae: str, address: tuple[str, int], event_type: int, ds: Dataset) -> int:
        """The report on an association of ours, where we take the SCP role of the SOP class."""
        assoc = Association.request(
            address[0],
            address[1],
            calling_ae=self.ae_title,
            called_ae=ae,
            contexts=[pdu.PresentationContext(1, STORAGE_COMMITMENT, list(SYNTAXES[:2]))],
            roles=[pdu.RoleSelection(STORAGE_COMMITMENT, False, True)],
            network_timeout=self.network_timeout,
            tls=self.tls,
        )
        try:
            pc = assoc.agreement.contexts.get(1)
            if pc is None:
                raise NetworkError(f"{ae} refused the Storage Commitment SOP Class")
            channel = DimseChannel(assoc)
            command = {**_report_command(event_type), "MessageID": channel.next_message_id()}
            channel.send_message(1, command, encode_data(ds, pc.transfer_syntax or _uid.ImplicitVRLittleEndian))
            while True:
                msg = channel.receive_message(timeout=self.report_timeout)
                if msg.command.get("CommandField") == dimse.N_EVENT_REPORT_RSP:
                    break
            assoc.release()
            return int(msg.command.get("Status", 0xFFFF))
        except BaseException:
            assoc.abort()
            raise


def _report_command(event_type: int) -> dict[str, Any]:
    return {
        "CommandField": dimse.N_EVENT_REPORT_RQ,
        "AffectedSOPClassUID": STORAGE_COMMITMENT,
        "AffectedSOPInstanceUID": STORAGE_COMMITMENT_INSTANCE,
        "EventTypeID": event_type,
    }


# -- SCU -------------------------------------------------------------------------------------------


@dataclass
class CommitResult:
    """One instance of a commitment request, and what the report said of it."""

    sop_class_uid: str | None
    sop_instance_uid: str | None
    #: The path (or name) it was given as.
    source: str | None = None
    committed: bool = False
    #: The Failure Reason of the report (None: committed, or nothing reported about it; see ``error``).
    failure_reason: int | None = None
    #: Why nothing is known: unreadable, the request refused, no report in time.
    error: str | None = None

    @property
    def reason(self) -> str:
        return reason_name(self.failure_reason) if self.failure_reason is not None else (self.error or "")

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "sop_class_uid": self.sop_class_uid,
            "sop_instance_uid": self.sop_instance_uid,
            "committed": self.committed,
            "failure_reason": None if self.failure_reason is None else f"0x{self.failure_reason:04X}",
            "reason": self.reason or None,
        }


@dataclass
class CommitReport:
    """What :func:`commit` learnt."""

    transaction_uid: str
    results: list[CommitResult] = field(default_factory=list)
    #: The N-ACTION-RSP status (None: no answer).
    action_status: int | None = None
    #: The report's event type (1 all committed, 2 some failed; None: no report came).
    event_type: int | None = None
    #: Whether the report came on the request's association (else on one the SCP opened to us).
    same_association: bool | None = None
    #: Seconds from sending the N-ACTION to receiving the report.
    seconds: float = 0.0

    @property
    def reported(self) -> bool:
        return self.event_type is not None

    @property
    def committed(self) -> list[CommitResult]:
        return [r for r in self.results if r.committed]

    @property
    def failed(self) -> list[CommitResult]:
        return [r for r in self.results if not r.committed]

    @property
    def ok(self) -> bool:
        return bool(self.results) and not self.failed

    def as_json(self) -> dict[str, Any]:
        return {
            "transaction_uid": self.transaction_uid,
            "action_status": None if self.action_status is None else f"0x{self.action_status:04X}",
            "event_type": self.event_type,
            "same_association": self.same_association,
            "seconds": round(self.seconds, 6),
            "committed": len(self.committed),
            "failed": len(self.failed),
            "results": [r.as_json() for r in self.results],
        }


@dataclass
class _Report:
    """A report received: its event type and the outcome of each instance."""

    event_type: int
    #: By (SOP Class UID, SOP Instance UID): a request may name one instance under two classes.
    committed: set[tuple[str, str]]
    failed: dict[tuple[str, str], int]
    same_association: bool


def _parse_report(command: dict[str, Any], data: bytes | None, ts: str) -> tuple[str | None, _Report | None]:
    if not data:
        return None, None
    ds = decode_data(data, ts)
    committed = {(c, i) for c, i, _ in _pairs(ds, "ReferencedSOPSequence")}
    failed = {
        (c, i): (r if r is not None else FailureReason.PROCESSING_FAILURE)
        for c, i, r in _pairs(ds, "FailedSOPSequence")
    }
    event = int(command.get("EventTypeID") or (SOME_FAILED if failed else ALL_COMMITTED))
    uid = ds.get("TransactionUID")
    return (str(uid) if uid else None), _Report(event, committed, failed, True)


def _report_answer(msg: Message, status: int) -> dict[str, Any]:
    return {
        "CommandField": dimse.N_EVENT_REPORT_RSP,
        "MessageIDBeingRespondedTo": msg.command.get("MessageID", 0),
        "AffectedSOPClassUID": msg.command.get("AffectedSOPClassUID", STORAGE_COMMITMENT),
        "AffectedSOPInstanceUID": msg.command.get("AffectedSOPInstanceUID", STORAGE_COMMITMENT_INSTANCE),
        "EventTypeID": msg.command.get("EventTypeID"),
        "Status": status,
    }


class _ReportReceiver:
    """The SCU's listener service: N-EVENT-REPORT of the Storage Commitment SOP class, for one transaction."""

    commands = frozenset({dimse.N_EVENT_REPORT_RQ})

    def __init__(self, transaction_uid: str) -> None:
        self.transaction_uid = transaction_uid
        self.report: _Report | None = None
        self.done = threading.Event()

    def transfer_syntaxes(self, abstract_syntax: str) -> Collection[str]:
        return SYNTAXES if abstract_syntax == STORAGE_COMMITMENT else ()

    def sink(self, request: Request) -> RequestSink | None:
        return None

    def handle(self, requests: Sequence[Request], respond: Respond) -> None:
        for r in requests:
            status = Status.SUCCESS
            try:
                uid, report = _parse_report(r.command, r.data, r.transfer_syntax)
            except FastDicomError as exc:
                log.warning("unreadable storage commitment report from %s: %s", r.peer.calling_ae, exc)
                uid, report, status = None, None, Status.PROCESSING_FAILURE
            respond(r, response(r, status, EventTypeID=r.command.get("EventTypeID")))
            if report is not None and uid == self.transaction_uid:
                report.same_association = False
                self.report = report
                self.done.set()
            elif report is not None:
                log.info("storage commitment report for another transaction (%s) ignored", uid)

    def close(self) -> None:
        pass


def _references(instances: Any) -> tuple[list[CommitResult], list[tuple[str, str]]]:
    """The results to fill (one per instance, in order) and the (class, instance) pairs to request."""
    from .store import _expand  # the SCU's one way of reading instances (paths, folders, Datasets)

    if isinstance(instances, (str, os.PathLike, Dataset)):
        instances = [instances]
    results: list[CommitResult] = []
    refs: list[tuple[str, str]] = []
    for s in instances:
        if isinstance(s, tuple) and len(s) == 2 and all(isinstance(x, str) for x in s):
            results.append(CommitResult(str(s[0]), str(s[1])))
            refs.append((str(s[0]), str(s[1])))
            continue
        for name, learn, source in _expand([s]):
            try:
                inst = learn(source)
            except (FastDicomError, OSError) as exc:
                results.append(CommitResult(None, None, name, error=f"unreadable: {exc}"))
                continue
            results.append(CommitResult(inst.sop_class_uid, inst.sop_instance_uid, name))
            refs.append((inst.sop_class_uid, inst.sop_instance_uid))
    return results, refs


def commit(
    address: str,
    instances: Any,
    *,
    timeout: float = 60.0,
    listen: int | None = None,
    listen_host: str = "",
    calling_ae: str = "FASTDICOM",
    transaction_uid: str | None = None,
    network_timeout: float = 30.0,
    tls: ssl.SSLContext | None = None,
    user_identity: pdu.UserIdentity | None = None,
) -> CommitReport:
    """Ask ``address`` (``AET@host:port``) to commit ``instances``; return each one committed or failed.

    ``instances``: paths (files, folders), Datasets, or ``(sop_class_uid, sop_instance_uid)`` pairs.
    The report is awaited up to ``timeout`` seconds on the same association, or with ``listen`` (a port,
    0 for any) as an SCP on our own port, named ``calling_ae``, that the peer opens an association to
    (the request's association is then released at once). Instances the report did not mention, or all
    of them when no report came in time, are failed with ``error`` saying so. Raises NetworkError when
    no association could be made.
    """
    called, host, port = parse_address(address)
    results, refs = _references(instances)
    uid = transaction_uid or f"2.25.{uuid.uuid4().int}"
    out = CommitReport(uid, results)
    if not refs:
        return out
    receiver: _ReportReceiver | None = None
    server: AssociationServer | None = None
    if listen is not None:
        receiver = _ReportReceiver(uid)
        server = AssociationServer(
            Dispatcher([receiver], requestor_scp={STORAGE_COMMITMENT}),
            AcceptPolicy(ae_title=calling_ae, limits=Limits(max_associations=4, network_timeout=network_timeout)),
            port=listen,
            host=listen_host,
        ).start()
    try:
        started = time.monotonic()
        report = _request(
            out, called, host, port, refs, uid, receiver, timeout, calling_ae, network_timeout, tls, user_identity
        )
        out.seconds = time.monotonic() - started
    finally:
        if server is not None:
            server.stop()
    for r in results:
        if r.sop_instance_uid is None:
            continue
        if out.action_status is None or out.action_status != Status.SUCCESS:
            r.error = r.error or (
                "no answer to the request"
                if out.action_status is None
                else f"request refused: 0x{out.action_status:04X}"
            )
        elif report is None:
            r.error = f"no report within {timeout:g} s"
        elif (r.sop_class_uid, r.sop_instance_uid) in report.failed:
            r.failure_reason = int(report.failed[r.sop_class_uid, r.sop_instance_uid])  # type: ignore[index]
        elif (r.sop_class_uid, r.sop_instance_uid) in report.committed:
            r.committed = True
        else:
            r.error = "not in the report"
    if report is not None:
        out.event_type = report.event_type
        out.same_association = report.same_association
    return out


def _request(
    out: CommitReport,
    called: str,
    host: str,
    port: int,
    refs: list[tuple[str, str]],
    uid: str,
    receiver: _ReportReceiver | None,
    timeout: float,
    calling_ae: str,
    network_timeout: float,
    tls: ssl.SSLContext | None,
    user_identity: pdu.UserIdentity | None,
) -> _Report | None:
    """Send the N-ACTION; return the report (from the association or the receiver), None if none came."""
    assoc = Association.request(
        host,
        port,
        calling_ae=calling_ae,
        called_ae=called,
        contexts=[pdu.PresentationContext(1, STORAGE_COMMITMENT, list(SYNTAXES[:2]))],
        network_timeout=network_timeout,
        tls=tls,
        user_identity=user_identity,
    )
    deadline = time.monotonic() + timeout
    try:
        pc = assoc.agreement.contexts.get(1)
        if pc is None:
            raise NetworkError("the peer refused the Storage Commitment Push Model SOP Class")
        ts = pc.transfer_syntax or _uid.ImplicitVRLittleEndian
        channel = DimseChannel(assoc)
        mid = channel.next_message_id()
        command = {
            "CommandField": dimse.N_ACTION_RQ,
            "MessageID": mid,
            "RequestedSOPClassUID": STORAGE_COMMITMENT,
            "RequestedSOPInstanceUID": STORAGE_COMMITMENT_INSTANCE,
            "ActionTypeID": REQUEST_COMMITMENT,
        }
        channel.send_message(1, command, encode_data(request_data(uid, refs), ts))
        report: _Report | None = None
        while True:
            msg = channel.receive_message(timeout=max(0.1, deadline - time.monotonic()))
            field_ = msg.command.get("CommandField")
            if field_ == dimse.N_ACTION_RSP and msg.command.get("MessageIDBeingRespondedTo") == mid:
                out.action_status = int(msg.command.get("Status", 0xFFFF))
                break
            if field_ == dimse.N_EVENT_REPORT_RQ:  # a report before the answer (allowed: it is another message)
                report = _answer_report(channel, msg, ts, uid) or report
        if out.action_status != Status.SUCCESS or receiver is not None:
            assoc.release()
            if out.action_status == Status.SUCCESS and receiver is not None and report is None:
                receiver.done.wait(max(0.0, deadline - time.monotonic()))
                return receiver.report
            return report
        while report is None:
            left = deadline - time.monotonic()
            if left <= 0:
                assoc.abort()
                return None
            try:
                msg = channel.receive_message(timeout=left)
            except AssociationAborted:
                return None  # (a timeout aborts the association)
            if msg.command.get("CommandField") == dimse.N_EVENT_REPORT_RQ:
                report = _answer_report(channel, msg, ts, uid)
        assoc.release()
        return report
    except ReleaseRequested:
        assoc.answer_release()
        return None
    except BaseException:
        assoc.abort()
        raise


def _answer_report(channel: DimseChannel, msg: Message, ts: str, uid: str) -> _Report | None:
    """Answer an N-EVENT-REPORT-RQ received on the request's association; the report if it is ours."""
    try:
        got, report = _parse_report(msg.command, msg.data, ts)
        status = Status.SUCCESS
    except FastDicomError as exc:
        log.warning("unreadable storage commitment report: %s", exc)
        got, report, status = None, None, Status.PROCESSING_FAILURE
    channel.send_message(msg.context_id, _report_answer(msg, status))
    return report if got == uid else None
