"""The Query/Retrieve service (PS3.4 Annex C), SCP role: C-FIND, C-MOVE and C-GET over an archive.

Patient Root and Study Root, at the levels PATIENT (Patient Root only),
STUDY, SERIES and IMAGE. Matching is the one matcher
(:mod:`fastdicom.query`) behind :meth:`fastdicom.archive.Archive.find`; this
module decides what the standard leaves to the SCP and turns outcomes into
statuses:

* **Identifiers** are decoded in the context's transfer syntax with their own
  Specific Character Set. An answer goes out in the query's character set when
  that set holds every value of it, otherwise in UTF-8 (``ISO_IR 192``), its
  Specific Character Set saying which.
* **C-FIND**: one pending answer per match (0xFF00; 0xFF01 when the
  identifier held private keys, which are returned empty, not matched);
  C-CANCEL is heard between answers (0xFE00). More matches than the
  configured ``match_limit``: refused with 0xA700 before any answer, the
  limit in the Error Comment. Relational queries when the requestor asks
  by SOP Class Extended Negotiation (and the configuration allows).
* **Limits on input** (:class:`~fastdicom.config.ServerLimits`): an identifier
  larger than ``max_identifier_bytes`` or a key with more than ``max_uids``
  values is refused with 0xA700 and an Error Comment; a single value longer
  than :data:`MAX_VALUE_CHARS` characters, an identifier that cannot be
  parsed, a key that cannot be matched: 0xC000 (unable to process), with the
  offending element where there is one; a missing or unknown Query/Retrieve
  Level: 0xA900 (identifier does not match SOP class). The association goes
  on serving. (An identifier past the dispatcher's ``max_data``, 64 MiB, is
  not collected at all: the association is aborted.)
* **C-MOVE**: the destination must be a configured one (else 0xA801); the
  instances go through the store pipeline (:func:`fastdicom.services.store.store`:
  several associations, sendfile), each C-STORE carrying Move Originator AE
  Title and Message ID; a pending answer every ``pending_interval`` seconds.
* **C-GET**: C-STOREs on the requestor's own association, on the storage
  contexts it proposed with the SCP role (role selection, for the storage
  classes the dictionary knows); an instance whose class has none is a failed
  sub-operation. One sub-operation at a time (the window we negotiate lets us
  invoke one); on TLS the serving thread reads their answers itself.
* **Final statuses of retrievals**: 0x0000 all completed; 0xB000 some failed
  or warned, with the Failed SOP Instance UID List; 0xA702 all failed; 0xFE00
  cancelled (the remaining ones are counted as remaining).
* **Counters** are US (PS3.7 Annex E): a count above 65,535 is sent as 65,535
  (:func:`clamp`); the Failed SOP Instance UID List is always whole in
  Implicit VR; in an explicit VR syntax a UI value holds at most 65,534 bytes,
  so a longer list is cut there and the Error Comment says how many failed.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import threading
import time
import warnings
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import _backends
from ..archive import MatchLimitExceeded
from ..config import ServerConfig
from ..dataset.charset import decode_text, encode_text, python_codecs
from ..dataset.dataset import Dataset, Element
from ..dataset.write import encode_dataset
from ..dictionary import uid as _uid
from ..errors import FastDicomError
from ..net import dimse
from ..net.association import NetworkError
from ..net.dimse import Category, Status
from ..query import MatchOptions, QueryError
from .base import Request, RequestSink, Respond, response, sop_class
from .storage import STORAGE_SOP_CLASSES
from .store import Instance, InstanceResult, StoreOptions, payload, store

log = logging.getLogger("fastdicom.server")

#: FIND, MOVE and GET SOP classes -> their information model.
FIND: dict[str, str] = {
    sop_class("PatientRootQueryRetrieveInformationModelFind"): "patient",
    sop_class("StudyRootQueryRetrieveInformationModelFind"): "study",
}
MOVE: dict[str, str] = {
    sop_class("PatientRootQueryRetrieveInformationModelMove"): "patient",
    sop_class("StudyRootQueryRetrieveInformationModelMove"): "study",
}
GET: dict[str, str] = {
    sop_class("PatientRootQueryRetrieveInformationModelGet"): "patient",
    sop_class("StudyRootQueryRetrieveInformationModelGet"): "study",
}
#: The levels of each information model, top down.
LEVELS = {"patient": ("PATIENT", "STUDY", "SERIES", "IMAGE"), "study": ("STUDY", "SERIES", "IMAGE")}
#: Identifiers are read and answered in these (decoded here: nothing compressed).
SYNTAXES = (_uid.ImplicitVRLittleEndian, _uid.ExplicitVRLittleEndian, _uid.ExplicitVRBigEndian)
#: The longest single key value accepted (the longest a text VR of an identifier may hold is 10,240 for UC/UT
#: fragments in practice; PN, LO: 64): more is refused with 0xC000, not matched.
MAX_VALUE_CHARS = 10_240
#: The largest count a US field holds.
US_MAX = 65535
#: Text VRs whose values go through the character set.
_TEXT_VRS = frozenset(("SH", "LO", "ST", "LT", "UC", "UT", "PN"))

_QR_LEVEL = 0x00080052
_CHARSET = 0x00080005
_RETRIEVE_AE = 0x00080054
_FAILED_LIST = 0x00080058


class QRStatus(enum.IntEnum):
    """Statuses of C-FIND, C-MOVE and C-GET (PS3.4 C.4.1.1.4, C.4.2.1.5, C.4.3.1.4)."""

    OUT_OF_RESOURCES = 0xA700
    OUT_OF_RESOURCES_MATCHES = 0xA701
    OUT_OF_RESOURCES_SUBOPERATIONS = 0xA702
    MOVE_DESTINATION_UNKNOWN = 0xA801
    IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    UNABLE_TO_PROCESS = 0xC000
    ARCHIVE_FAILURE = 0xC001
    SUBOPERATIONS_FAILED_OR_WARNED = 0xB000


class Refused(FastDicomError):
    """A request answered with one failure status (and why)."""

    def __init__(self, status: int, comment: str, element: int | None = None) -> None:
        super().__init__(comment)
        self.status, self.comment, self.element = status, comment, element


def clamp(n: int) -> int:
    """A count as a US field holds it: at most 65,535 (see the module)."""
    return min(max(n, 0), US_MAX)


# -- identifiers ---------------------------------------------------------------------------------


def decode_identifier(data: bytes | None, transfer_syntax: str, limits_uids: int) -> Dataset:
    """The identifier of a request, parsed and checked: every element read once (a malformed one raises
    :class:`Refused` 0xC000 here, not later), UID lists and values bounded."""
    if not data:
        raise Refused(QRStatus.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, "no identifier")
    little, explicit, _deflated = _uid.encoding_of(transfer_syntax)
    mod = _backends.resolve("parse")[1]
    try:
        ds = Dataset._from_buffer(memoryview(data), 0, len(data), little, explicit, mod)
        _check(ds, limits_uids, 0)
    except Refused:
        raise
    except (FastDicomError, ValueError, UnicodeError, LookupError) as exc:
        raise Refused(QRStatus.UNABLE_TO_PROCESS, f"identifier cannot be read: {exc}") from None
    return ds


def _check(ds: Dataset, max_uids: int, depth: int) -> None:
    if depth > 16:
        raise Refused(QRStatus.UNABLE_TO_PROCESS, "sequences nested deeper than 16")
    for elem in ds:
        vr = elem.vr
        if vr == "SQ":
            for item in elem.value or []:
                _check(item, max_uids, depth + 1)
            continue
        raw = elem.raw
        if vr in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
            continue
        n = bytes(raw).count(b"\\") + 1 if len(raw) else 0
        if n > max_uids:
            raise Refused(QRStatus.OUT_OF_RESOURCES, f"{n} values in one key: at most {max_uids} are served", elem.tag)
        value = elem.value  # decoded once here, with the identifier's character set
        for v in value if isinstance(value, list) else (value,):
            if isinstance(v, str) and len(v) > MAX_VALUE_CHARS:
                raise Refused(
                    QRStatus.UNABLE_TO_PROCESS, f"a value of {len(v)} characters (at most {MAX_VALUE_CHARS})", elem.tag
                )


def _charset_of(ds: Dataset) -> list[str] | None:
    value = ds.get(_CHARSET)
    if value in (None, ""):
        return None
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _holds(ds: Dataset, codecs: tuple[str, ...] | None) -> bool:
    """Whether every text value of ``ds`` survives encoding in ``codecs`` (None: the default repertoire)."""
    for elem in ds:
        if elem.vr == "SQ":
            if not all(_holds(item, codecs) for item in elem.value or []):
                return False
            continue
        if elem.vr not in _TEXT_VRS:
            continue
        value = elem.value
        for v in value if isinstance(value, list) else (value,):
            if not isinstance(v, str) or v.isascii():
                continue
            if codecs is None:
                return False
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error")
                    raw = encode_text(v, codecs, elem.vr)
                    if decode_text(raw, codecs, elem.vr) != v:
                        return False
            except (UserWarning, UnicodeError, LookupError):
                return False
    return True


def _rebuilt(ds: Any) -> Dataset:
    """A fresh data set holding ``ds``'s values (decoded): encoded anew in whatever character set it gets."""
    out = Dataset()
    for elem in ds:
        if elem.tag >> 16 == 0x0002:
            continue
        value = elem.value
        if elem.vr == "SQ":
            value = [_rebuilt(item) for item in value or []]
        out[elem.tag] = Element(elem.tag, elem.vr, value)
    return out


