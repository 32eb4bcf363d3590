"""Query/Retrieve, SCU role (PS3.4 Annex C): :func:`find`, :func:`move` and :func:`get`.

- :func:`find` sends one C-FIND and returns :class:`FindResponses`, an
  iterator that yields each pending answer as a :class:`Dataset` as it
  arrives (values decoded in the answer's own Specific Character Set).
  Closing it before the final response sends C-CANCEL and reads on to the
  final status, so the association ends cleanly.
- :func:`move` sends one C-MOVE and returns a :class:`RetrieveResult` (the
  sub-operation counts and the Failed SOP Instance UID List). When the
  destination is our own Storage SCP (``receiver=``), it first lists the
  expected instances with IMAGE-level C-FINDs, then matches each arriving
  C-STORE by its Move Originator AE Title and Message ID (0000,1030/1031) and
  reports every expected instance that did not arrive: some archives answer
  the final C-MOVE status before the last object, some report success while
  objects went missing.
- :func:`get` lists the instances (IMAGE level) to learn their SOP classes,
  proposes one storage context per class with the SCP role (at most 127
  beside the C-GET context), and stores what arrives durably through the
  archive floor (:class:`~fastdicom.archive.FolderArchive`: fsync and atomic
  rename before the C-STORE is answered with success) or hands it to a
  callback. More classes than one association holds are split over several
  associations, each retrieving its classes' instances by UID.

The listing walks the hierarchy one level at a time (study, its series, their
instances), as hierarchical queries require: only the unique key of each
level above the one asked is given, as a single value.

The Q/R SOP class UIDs and levels here duplicate the SCP side's for now.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import _backends
from ..archive import FolderArchive, Reason
from ..dataset.dataset import Dataset, tag_from_key
from ..dataset.write import encode_dataset, part10_header
from ..dictionary import uid as _uid
from ..dictionary._uids import UIDS
from ..errors import FastDicomError
from ..net import dimse, pdu
from ..net.association import DEFAULT_MAX_PDU, Association, NetworkError
from ..net.dimse import Category, DimseChannel, Message, Status, status_category
from .base import parse_address, response, sop_class
from .storage import STATUS, StorageService, StoreStatus

log = logging.getLogger("fastdicom.qr")

LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")
#: The unique key of each level (PS3.4 C.6.1.1, C.6.2.1).
UNIQUE_KEYS = {
    "PATIENT": "PatientID",
    "STUDY": "StudyInstanceUID",
    "SERIES": "SeriesInstanceUID",
    "IMAGE": "SOPInstanceUID",
}
#: Information model -> (its levels, FIND, MOVE, GET SOP class UIDs).
MODELS: dict[str, tuple[tuple[str, ...], str, str, str]] = {
    "patient": (
        LEVELS,
        sop_class("PatientRootQueryRetrieveInformationModelFind"),
        sop_class("PatientRootQueryRetrieveInformationModelMove"),
        sop_class("PatientRootQueryRetrieveInformationModelGet"),
    ),
    "study": (
        LEVELS[1:],
        sop_class("StudyRootQueryRetrieveInformationModelFind"),
        sop_class("StudyRootQueryRetrieveInformationModelMove"),
        sop_class("StudyRootQueryRetrieveInformationModelGet"),
    ),
}
#: What a Q/R context proposes.
SYNTAXES = [_uid.ExplicitVRLittleEndian, _uid.ImplicitVRLittleEndian]
#: Storage contexts per C-GET association (the 128th context is the C-GET one).
MAX_STORAGE_CONTEXTS = 127

#: Storage classes proposed for instances whose SOP Class UID the peer's C-FIND did not return (dcmqrscp
#: returns none): the common ones, by PS3.6 keyword.
FALLBACK_STORAGE = tuple(
    sop_class(k)
    for k in (
        "CTImageStorage",
        "EnhancedCTImageStorage",
        "MRImageStorage",
        "EnhancedMRImageStorage",
        "ComputedRadiographyImageStorage",
        "DigitalXRayImageStorageForPresentation",
        "DigitalXRayImageStorageForProcessing",
        "DigitalMammographyXRayImageStorageForPresentation",
        "UltrasoundImageStorage",
        "UltrasoundMultiFrameImageStorage",
        "SecondaryCaptureImageStorage",
        "MultiFrameGrayscaleByteSecondaryCaptureImageStorage",
        "MultiFrameGrayscaleWordSecondaryCaptureImageStorage",
        "MultiFrameTrueColorSecondaryCaptureImageStorage",
        "NuclearMedicineImageStorage",
        "PositronEmissionTomographyImageStorage",
        "XRayAngiographicImageStorage",
        "XRayRadiofluoroscopicImageStorage",
        "RTImageStorage",
        "RTDoseStorage",
        "RTStructureSetStorage",
        "RTPlanStorage",
        "SegmentationStorage",
        "BasicTextSRStorage",
        "EnhancedSRStorage",
        "ComprehensiveSRStorage",
        "KeyObjectSelectionDocumentStorage",
        "GrayscaleSoftcopyPresentationStateStorage",
        "EncapsulatedPDFStorage",
        "VLPhotographicImageStorage",
        "VLWholeSlideMicroscopyImageStorage",
    )
)


class QueryRetrieveError(FastDicomError):
    """A C-FIND, C-MOVE or C-GET ended with a failure status (or an unexpected cancel)."""

    def __init__(self, operation: str, status: int, comment: str | None = None) -> None:
        text = f"{operation} failed with status 0x{status:04X}" + (f": {comment}" if comment else "")
        super().__init__(text)
        self.status, self.error_comment = status, comment


# -- identifiers ---------------------------------------------------------------------------------


def make_identifier(identifier: Dataset | Mapping[Any, Any], level: str | None = None) -> Dataset:
    """An identifier to send: a copy of ``identifier`` (a Dataset, or keyword/tag -> value; None or "" is a
    universal key, a list several values) with its Query/Retrieve Level set (``level`` wins over the one it
    holds; default STUDY). Text that ASCII cannot hold gets Specific Character Set ISO_IR 192 (UTF-8) unless
    one is given."""
    ds = Dataset()
    if isinstance(identifier, Dataset):
        for elem in identifier:
            if elem.tag >> 16 != 0x0002:
                ds.add_new(elem.tag, elem.VR, elem.value)
    else:
        for key, value in identifier.items():
            try:
                tag = tag_from_key(key)
            except KeyError as exc:
                raise ValueError(f"not an attribute: {key!r} ({exc.args[0]})") from None
            if value is None:
                value = ""
            elif isinstance(value, (list, tuple)):
                value = [str(v) for v in value]
            ds[tag] = value
    if level is None:
        level = str(ds.get("QueryRetrieveLevel") or "STUDY")
    level = level.strip().upper()
    if level not in LEVELS:
        raise ValueError(f"Query/Retrieve Level {level!r} is not one of {', '.join(LEVELS)}")
    ds.QueryRetrieveLevel = level
    if "SpecificCharacterSet" not in ds and _needs_utf8(ds):
        ds.SpecificCharacterSet = "ISO_IR 192"
    return ds


def _needs_utf8(ds: Dataset) -> bool:
    for elem in ds:
        value = elem.value
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and not v.isascii() for v in values):
            return True
    return False


def _encode(ds: Dataset, transfer_syntax: str) -> bytes:
    little, explicit, _ = _uid.encoding_of(transfer_syntax)
    return b"".join(bytes(c) for c in encode_dataset(ds, little, explicit))


def _decode(data: bytes, transfer_syntax: str) -> Dataset:
    little, explicit, _ = _uid.encoding_of(transfer_syntax)
    mod = _backends.resolve("parse")[1]
    return Dataset._from_buffer(memoryview(data), 0, len(data), little, explicit, mod)


def _levels(model: str) -> tuple[str, ...]:
    try:
        return MODELS[model][0]
    except KeyError:
        raise ValueError(f"model must be 'patient' or 'study', not {model!r}") from None


# -- associations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    """Where and how to reach a Q/R SCP (what every call here takes)."""

    address: str
    calling_ae: str = "FASTDICOM"
    timeout: float = 60.0
    max_pdu: int = DEFAULT_MAX_PDU
    tls: ssl.SSLContext | None = None
    user_identity: pdu.UserIdentity | None = None

    def open(
        self, contexts: list[pdu.PresentationContext], roles: list[pdu.RoleSelection] | None = None
    ) -> DimseChannel:
        called, host, port = parse_address(self.address)
        assoc = Association.request(
            host,
            port,
            calling_ae=self.calling_ae,
            called_ae=called,
            contexts=contexts,
            roles=roles,
            user_identity=self.user_identity,
            max_pdu=self.max_pdu,
            network_timeout=self.timeout,
            tls=self.tls,
        )
        return DimseChannel(assoc)


def _accepted(channel: DimseChannel, abstract_syntax: str) -> tuple[int, str]:
    """The accepted context for ``abstract_syntax`` and its transfer syntax (NetworkError when refused)."""
    for cid, pc in channel.agreement.contexts.items():
        if pc.abstract_syntax == abstract_syntax and pc.transfer_syntax:
            return cid, pc.transfer_syntax
    name = UIDS.get(abstract_syntax, (abstract_syntax,))[0]
    raise NetworkError(f"the peer refused {name}")


def _check_response(channel: DimseChannel, msg: Message, command_field: int, message_id: int) -> None:
    cmd = msg.command
    if cmd.get("CommandField") != command_field or cmd.get("MessageIDBeingRespondedTo") != message_id:
        channel.abort()
        raise dimse.DIMSEError(
            f"expected a response 0x{command_field:04X} to message {message_id}, "
            f"got 0x{int(cmd.get('CommandField', 0)):04X} to {cmd.get('MessageIDBeingRespondedTo')}"
        )


# -- C-FIND --------------------------------------------------------------------------------------


class FindResponses:
    """The answers of one C-FIND, as they arrive (an iterator of :class:`Dataset`).

    After the last answer, :attr:`status` holds the final status. A failure
    status raises :class:`QueryRetrieveError` from the iteration (after the
    answers that came before it). :meth:`close` (or leaving a ``with`` block)
    before the end sends C-CANCEL and reads on to the final status.
    """

    def __init__(
        self, channel: DimseChannel, sop_class_uid: str, identifier: Dataset, *, owns: bool, timeout: float
    ) -> None:
        self.channel = channel
        self._owns = owns
        self._timeout = timeout
        self.context_id, self.transfer_syntax = _accepted(channel, sop_class_uid)
        self.message_id = channel.next_message_id()
        #: Final status (None while answers may still come).
        self.status: int | None = None
        self.error_comment: str | None = None
        #: Pending answers received so far.
        self.count = 0
        #: Whether we sent C-CANCEL.
        self.cancelled = False
        self.identifier = identifier
        channel.send_message(
            self.context_id,
            {
                "CommandField": dimse.C_FIND_RQ,
                "MessageID": self.message_id,
                "AffectedSOPClassUID": sop_class_uid,
                "Priority": 0,
            },
            _encode(identifier, self.transfer_syntax),
        )

    def __iter__(self) -> FindResponses:
        return self

    def __enter__(self) -> FindResponses:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _receive(self) -> Message:
        msg = self.channel.receive_message(timeout=self._timeout)
        _check_response(self.channel, msg, dimse.C_FIND_RSP, self.message_id)
        return msg

    def _final(self, msg: Message) -> None:
        self.status = int(msg.command.get("Status", 0xFFFF))
        self.error_comment = msg.command.get("ErrorComment")
        if self._owns:
            self.channel.release()

    def __next__(self) -> Dataset:
        while self.status is None:
            try:
                msg = self._receive()
            except BaseException:
                self.status = -1
                self.channel.abort()
                raise
            status = int(msg.command.get("Status", 0xFFFF))
            if status_category(status) is Category.PENDING:
                if msg.data is None:
                    continue  # a pending answer without an identifier: nothing to give
                self.count += 1
                try:
                    return _decode(msg.data, self.transfer_syntax)
                except FastDicomError:
                    self.status = -1
                    self.channel.abort()
                    raise
            self._final(msg)
            category = status_category(status)
            if category is Category.FAILURE or (category is Category.CANCEL and not self.cancelled):
                raise QueryRetrieveError("C-FIND", status, self.error_comment)
        raise StopIteration

    def cancel(self) -> None:
        """Send C-CANCEL (if answers may still come) and read on to the final status."""
        if self.status is not None:
            return
        self.cancelled = True
        try:
            self.channel.send_message(
                self.context_id, {"CommandField": dimse.C_CANCEL_RQ, "MessageIDBeingRespondedTo": self.message_id}
            )
            while self.status is None:
                msg = self._receive()
                if status_category(int(msg.command.get("Status", 0xFFFF))) is not Category.PENDING:
                    self._final(msg)
        except BaseException:
            self.status = -1
            self.channel.abort()
            raise

    def close(self) -> None:
        """Cancel if still running; release the association this opened."""
        if self.status is None:
            with contextlib.suppress(FastDicomError):
                self.cancel()

    def __del__(self) -> None:
        if getattr(self, "status", 0) is None and self._owns:
            with contextlib.suppress(Exception):
                self.close()


def find(
    address: str,
    identifier: Dataset | Mapping[Any, Any],
    level: str | None = None,
    model: str = "study",
    *,
    calling_ae: str = "FASTDICOM",
    timeout: float = 60.0,
    tls: ssl.SSLContext | None = None,
    user_identity: pdu.UserIdentity | None = None,
    max_pdu: int = DEFAULT_MAX_PDU,
) -> FindResponses:
    """C-FIND on ``address`` (``"AET@host:port"``): an iterator of the answers, streamed as they arrive.

    Examples
    --------
    >>> for ds in find("PACS@10.0.0.1:104", {"PatientID": "123", "StudyDate": "20240101-20240131",
    ...                "StudyInstanceUID": None}, level="STUDY"):  # doctest: +SKIP
    ...     print(ds.StudyInstanceUID)
    """
    _levels(model)
    ident = make_identifier(identifier, level)
    if ident.QueryRetrieveLevel not in _levels(model):
        raise ValueError(f"level {ident.QueryRetrieveLevel} is not in the {model} root model")
    peer = Peer(address, calling_ae, timeout, max_pdu, tls, user_identity)
    find_uid = MODELS[model][1]
    channel = peer.open([pdu.PresentationContext(1, find_uid, list(SYNTAXES))])
    try:
        return FindResponses(channel, find_uid, ident, owns=True, timeout=timeout)
    except BaseException:
        channel.abort()
        raise


# -- listing the instances (IMAGE level, walking the hierarchy) ----------------------------------


@dataclass(frozen=True)
class InstanceRef:
    """One instance a C-FIND listed: its place in the hierarchy, its SOP class (None when not asked or not
    returned) and the SOP Classes in Study (0008,0062) its study's answer gave (empty when none)."""

    patient_id: str | None
    study: str
    series: str
    sop_instance: str
    sop_class: str | None
    classes_in_study: tuple[str, ...] = ()