def encode_answer(answer: Any, charset: list[str] | None, transfer_syntax: str) -> bytes:
    """An answer's bytes: in the query's character set when it holds every value, else in UTF-8 (ISO_IR 192).

    ``answer`` may be changed (its Specific Character Set): the archive builds a new data set per answer.
    One that still lies over a file's bytes, or holds sequences (whose items may), is copied first.
    """
    fresh = isinstance(answer, Dataset) and answer._buf is None and all(e.vr != "SQ" for e in answer)
    ds = answer if fresh else _rebuilt(answer)
    if _CHARSET in ds:
        del ds[_CHARSET]
    codecs = python_codecs(charset) if charset else None
    if not _holds(ds, codecs):
        charset = ["ISO_IR 192"]
    if charset:
        ds[_CHARSET] = Element(_CHARSET, "CS", charset if len(charset) > 1 else charset[0])
    little, explicit, _ = _uid.encoding_of(transfer_syntax)
    return b"".join(bytes(c) for c in encode_dataset(ds, little, explicit))


@dataclass(frozen=True)
class Negotiated:
    """What SOP Class Extended Negotiation agreed for one context (PS3.4 C.5.1.1, C.5.2.1, C.5.3.1)."""

    relational: bool = False
    combined_datetime: bool = False
    fuzzy_pn: bool = False