def _text(ds: Dataset, keyword: str) -> str | None:
    v = ds.get(keyword)
    return None if v is None or str(v) == "" else str(v)


def _classes(ds: Dataset) -> tuple[str, ...]:
    v = ds.get("SOPClassesInStudy")
    values = v if isinstance(v, list) else [] if v is None else [v]
    return tuple(str(x) for x in values if str(x))


def list_instances(
    channel: DimseChannel,
    model: str,
    identifier: Dataset,
    *,
    instance_classes: bool = False,
    timeout: float = 60.0,
) -> list[InstanceRef]:
    """Every instance ``identifier`` selects, by hierarchical C-FINDs down to the IMAGE level.

    Every STUDY-level query asks for SOP Classes in Study; the IMAGE-level ones ask for each SOP Class UID only
    where a study did not answer it, or with ``instance_classes`` (Orthanc reads every file for an IMAGE-level
    SOP Class UID: 140 ms for 300 instances, against 3 ms for the study's list).
    """
    levels = _levels(model)
    find_uid = MODELS[model][1]
    level = str(identifier.QueryRetrieveLevel)
    # The entities the identifier matches at its own level (its keys matched as given).
    top = make_identifier(identifier, level)
    for lv in levels[: levels.index(level) + 1]:
        if UNIQUE_KEYS[lv] not in top:
            top[UNIQUE_KEYS[lv]] = ""
    if level == "STUDY" and "SOPClassesInStudy" not in top:
        top.SOPClassesInStudy = ""
    if level == "IMAGE" and "SOPClassUID" not in top:
        top.SOPClassUID = ""
    study_classes: dict[str, tuple[str, ...]] = {}
    entities = [
        _entity(ds, levels, level, study_classes)
        for ds in FindResponses(channel, find_uid, top, owns=False, timeout=timeout)
    ]
    for lv in levels[levels.index(level) + 1 :]:
        below: list[dict[str, str | None]] = []
        for parent in entities:
            q = Dataset()
            q.QueryRetrieveLevel = lv
            for upper in levels[: levels.index(lv)]:
                q[UNIQUE_KEYS[upper]] = parent.get(UNIQUE_KEYS[upper]) or ""
            q[UNIQUE_KEYS[lv]] = ""
            if lv == "STUDY":
                q.SOPClassesInStudy = ""
            if lv == "IMAGE" and (instance_classes or not study_classes.get(parent.get("StudyInstanceUID") or "")):
                q.SOPClassUID = ""
            for ds in FindResponses(channel, find_uid, q, owns=False, timeout=timeout):
                child = _entity(ds, levels, lv, study_classes)
                for upper in levels[: levels.index(lv)]:
                    child[UNIQUE_KEYS[upper]] = child.get(UNIQUE_KEYS[upper]) or parent.get(UNIQUE_KEYS[upper])
                below.append(child)
        entities = below
    return [
        InstanceRef(
            e.get("PatientID"),
            e.get("StudyInstanceUID") or "",
            e.get("SeriesInstanceUID") or "",
            str(e["SOPInstanceUID"]),
            e.get("SOPClassUID"),
            study_classes.get(e.get("StudyInstanceUID") or "", ()),
        )
        for e in entities
        if e.get("SOPInstanceUID")
    ]