# -- the service -----------------------------------------------------------------------------------


class QueryRetrieveService:
    """The Q/R SCP: C-FIND, C-MOVE and C-GET over ``archive`` (a :class:`fastdicom.archive.Archive`).

    ``config`` names who may query and retrieve, the move destinations and
    the limits (:class:`fastdicom.config.ServerConfig`).
    """

    commands = frozenset({dimse.C_FIND_RQ, dimse.C_MOVE_RQ, dimse.C_GET_RQ})

    def __init__(self, archive: Any, config: ServerConfig | None = None) -> None:
        self.archive = archive
        self.config = config or ServerConfig()
        #: Counters: queries, answers, refused, moved, retrieved (C-GET), failed sub-operations.
        self.stats = {"queries": 0, "answers": 0, "refused": 0, "moved": 0, "retrieved": 0, "failed": 0}
        self._lock = threading.Lock()

    # -- negotiation ---------------------------------------------------------------------------------
    def transfer_syntaxes(self, abstract_syntax: str) -> Collection[str]:
        return SYNTAXES if abstract_syntax in FIND or abstract_syntax in MOVE or abstract_syntax in GET else ()

    def extended_negotiation(self, sop_class_uid: str, info: bytes) -> bytes | None:
        """Relational queries/retrievals when configured; combined date-time and fuzzy PN matching for C-FIND;
        timezone adjustment and enhanced multi-frame conversion are not offered (answered 0)."""
        relational = 1 if info[:1] == b"\x01" and self.config.relational else 0
        if sop_class_uid in FIND:
            combined = 1 if info[1:2] == b"\x01" else 0
            fuzzy = 1 if info[2:3] == b"\x01" else 0
            return bytes((relational, combined, fuzzy, 0))[: max(len(info), 1)]
        if sop_class_uid in MOVE or sop_class_uid in GET:
            return bytes((relational,))
        return None

    def sink(self, request: Request) -> RequestSink | None:
        return None  # identifiers are small: collected (Dispatcher max_data bounds them)

    def close(self) -> None:
        pass

    # -- requests --------------------------------------------------------------------------------------
    def handle(self, requests: Sequence[Request], respond: Respond) -> None:
        for r in requests:
            field_ = r.command.get("CommandField")
            try:
                if field_ == dimse.C_FIND_RQ:
                    self._find(r, respond)
                elif field_ == dimse.C_MOVE_RQ:
                    self._retrieve(r, respond, move=True)
                else:
                    self._retrieve(r, respond, move=False)
            except Refused as exc:
                with self._lock:
                    self.stats["refused"] += 1
                log.info("%s from %s refused: 0x%04X %s", _name(field_), r.peer.calling_ae, exc.status, exc.comment)
                respond(r, self._final(r, exc.status, exc.comment, exc.element))

    def _final(self, r: Request, status: int, comment: str | None = None, element: int | None = None) -> dict:
        extra: dict[str, Any] = {"ErrorComment": comment[:64] if comment else None}
        if element is not None:
            extra["OffendingElement"] = element
        if r.command.get("CommandField") != dimse.C_FIND_RQ:
            extra.update(
                NumberOfCompletedSuboperations=0, NumberOfFailedSuboperations=0, NumberOfWarningSuboperations=0
            )
        cmd = response(r, status, **extra)
        cmd.setdefault("AffectedSOPClassUID", r.abstract_syntax)
        return cmd

    def _options(self, r: Request) -> Negotiated:
        agreement = r.agreement
        info = agreement.sop_class_extended.get(r.abstract_syntax, b"") if agreement is not None else b""
        return Negotiated(info[:1] == b"\x01", info[1:2] == b"\x01", info[2:3] == b"\x01")

    def _identifier(self, r: Request, right: str, models: Mapping[str, str]) -> tuple[Dataset, str, str]:
        """The checked identifier of ``r``, its information model and level (or :class:`Refused`)."""
        if not self.config.may(r.peer.calling_ae, right):
            raise Refused(Status.NOT_AUTHORIZED, f"{r.peer.calling_ae} may not {right} here")
        if r.command.get("AffectedSOPClassUID", r.abstract_syntax) != r.abstract_syntax:
            raise Refused(Status.SOP_CLASS_NOT_SUPPORTED, "SOP Class differs from the presentation context's")
        model = models.get(r.abstract_syntax)
        if model is None:
            raise Refused(Status.SOP_CLASS_NOT_SUPPORTED, f"{r.abstract_syntax} is not served here")
        limits = self.config.limits
        if r.data is not None and len(r.data) > limits.max_identifier_bytes:
            raise Refused(
                QRStatus.OUT_OF_RESOURCES,
                f"identifier of {len(r.data)} bytes: at most {limits.max_identifier_bytes}",
            )
        ds = decode_identifier(r.data, r.transfer_syntax, limits.max_uids)
        level = ds.get(_QR_LEVEL)
        level = str(level).strip() if isinstance(level, str) else None
        if level not in LEVELS[model]:
            raise Refused(
                QRStatus.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
                f"Query/Retrieve Level {level!r}: one of {'/'.join(LEVELS[model])}",
                _QR_LEVEL,
            )
        return ds, model, level

    def _query(self, ds: Dataset, matching: bool) -> tuple[Dataset, bool]:
        """The identifier the archive matches: private keys left out (they are returned empty); whether any were."""
        private = [e.tag for e in ds if e.tag >> 16 & 1]
        if not private:
            return ds, False
        out = Dataset()
        for elem in ds:
            if not elem.tag >> 16 & 1:
                out[elem.tag] = Element(elem.tag, elem.vr, elem.value)
        return out, matching

    # -- C-FIND ----------------------------------------------------------------------------------------
    def _find(self, r: Request, respond: Respond) -> None:
        ds, model, level = self._identifier(r, "query", FIND)
        negotiated = self._options(r)
        options = MatchOptions(
            pn_case_insensitive=self.config.pn_case_insensitive,
            fuzzy_pn=negotiated.fuzzy_pn,
            combined_datetime=negotiated.combined_datetime,
        )
        query, dropped = self._query(ds, True)
        private = [e for e in ds if e.tag >> 16 & 1]
        charset = _charset_of(ds)
        limit = self.config.limits.match_limit
        pending = Status.PENDING_WARNING if dropped else Status.PENDING
        with self._lock:
            self.stats["queries"] += 1
        answers = 0
        try:
            found = self.archive.find(
                level, query, model=model, options=self._find_options(options, negotiated), limit=limit
            )
            for answer in found:
                if r.cancelled:
                    respond(r, self._final(r, Status.CANCEL))
                    return
                answer[_QR_LEVEL] = Element(_QR_LEVEL, "CS", level)
                answer[_RETRIEVE_AE] = Element(_RETRIEVE_AE, "AE", self.config.ae_title)
                for elem in private:
                    answer[elem.tag] = Element(elem.tag, elem.vr, None)
                data = encode_answer(answer, charset, r.transfer_syntax)
                respond(r, self._final(r, pending), data)
                answers += 1
        except Refused:
            raise
        except QueryError as exc:
            raise Refused(QRStatus.UNABLE_TO_PROCESS, str(exc), exc.tag) from None
        except Exception as exc:  # noqa: BLE001 - the archive failed: said loudly, answered, server goes on
            if isinstance(exc, MatchLimitExceeded):
                raise Refused(
                    QRStatus.OUT_OF_RESOURCES, f"more than {limit} matches (the match limit): refine the query"
                ) from None
            if isinstance(exc, NetworkError):
                raise
            log.exception("C-FIND from %s failed in the archive", r.peer.calling_ae)
            raise Refused(QRStatus.ARCHIVE_FAILURE, f"archive failure: {type(exc).__name__}: {exc}") from None
        finally:
            with self._lock:
                self.stats["answers"] += answers
        if r.cancelled:
            respond(r, self._final(r, Status.CANCEL))
            return
        respond(r, self._final(r, Status.SUCCESS))

    def _find_options(self, options: MatchOptions, negotiated: Negotiated) -> MatchOptions:
        """What :meth:`Archive.find` takes as ``options``: the matcher's, relational when agreed."""
        return dataclasses.replace(options, relational=negotiated.relational)

    # -- C-MOVE and C-GET ----------------------------------------------------------------------------------
    def _retrieve(self, r: Request, respond: Respond, *, move: bool) -> None:
        ds, model, level = self._identifier(r, "retrieve", MOVE if move else GET)
        destination = None
        if move:
            dest_ae = str(r.command.get("MoveDestination", "")).strip()
            destination = self.config.destination(dest_ae)
            if destination is None:
                raise Refused(QRStatus.MOVE_DESTINATION_UNKNOWN, f"move destination {dest_ae!r} is not configured")
        query, _ = self._query(ds, False)
        options = MatchOptions(
            pn_case_insensitive=self.config.pn_case_insensitive, relational=self._options(r).relational
        )
        try:
            found = list(self.archive.instances(level, query, model=model, options=options))
        except QueryError as exc:
            raise Refused(QRStatus.UNABLE_TO_PROCESS, str(exc), exc.tag) from None
        except Exception as exc:  # noqa: BLE001
            log.exception("C-%s from %s failed in the archive", "MOVE" if move else "GET", r.peer.calling_ae)
            raise Refused(QRStatus.UNABLE_TO_PROCESS, f"archive failure: {type(exc).__name__}: {exc}") from None
        progress = _Progress(len(found))
        if move:
            assert destination is not None and destination.address is not None
            self._move(r, respond, found, destination.address, progress)
        else:
            self._get(r, respond, found, progress)
        with self._lock:
            self.stats["moved" if move else "retrieved"] += progress.completed + progress.warning
            self.stats["failed"] += progress.failed
        respond(r, *progress.final(r, r.cancelled))

    def _move(self, r: Request, respond: Respond, found: list, address: str, progress: _Progress) -> None:
        limits = self.config.limits
        options = StoreOptions(
            associations=max(1, min(limits.move_associations, len(found) or 1)),
            calling_ae=self.config.ae_title,
            retries=1,
            backoff=0.5,
            timeout=limits.network_timeout,
            move_originator=(r.peer.calling_ae, r.message_id),
            cancelled=lambda: r.cancelled,
        )
        instances = [Instance(i.path, i.sop_class_uid, i.sop_instance_uid, i.transfer_syntax_uid) for i in found]
        done = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                store(instances, address, options=options, on_result=progress.settle, progress=False)
            except BaseException as exc:  # noqa: BLE001 - reported as failed sub-operations below
                failure.append(exc)
            finally:
                done.set()

        if instances:
            threading.Thread(target=run, name="fastdicom-move", daemon=True).start()
            while not done.wait(limits.pending_interval):
                respond(r, progress.pending(r))
        if failure:
            log.error("C-MOVE to %s failed: %s", address, failure[0])
            progress.fail_rest(str(failure[0]))

    def _get(self, r: Request, respond: Respond, found: list, progress: _Progress) -> None:
        outbound, agreement = r.outbound, r.agreement
        scp_roles = {role.sop_class_uid for role in (agreement.roles if agreement else []) if role.scp}
        contexts: dict[str, list[tuple[int, str]]] = {}
        for pc in agreement.contexts.values() if agreement else []:
            if pc.abstract_syntax in scp_roles and pc.transfer_syntax:
                contexts.setdefault(pc.abstract_syntax, []).append((pc.id, pc.transfer_syntax))
        interval = self.config.limits.pending_interval
        last = time.monotonic()
        for inst in found:
            if r.cancelled:
                break
            offered = contexts.get(inst.sop_class_uid)
            result = InstanceResult(inst.path, inst.sop_class_uid, inst.sop_instance_uid, inst.transfer_syntax_uid)
            if not offered:
                result.error = "the requestor took no SCP role for this storage class"
                progress.settle(result)
                continue
            ctx, ts = next(((c, t) for c, t in offered if t == inst.transfer_syntax_uid), offered[0])
            held = None
            try:
                data, held = payload(
                    Instance(inst.path, inst.sop_class_uid, inst.sop_instance_uid, inst.transfer_syntax_uid), ts
                )
                command = {
                    "CommandField": dimse.C_STORE_RQ,
                    "Priority": 0,
                    "AffectedSOPClassUID": inst.sop_class_uid,
                    "AffectedSOPInstanceUID": inst.sop_instance_uid,
                }
                if outbound is None:
                    raise NetworkError("no outbound channel on this association")
                timeout = self.config.limits.network_timeout
                if outbound.in_thread:  # TLS: this thread alone reads the socket, so it reads the answer too
                    answer = outbound.request_in_thread(ctx, command, data, r, timeout=timeout)
                else:
                    answer = outbound.request(ctx, command, data, timeout=timeout)
                result.status = int(answer.command.get("Status", 0xFFFF))
                result.error_comment = answer.command.get("ErrorComment")
            except NetworkError as exc:
                result.error = f"network: {exc}"
                progress.settle(result)
                progress.fail_rest(str(exc))
                return
            except (FastDicomError, OSError) as exc:
                result.error = f"not sent: {exc}"
            finally:
                if held is not None:
                    held.close()
            progress.settle(result)
            now = time.monotonic()
            if now - last >= interval and progress.remaining:
                respond(r, progress.pending(r))
                last = now