def _entity(
    ds: Dataset, levels: tuple[str, ...], level: str, study_classes: dict[str, tuple[str, ...]]
) -> dict[str, str | None]:
    """The unique keys (and SOP Class, Patient ID) of one answer; a study's SOP classes go to ``study_classes``."""
    keys = [UNIQUE_KEYS[lv] for lv in levels[: levels.index(level) + 1]] + ["SOPClassUID", "PatientID"]
    out = {k: _text(ds, k) for k in keys}
    if level == "STUDY" and out.get("StudyInstanceUID"):
        study_classes[str(out["StudyInstanceUID"])] = _classes(ds)
    return out


# -- C-MOVE and C-GET ------------------------------------------------------------------------------


@dataclass
class RetrieveResult:
    """What a C-MOVE or C-GET did."""

    #: The final status of the (last) C-MOVE/C-GET.
    status: int | None = None
    error_comment: str | None = None
    completed: int = 0
    failed: int = 0
    warning: int = 0
    #: Failed SOP Instance UID List (0008,0058) of the final responses.
    failed_uids: list[str] = field(default_factory=list)
    #: The instances the IMAGE-level listing found (None: not listed).
    expected: list[InstanceRef] | None = None
    #: SOP Instance UIDs received by our side (C-GET; C-MOVE with ``receiver``).
    received: set[str] = field(default_factory=set)
    #: C-MOVE with ``receiver``: received without our AE title as Move Originator: none at all (matched by the
    #: listed SOP Instance UIDs) or the peer's own title with our Message ID (pynetdicom 3.0.4 sends that).
    unattributed: set[str] = field(default_factory=set)
    #: Expected instances that never arrived (listed, not received).
    missing: list[str] = field(default_factory=list)
    #: Where each received instance is stored (C-GET into a folder), by SOP Instance UID.
    stored: dict[str, str] = field(default_factory=dict)
    #: Received but not stored (SOP Instance UID -> why), for C-GET.
    refused: dict[str, str] = field(default_factory=dict)
    associations: int = 0
    bytes: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Success, nothing failed, nothing missing."""
        return self.status == Status.SUCCESS and not self.failed and not self.missing and not self.refused

    def _add_final(self, cmd: dict[str, Any], data: Dataset | None) -> None:
        self.status = int(cmd.get("Status", 0xFFFF))
        self.error_comment = cmd.get("ErrorComment")
        self.completed += int(cmd.get("NumberOfCompletedSuboperations") or 0)
        self.failed += int(cmd.get("NumberOfFailedSuboperations") or 0)
        self.warning += int(cmd.get("NumberOfWarningSuboperations") or 0)
        if data is not None:
            uids = data.get("FailedSOPInstanceUIDList")
            if uids:
                self.failed_uids += [str(u) for u in (uids if isinstance(uids, list) else [uids])]

    def as_json(self) -> dict[str, Any]:
        return {
            "status": None if self.status is None else f"0x{self.status:04X}",
            "error_comment": self.error_comment,
            "completed": self.completed,
            "failed": self.failed,
            "warning": self.warning,
            "failed_uids": self.failed_uids,
            "expected": None if self.expected is None else len(self.expected),
            "received": len(self.received),
            "missing": self.missing,
            "refused": self.refused,
            "associations": self.associations,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "ok": self.ok,
        }


class _Arrivals:
    """C-STOREs a Storage SCP of ours committed for one C-MOVE (by Move Originator AE Title and Message ID)."""

    def __init__(self, originator: str, message_id: int, peer: str, expected: set[str] | None) -> None:
        self.originator, self.message_id, self.peer = originator, message_id, peer
        self.expected = expected
        self.received: set[str] = set()
        #: Arrived without our AE title as Move Originator: none at all (matched by SOP Instance UID, when listed),
        #: or the moving peer's own title with our Message ID (pynetdicom 3.0.4 names itself).
        self.unattributed: set[str] = set()
        self.cond = threading.Condition()

    def __call__(self, path: str | None, command: dict, info: Any) -> None:
        uid = str(command.get("AffectedSOPInstanceUID", ""))
        ae = command.get("MoveOriginatorApplicationEntityTitle")
        mid = command.get("MoveOriginatorMessageID")
        ae = None if ae is None else str(ae).strip()
        with self.cond:
            if ae == self.originator and mid == self.message_id:
                self.received.add(uid)
            elif ae == self.peer and mid == self.message_id and info.calling_ae.strip() == self.peer:
                self.unattributed.add(uid)
            elif ae is None and mid is None and (self.expected is None or uid in self.expected):
                self.unattributed.add(uid)
            else:
                return  # another C-MOVE's object (or a plain C-STORE)
            self.cond.notify_all()

    def wait_for(self, expected: set[str], timeout: float) -> None:
        end = time.monotonic() + timeout
        with self.cond:
            while not expected <= (self.received | self.unattributed):
                left = end - time.monotonic()
                if left <= 0:
                    return
                self.cond.wait(left)


class _Fanout:
    """A Storage service's ``on_store``: the hook it had, then every watcher registered by a :func:`move`."""

    def __init__(self, previous: Callable[..., Any] | None) -> None:
        self.previous = previous
        self.watchers: list[_Arrivals] = []
        self.lock = threading.Lock()

    def __call__(self, path: str | None, command: dict, info: Any) -> None:
        with self.lock:
            watchers = list(self.watchers)
        for w in watchers:
            w(path, command, info)
        if self.previous is not None:
            self.previous(path, command, info)


def _storage_service(receiver: Any) -> StorageService:
    service = getattr(receiver, "storage", receiver)
    if not isinstance(service, StorageService):
        raise TypeError("receiver must be a StorageSCP (or a server with a .storage StorageService)")
    if service.notify is None:
        raise TypeError("the receiver's storage service has no notifier: it cannot report arrivals")
    return service


@contextlib.contextmanager
def _watching(receiver: Any, arrivals: _Arrivals) -> Iterator[None]:
    service = _storage_service(receiver)
    fan = service.on_store
    if not isinstance(fan, _Fanout):
        fan = _Fanout(fan)
        service.on_store = fan
    with fan.lock:
        fan.watchers.append(arrivals)
    try:
        yield
    finally:
        with fan.lock:
            fan.watchers.remove(arrivals)


def _retrieve_identifier(identifier: Dataset | Mapping[Any, Any], level: str | None, model: str) -> Dataset:
    ident = make_identifier(identifier, level)
    if ident.QueryRetrieveLevel not in _levels(model):
        raise ValueError(f"level {ident.QueryRetrieveLevel} is not in the {model} root model")
    return ident


def move(
    address: str,
    identifier: Dataset | Mapping[Any, Any],
    destination: str,
    *,
    level: str | None = None,
    model: str = "study",
    receiver: Any = None,
    arrival_timeout: float = 30.0,
    calling_ae: str = "FASTDICOM",
    timeout: float = 60.0,
    tls: ssl.SSLContext | None = None,
    user_identity: pdu.UserIdentity | None = None,
    max_pdu: int = DEFAULT_MAX_PDU,
    on_pending: Callable[[dict[str, Any]], Any] | None = None,
    cancel: threading.Event | None = None,
) -> RetrieveResult:
    """C-MOVE what ``identifier`` selects to the AE ``destination``; the counts and failed UIDs.

    ``receiver``: our own :class:`~fastdicom.services.storage.StorageSCP` that
    the peer knows as ``destination``. The instances are then listed first
    (IMAGE-level C-FIND), each C-STORE it commits is matched by Move
    Originator AE Title (our ``calling_ae``) and Message ID, the wait for
    late objects after the final response lasts up to ``arrival_timeout``
    seconds, and :attr:`RetrieveResult.missing` names every listed instance
    that did not arrive. ``on_pending(command)`` sees each pending response;
    setting ``cancel`` (from any thread, or from ``on_pending``) sends C-CANCEL.
    """
    t0 = time.perf_counter()
    ident = _retrieve_identifier(identifier, level, model)
    _, find_uid, move_uid, _ = MODELS[model]
    peer = Peer(address, calling_ae, timeout, max_pdu, tls, user_identity)
    contexts = [pdu.PresentationContext(1, move_uid, list(SYNTAXES))]
    if receiver is not None:
        _storage_service(receiver)
        contexts.append(pdu.PresentationContext(3, find_uid, list(SYNTAXES)))
    channel = peer.open(contexts)
    result = RetrieveResult(associations=1)
    try:
        if receiver is not None:
            try:
                result.expected = list_instances(channel, model, ident, timeout=timeout)
            except (QueryRetrieveError, NetworkError) as exc:
                if not channel.association.is_established:
                    raise
                log.warning("C-MOVE: cannot list the instances first (%s); missing ones cannot be named", exc)
        cid, ts = _accepted(channel, move_uid)
        mid = channel.next_message_id()
        listed = None if result.expected is None else {i.sop_instance for i in result.expected}
        arrivals = _Arrivals(calling_ae.strip(), mid, channel.agreement.called_ae.strip(), listed)
        watch = _watching(receiver, arrivals) if receiver is not None else contextlib.nullcontext()
        with watch:
            channel.send_message(
                cid,
                {
                    "CommandField": dimse.C_MOVE_RQ,
                    "MessageID": mid,
                    "AffectedSOPClassUID": move_uid,
                    "Priority": 0,
                    "MoveDestination": destination,
                },
                _encode(ident, ts),
            )
            _until_final(channel, dimse.C_MOVE_RSP, (cid, mid), ts, result, timeout, on_pending, cancel)
            channel.release()
            if receiver is not None:
                if listed is not None:
                    arrivals.wait_for(listed, arrival_timeout)
                else:
                    _wait_count(arrivals, result.completed + result.warning, arrival_timeout)
                with arrivals.cond:
                    result.received = set(arrivals.received | arrivals.unattributed)
                    result.unattributed = set(arrivals.unattributed)
                    if arrivals.unattributed:
                        log.warning(
                            "C-MOVE: %d objects arrived without our AE title as Move Originator (none, or the "
                            "peer's own); matched by Message ID or SOP Instance UID",
                            len(arrivals.unattributed),
                        )
                if result.expected is not None:
                    result.missing = [i.sop_instance for i in result.expected if i.sop_instance not in result.received]
    except BaseException:
        channel.abort()
        raise
    result.seconds = time.perf_counter() - t0
    return result