def _name(field_: Any) -> str:
    return {dimse.C_FIND_RQ: "C-FIND", dimse.C_MOVE_RQ: "C-MOVE", dimse.C_GET_RQ: "C-GET"}.get(field_, "request")


class _Progress:
    """The sub-operation counts of one C-MOVE or C-GET (settled from the sending threads)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.completed = self.failed = self.warning = 0
        self.failed_uids: list[str] = []
        self._lock = threading.Lock()

    @property
    def remaining(self) -> int:
        return self.total - self.completed - self.failed - self.warning

    def settle(self, result: InstanceResult) -> None:
        with self._lock:
            if result.error == "cancelled":
                return  # still remaining: never attempted
            category = dimse.status_category(result.status) if result.status is not None else Category.FAILURE
            if category is Category.SUCCESS:
                self.completed += 1
            elif category is Category.WARNING:
                self.warning += 1
            else:
                self.failed += 1
                if result.sop_instance_uid:
                    self.failed_uids.append(result.sop_instance_uid)

    def fail_rest(self, why: str) -> None:
        """Whatever was not settled (the pipeline broke) is failed."""
        del why
        with self._lock:
            self.failed += self.remaining

    def _counts(self, remaining: bool) -> dict[str, int]:
        counts = {
            "NumberOfCompletedSuboperations": clamp(self.completed),
            "NumberOfFailedSuboperations": clamp(self.failed),
            "NumberOfWarningSuboperations": clamp(self.warning),
        }
        if remaining:
            counts["NumberOfRemainingSuboperations"] = clamp(self.remaining)
        return counts

    def pending(self, r: Request) -> dict[str, Any]:
        with self._lock:
            cmd = response(r, Status.PENDING, **self._counts(True))
        cmd.setdefault("AffectedSOPClassUID", r.abstract_syntax)
        return cmd

    def final(self, r: Request, cancelled: bool) -> tuple[dict[str, Any], bytes | None]:
        """The final response, and its identifier (the Failed SOP Instance UID List) when any failed."""
        with self._lock:
            status: int
            if cancelled and self.remaining:
                status = Status.CANCEL
            elif self.failed == 0 and self.warning == 0:
                status = Status.SUCCESS
            elif self.completed == 0 and self.warning == 0:
                status = QRStatus.OUT_OF_RESOURCES_SUBOPERATIONS
            else:
                status = QRStatus.SUBOPERATIONS_FAILED_OR_WARNED
            comment = None
            if self.total > US_MAX:
                comment = f"{self.total} sub-operations: counts above {US_MAX} are sent as {US_MAX}"
            data = None
            if self.failed_uids:
                uids = list(self.failed_uids)
                if _uid.encoding_of(r.transfer_syntax)[1]:  # explicit VR: a UI value's length is 16 bits
                    kept: list[str] = []
                    size = 0
                    for u in uids:
                        size += len(u) + (1 if kept else 0)
                        if size > 65534:
                            break
                        kept.append(u)
                    if len(kept) < len(uids):
                        comment = f"{len(uids)} failed; the list holds the first {len(kept)}"
                    uids = kept
                ds = Dataset()
                ds[_FAILED_LIST] = Element(_FAILED_LIST, "UI", uids if len(uids) != 1 else uids[0])
                data = encode_answer(ds, None, r.transfer_syntax)
            cmd = response(r, status, ErrorComment=comment, **self._counts(status == Status.CANCEL))
        cmd.setdefault("AffectedSOPClassUID", r.abstract_syntax)
        return cmd, data


def requestor_scp_classes() -> frozenset[str]:
    """The SOP classes a C-GET requestor may take the SCP role for (role selection): the storage classes."""
    return STORAGE_SOP_CLASSES


__all__ = [
    "FIND",
    "GET",
    "LEVELS",
    "MOVE",
    "QRStatus",
    "QueryRetrieveService",
    "clamp",
    "decode_identifier",
    "encode_answer",
]