def _wait_count(arrivals: _Arrivals, count: int, timeout: float) -> None:
    end = time.monotonic() + timeout
    with arrivals.cond:
        while len(arrivals.received | arrivals.unattributed) < count:
            left = end - time.monotonic()
            if left <= 0:
                return
            arrivals.cond.wait(left)


#: ``callback(dataset, command) -> status`` (None is success) for :func:`get` without a folder.
GetCallback = Callable[[Dataset, dict[str, Any]], "int | None"]


def get(
    address: str,
    identifier: Dataset | Mapping[Any, Any],
    *,
    into: str | GetCallback,
    level: str | None = None,
    model: str = "study",
    transfer_syntaxes: Iterable[str] | None = None,
    sop_classes: Iterable[str] | None = None,
    duplicates: str = "overwrite",
    max_contexts: int = MAX_STORAGE_CONTEXTS,
    calling_ae: str = "FASTDICOM",
    timeout: float = 60.0,
    tls: ssl.SSLContext | None = None,
    user_identity: pdu.UserIdentity | None = None,
    max_pdu: int = DEFAULT_MAX_PDU,
    on_pending: Callable[[dict[str, Any]], Any] | None = None,
    cancel: threading.Event | None = None,
) -> RetrieveResult:
    """C-GET what ``identifier`` selects, storing each object into the folder ``into`` (durably, as
    ``<Study>/<Series>/<SOP>.dcm``) or handing it to ``into(dataset, command)``.

    The storage contexts (one per SOP class, SCP role proposed) come from an
    IMAGE-level listing (``sop_classes`` skips it); instances whose class the
    listing did not say get :data:`FALLBACK_STORAGE`. With more classes than
    ``max_contexts`` (127: the 128th context is the C-GET one) the retrieval
    is split over associations, each asking for its classes' instances by
    UID (when the listing left some classes unknown, it cannot be split: the
    first ``max_contexts`` classes are proposed and the rest fail).
    ``transfer_syntaxes``: what each storage context proposes (default
    Explicit and Implicit VR Little Endian). Setting ``cancel`` sends
    C-CANCEL; the objects already stored stay (and are reported).
    """
    t0 = time.perf_counter()
    ident = _retrieve_identifier(identifier, level, model)
    _, find_uid, _, get_uid = MODELS[model]
    peer = Peer(address, calling_ae, timeout, max_pdu, tls, user_identity)
    result = RetrieveResult()
    syntaxes = list(transfer_syntaxes or SYNTAXES)
    if not 1 <= max_contexts <= MAX_STORAGE_CONTEXTS:
        raise ValueError(f"max_contexts must be 1 to {MAX_STORAGE_CONTEXTS}")
    if sop_classes is not None:
        classes = list(dict.fromkeys(sop_classes))
    else:
        result.expected, classes = _listing(peer, model, ident, result, timeout, False)
        if len(classes) > max_contexts and any(i.sop_class is None for i in result.expected):
            # Split by class: each instance's class is needed (the studies' lists were enough until now).
            result.expected, classes = _listing(peer, model, ident, result, timeout, True)
    archive = FolderArchive(into, duplicates=duplicates) if isinstance(into, str) else None
    try:
        groups = [classes[k : k + max_contexts] for k in range(0, len(classes), max_contexts)] or [[]]
        if len(groups) > 1 and (result.expected is None or any(i.sop_class is None for i in result.expected)):
            log.warning("C-GET: %d SOP classes, some unknown: proposing the first %d only", len(classes), max_contexts)
            groups = groups[:1]
        for group in groups:
            if len(groups) == 1:
                requests = [ident]
            else:
                requests = _by_uid(result.expected or [], set(group), model)
                if not requests:
                    continue
            contexts = [pdu.PresentationContext(1, get_uid, list(SYNTAXES))]
            contexts += [pdu.PresentationContext(3 + 2 * k, c, list(syntaxes)) for k, c in enumerate(group)]
            roles = [pdu.RoleSelection(c, False, True) for c in group]
            channel = peer.open(contexts, roles)
            result.associations += 1
            try:
                for request in requests:
                    if cancel is not None and cancel.is_set():
                        break
                    _one_get(channel, get_uid, request, archive, into, result, timeout, on_pending, cancel)
                channel.release()
            except BaseException:
                channel.abort()
                raise
    finally:
        if archive is not None:
            archive.close()
    if result.expected is not None:
        result.missing = [i.sop_instance for i in result.expected if i.sop_instance not in result.received]
    result.seconds = time.perf_counter() - t0
    return result


def _listing(
    peer: Peer, model: str, ident: Dataset, result: RetrieveResult, timeout: float, instance_classes: bool
) -> tuple[list[InstanceRef], list[str]]:
    """The instances to get (on an association of its own) and the storage classes to propose for them."""
    channel = peer.open([pdu.PresentationContext(1, MODELS[model][1], list(SYNTAXES))])
    result.associations += 1
    try:
        expected = list_instances(channel, model, ident, instance_classes=instance_classes, timeout=timeout)
        channel.release()
    except BaseException:
        channel.abort()
        raise
    classes = list(dict.fromkeys(c for i in expected for c in ((i.sop_class,) if i.sop_class else i.classes_in_study)))
    if not expected or any(not i.sop_class and not i.classes_in_study for i in expected):
        classes += [c for c in FALLBACK_STORAGE if c not in classes]
    return expected, classes


def _by_uid(expected: list[InstanceRef], classes: set[str], model: str) -> list[Dataset]:
    """IMAGE-level identifiers naming the instances of ``classes``, one per series (a list of UIDs each)."""
    by_series: dict[tuple[str | None, str, str], list[str]] = {}
    for i in expected:
        if i.sop_class in classes:
            by_series.setdefault((i.patient_id, i.study, i.series), []).append(i.sop_instance)
    out = []
    for (patient, study, series), uids in by_series.items():
        ds = Dataset()
        ds.QueryRetrieveLevel = "IMAGE"
        if model == "patient":
            ds.PatientID = patient or ""
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.SOPInstanceUID = uids
        out.append(ds)
    return out


def _one_get(
    channel: DimseChannel,
    get_uid: str,
    ident: Dataset,
    archive: FolderArchive | None,
    callback: Any,
    result: RetrieveResult,
    timeout: float,
    on_pending: Callable[[dict[str, Any]], Any] | None,
    cancel: threading.Event | None,
) -> None:
    """One C-GET on ``channel``: answer its C-STOREs (durable first), until the final C-GET-RSP."""
    cid, ts = _accepted(channel, get_uid)
    mid = channel.next_message_id()
    channel.send_message(
        cid,
        {"CommandField": dimse.C_GET_RQ, "MessageID": mid, "AffectedSOPClassUID": get_uid, "Priority": 0},
        _encode(ident, ts),
    )
    contexts = channel.agreement.contexts
    calling = channel.agreement.called_ae

    staged: list[Any] = []  # the object the last message's data set went to (a C-STORE into the archive)

    def sink_factory(context_id: int, command: dict[str, Any]) -> Any:
        if archive is None or command.get("CommandField") != dimse.C_STORE_RQ:
            return None
        header = part10_header(
            str(command.get("AffectedSOPClassUID", "")),
            str(command.get("AffectedSOPInstanceUID", "")),
            str(contexts[context_id].transfer_syntax),
            calling,
        )
        staged.append(archive.stage(header))
        return staged[-1]

    def on_store(msg: Message) -> None:
        _answer_store(channel, msg, staged[0] if staged else None, archive, callback, result)
        staged.clear()

    _until_final(channel, dimse.C_GET_RSP, (cid, mid), ts, result, timeout, on_pending, cancel, sink_factory, on_store)


def _until_final(
    channel: DimseChannel,
    response_field: int,
    request: tuple[int, int],
    transfer_syntax: str,
    result: RetrieveResult,
    timeout: float,
    on_pending: Callable[[dict[str, Any]], Any] | None,
    cancel: threading.Event | None,
    sink_factory: Callable[[int, dict[str, Any]], Any] | None = None,
    on_store: Callable[[Message], None] | None = None,
) -> None:
    """Read a C-MOVE/C-GET's responses (and, for C-GET, the C-STOREs between them) up to the final one.
    Once ``cancel`` is set, C-CANCEL is sent (after the next message) and the responses are read on."""
    context_id, message_id = request
    cancelled = False
    while True:
        msg = channel.receive_message(sink_factory, timeout=timeout, max_data=1 << 32)
        if on_store is not None and msg.command.get("CommandField") == dimse.C_STORE_RQ:
            on_store(msg)
        else:
            _check_response(channel, msg, response_field, message_id)
            status = int(msg.command.get("Status", 0xFFFF))
            if status_category(status) is not Category.PENDING:
                result._add_final(msg.command, None if msg.data is None else _decode(msg.data, transfer_syntax))
                return
            if on_pending is not None:
                on_pending(msg.command)
        if cancel is not None and cancel.is_set() and not cancelled:
            cancelled = True
            channel.send_message(
                context_id, {"CommandField": dimse.C_CANCEL_RQ, "MessageIDBeingRespondedTo": message_id}
            )


def _answer_store(
    channel: DimseChannel,
    msg: Message,
    staged: Any,
    archive: FolderArchive | None,
    callback: Any,
    result: RetrieveResult,
) -> None:
    """Store one sub-operation's object (committed before success is answered) and answer its C-STORE."""
    cmd = msg.command
    sop_class_uid = str(cmd.get("AffectedSOPClassUID", ""))
    sop_instance = str(cmd.get("AffectedSOPInstanceUID", ""))
    pc = channel.agreement.contexts[msg.context_id]
    comment: str | None = None
    if pc.abstract_syntax != sop_class_uid:
        if staged is not None:
            staged.discard()
        status, comment = int(Status.SOP_CLASS_NOT_SUPPORTED), "SOP Class differs from the presentation context's"
    elif archive is not None and staged is None or archive is None and msg.data is None:
        status, comment = int(StoreStatus.CANNOT_UNDERSTAND), "no data set received"
    elif archive is not None:
        outcome = archive.commit(staged, sop_class_uid, sop_instance)
        status = int(STATUS[outcome.reason])
        if outcome.ok:
            if outcome.path:
                result.stored[sop_instance] = outcome.path
            result.bytes += outcome.bytes
        else:
            comment = outcome.detail or outcome.reason.value
        if outcome.reason is Reason.OUT_OF_RESOURCES:
            log.error("C-GET: cannot store %s: %s", sop_instance, outcome.detail)
    else:
        data = msg.data or b""  # collected in memory (no sink without an archive)
        try:
            ds = _decode(data, str(pc.transfer_syntax))
            answer = callback(ds, cmd)
            status = int(Status.SUCCESS) if answer is None else int(answer)
            result.bytes += len(data)
        except Exception as exc:  # noqa: BLE001 - the callback's failure is this object's status
            status, comment = int(StoreStatus.CANNOT_UNDERSTAND), f"{type(exc).__name__}: {exc}"
            log.error("C-GET: the callback failed on %s: %s", sop_instance, comment)
    if status_category(status) in (Category.SUCCESS, Category.WARNING):
        result.received.add(sop_instance)
    else:
        result.refused[sop_instance] = comment or f"0x{status:04X}"
    req = _StoreRequest(cmd)
    channel.send_message(
        msg.context_id,
        response(req, status, ErrorComment=(comment or "")[:64] or None),  # type: ignore[arg-type]
    )


@dataclass
class _StoreRequest:
    """What :func:`~fastdicom.services.base.response` reads from a request: its command."""

    command: dict[str, Any]


__all__ = [
    "FALLBACK_STORAGE",
    "LEVELS",
    "MODELS",
    "FindResponses",
    "InstanceRef",
    "Peer",
    "QueryRetrieveError",
    "RetrieveResult",
    "find",
    "get",
    "list_instances",
    "make_identifier",
    "move",
]
