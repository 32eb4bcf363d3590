"""DICOM Upper Layer PDUs (PS3.8 section 9.3): decoding and encoding.

Every length in a PDU is big-endian. Decoding goes through one reader,
:class:`_Reader`, that checks each length against the bytes it sits in and
raises :class:`PDUError` (with the A-ABORT reason a peer should get) instead
of reading past them; unknown user-information sub-items are kept, not
refused (PS3.8 D.2). Encoding pads AE titles to 16 bytes and writes reserved
fields as zero. PDU types, item types, A-ABORT and A-ASSOCIATE-RJ sources and
reasons, and presentation context results are the enums below, named as
PS3.8 names them.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from ..dictionary._uids import UIDS
from ..dictionary.uid import UID
from ..errors import FastDicomError


class PduType(enum.IntEnum):
    """PDU types (PS3.8 9.3.1)."""

    A_ASSOCIATE_RQ = 0x01
    A_ASSOCIATE_AC = 0x02
    A_ASSOCIATE_RJ = 0x03
    P_DATA_TF = 0x04
    A_RELEASE_RQ = 0x05
    A_RELEASE_RP = 0x06
    A_ABORT = 0x07


class ItemType(enum.IntEnum):
    """Item and sub-item types of A-ASSOCIATE PDUs (PS3.8 9.3.2, 9.3.3, Annex D; PS3.7 Annex D.3.3)."""

    APPLICATION_CONTEXT = 0x10
    PRESENTATION_CONTEXT_RQ = 0x20
    PRESENTATION_CONTEXT_AC = 0x21
    ABSTRACT_SYNTAX = 0x30
    TRANSFER_SYNTAX = 0x40
    USER_INFORMATION = 0x50
    MAXIMUM_LENGTH = 0x51
    IMPLEMENTATION_CLASS_UID = 0x52
    ASYNCHRONOUS_OPERATIONS_WINDOW = 0x53
    ROLE_SELECTION = 0x54
    IMPLEMENTATION_VERSION_NAME = 0x55
    SOP_CLASS_EXTENDED_NEGOTIATION = 0x56
    SOP_CLASS_COMMON_EXTENDED_NEGOTIATION = 0x57
    USER_IDENTITY_RQ = 0x58
    USER_IDENTITY_AC = 0x59


class AbortSource(enum.IntEnum):
    """A-ABORT source (PS3.8 9.3.8)."""

    SERVICE_USER = 0
    SERVICE_PROVIDER = 2


class AbortReason(enum.IntEnum):
    """A-ABORT provider reason (PS3.8 9.3.8; 0 also when the source is the service user)."""

    NOT_SPECIFIED = 0
    UNRECOGNIZED_PDU = 1
    UNEXPECTED_PDU = 2
    UNRECOGNIZED_PDU_PARAMETER = 4
    UNEXPECTED_PDU_PARAMETER = 5
    INVALID_PDU_PARAMETER_VALUE = 6


class RejectResult(enum.IntEnum):
    """A-ASSOCIATE-RJ result (PS3.8 9.3.4)."""

    PERMANENT = 1
    TRANSIENT = 2


class RejectSource(enum.IntEnum):
    """A-ASSOCIATE-RJ source (PS3.8 9.3.4); each has its own reasons below."""

    SERVICE_USER = 1
    SERVICE_PROVIDER_ACSE = 2
    SERVICE_PROVIDER_PRESENTATION = 3


class UserRejectReason(enum.IntEnum):
    """A-ASSOCIATE-RJ reasons of the DICOM UL service user."""

    NO_REASON_GIVEN = 1
    APPLICATION_CONTEXT_NAME_NOT_SUPPORTED = 2
    CALLING_AE_TITLE_NOT_RECOGNIZED = 3
    CALLED_AE_TITLE_NOT_RECOGNIZED = 7


class AcseRejectReason(enum.IntEnum):
    """A-ASSOCIATE-RJ reasons of the ACSE related function of the service provider."""

    NO_REASON_GIVEN = 1
    PROTOCOL_VERSION_NOT_SUPPORTED = 2


class PresentationRejectReason(enum.IntEnum):
    """A-ASSOCIATE-RJ reasons of the presentation related function of the service provider."""

    TEMPORARY_CONGESTION = 1
    LOCAL_LIMIT_EXCEEDED = 2


class ContextResult(enum.IntEnum):
    """Result of a presentation context in an A-ASSOCIATE-AC (PS3.8 9.3.3.2)."""

    ACCEPTANCE = 0
    USER_REJECTION = 1
    NO_REASON = 2
    ABSTRACT_SYNTAX_NOT_SUPPORTED = 3
    TRANSFER_SYNTAXES_NOT_SUPPORTED = 4


class Control(enum.IntFlag):
    """The message control header of a PDV (PS3.8 E.2): bit 0 command, bit 1 last fragment."""

    COMMAND = 0x01
    LAST_FRAGMENT = 0x02


#: The DICOM Application Context Name (PS3.7 A.2.1), from the UID registry.
APPLICATION_CONTEXT = UID(next(uid for uid, entry in UIDS.items() if entry[4] == "DICOMApplicationContext"))

#: Largest A-ASSOCIATE PDU accepted (a full negotiation is a few KiB; 128 contexts about 20 KiB).
MAX_ASSOCIATE_PDU = 1 << 20


class PDUError(FastDicomError):
    """A malformed or unexpected PDU; ``reason`` is the A-ABORT provider reason to answer with."""

    def __init__(self, message: str, reason: AbortReason = AbortReason.INVALID_PDU_PARAMETER_VALUE) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class PresentationContext:
    """One presentation context: proposed (abstract syntax, transfer syntaxes) or answered (result, one syntax)."""

    id: int
    abstract_syntax: str | None = None
    transfer_syntaxes: list[str] = field(default_factory=list)
    result: int | None = None

    @property
    def accepted(self) -> bool:
        return self.result == ContextResult.ACCEPTANCE

    @property
    def transfer_syntax(self) -> str | None:
        return self.transfer_syntaxes[0] if self.transfer_syntaxes else None


@dataclass
class RoleSelection:
    sop_class_uid: str
    scu: bool
    scp: bool


@dataclass
class UserIdentity:
    """User Identity negotiation, requested (58H): 1 username, 2 username+passcode, 3 Kerberos, 4 SAML, 5 JWT."""

    type: int
    primary: bytes
    secondary: bytes = b""
    positive_response_requested: bool = False


@dataclass
class CommonExtended:
    sop_class_uid: str
    service_class_uid: str
    related_general_sop_classes: list[str] = field(default_factory=list)


@dataclass
class UserInfo:
    max_length: int = 16384
    implementation_class_uid: str = ""
    implementation_version_name: str | None = None
    #: (max operations invoked, max performed); None when the item is absent (1/1 then).
    async_ops: tuple[int, int] | None = None
    roles: list[RoleSelection] = field(default_factory=list)
    sop_class_extended: dict[str, bytes] = field(default_factory=dict)
    common_extended: list[CommonExtended] = field(default_factory=list)
    user_identity: UserIdentity | None = None
    #: Server response of an A-ASSOCIATE-AC (59H), when the requestor asked for one.
    user_identity_response: bytes | None = None
    #: Sub-items this implementation does not know: (type, value), kept and ignored.
    unknown: list[tuple[int, bytes]] = field(default_factory=list)


@dataclass
class AssociateRQ:
    """A-ASSOCIATE-RQ: what the requestor proposes."""

    called_ae: str
    calling_ae: str
    contexts: list[PresentationContext]
    user_info: UserInfo
    application_context: str = APPLICATION_CONTEXT
    protocol_version: int = 1


@dataclass
class AssociateAC:
    """A-ASSOCIATE-AC: the acceptor's answer (one result per proposed context, in ``contexts``)."""

    called_ae: str
    calling_ae: str
    contexts: list[PresentationContext]
    user_info: UserInfo
    application_context: str = APPLICATION_CONTEXT
    protocol_version: int = 1


@dataclass
class AssociateRJ:
    result: int
    source: int
    reason: int


#: The control bits as plain ints, for the per-PDV paths (an IntFlag's ``&`` is a Python call).
COMMAND, LAST_FRAGMENT = int(Control.COMMAND), int(Control.LAST_FRAGMENT)


class Pdv(NamedTuple):
    """One presentation data value item: its context, message control header and value."""

    context_id: int
    control: int
    value: memoryview | bytes

    @property
    def is_command(self) -> bool:
        return bool(self.control & COMMAND)

    @property
    def is_last(self) -> bool:
        return bool(self.control & LAST_FRAGMENT)


@dataclass
class PDataTF:
    #: The PDV items, in order (``(context, control, value)`` tuples are accepted when encoding).
    pdvs: list[Pdv]


@dataclass
class ReleaseRQ:
    pass


@dataclass
class ReleaseRP:
    pass


@dataclass
class Abort:
    source: int = AbortSource.SERVICE_USER
    reason: int = AbortReason.NOT_SPECIFIED


PDU = AssociateRQ | AssociateAC | AssociateRJ | PDataTF | ReleaseRQ | ReleaseRP | Abort


# -- decoding ------------------------------------------------------------------------------------


_PDV_HEAD = struct.Struct(">LBB")


class _Reader:
    """Reads a PDU body front to back; every read is checked against what is left (PDUError otherwise)."""

    __slots__ = ("_view", "_pos", "_what")

    def __init__(self, view: memoryview, what: str) -> None:
        self._view, self._pos, self._what = view, 0, what

    def left(self) -> int:
        return len(self._view) - self._pos

    def take(self, n: int) -> memoryview:
        if n > self.left():
            raise PDUError(f"{self._what}: {n} bytes needed, {self.left()} left")
        v = self._view[self._pos : self._pos + n]
        self._pos += n
        return v

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def lv(self) -> memoryview:
        """A value behind a 2-byte length."""
        return self.take(self.u16())

    def rest(self) -> memoryview:
        return self.take(self.left())

    def exactly(self, n: int) -> _Reader:
        """This reader, which must hold exactly ``n`` bytes."""
        if self.left() != n:
            raise PDUError(f"{self._what} must hold {n} bytes, not {self.left()}")
        return self

    def pdv(self) -> Pdv:
        """A PDV item: length (4 bytes, counting the 2 below), context ID, message control header, value."""
        pos = self._pos
        if len(self._view) - pos < 6:
            raise PDUError(f"{self._what}: truncated PDV item")
        n, ctx, control = _PDV_HEAD.unpack_from(self._view, pos)
        if n < 2 or pos + 4 + n > len(self._view):
            raise PDUError(f"{self._what}: PDV length {n} does not fit its PDU")
        if control & 0xFC:  # bits 2 to 7 are reserved
            raise PDUError(f"{self._what}: message control header {control:02X}H sets reserved bits")
        self._pos = pos + 4 + n
        return Pdv(ctx, control, self._view[pos + 6 : pos + 4 + n])

    def items(self) -> Iterator[tuple[int, _Reader]]:
        """The items that fill the rest: (type, a reader over the value); type 1 byte, reserved 1, length 2."""
        while self.left():
            if self.left() < 4:
                raise PDUError(f"{self._what}: truncated item header")
            kind = self.u8()
            self.take(1)
            n = self.u16()
            if n > self.left():
                raise PDUError(f"{self._what}: item {kind:02X}H length {n} runs past its PDU")
            yield kind, _Reader(self.take(n), f"item {kind:02X}H")


def _ae(raw: memoryview) -> str:
    return bytes(raw).decode("ascii", "replace").strip(" \0")


def _text(raw: memoryview) -> str:
    return bytes(raw).decode("ascii", "replace").rstrip("\0 ")


def _uid(raw: memoryview) -> UID:
    return UID(_text(raw))


def _role(r: _Reader) -> RoleSelection:
    uid = _uid(r.lv())
    scu, scp = r.u8(), r.u8()
    return RoleSelection(uid, bool(scu), bool(scp))


def _common_extended(r: _Reader) -> CommonExtended:
    sop, service = _uid(r.lv()), _uid(r.lv())
    related = _Reader(r.lv(), "related general SOP classes")
    out: list[str] = []
    while related.left():
        out.append(_uid(related.lv()))
    return CommonExtended(sop, service, out)


def _user_identity(r: _Reader) -> UserIdentity:
    kind, positive = r.u8(), r.u8()
    primary = bytes(r.lv())
    return UserIdentity(kind, primary, bytes(r.lv()), bool(positive))


def _user_info(body: _Reader) -> UserInfo:
    ui = UserInfo(max_length=-1)
    for t, r in body.items():
        if t == ItemType.MAXIMUM_LENGTH:
            ui.max_length = r.exactly(4).u32()
        elif t == ItemType.IMPLEMENTATION_CLASS_UID:
            ui.implementation_class_uid = _uid(r.rest())
        elif t == ItemType.IMPLEMENTATION_VERSION_NAME:
            ui.implementation_version_name = bytes(r.rest()).decode("ascii", "replace").strip()
        elif t == ItemType.ASYNCHRONOUS_OPERATIONS_WINDOW:
            r.exactly(4)
            ui.async_ops = (r.u16(), r.u16())
        elif t == ItemType.ROLE_SELECTION:
            ui.roles.append(_role(r))
        elif t == ItemType.SOP_CLASS_EXTENDED_NEGOTIATION:
            uid = _uid(r.lv())
            ui.sop_class_extended[uid] = bytes(r.rest())
        elif t == ItemType.SOP_CLASS_COMMON_EXTENDED_NEGOTIATION:
            ui.common_extended.append(_common_extended(r))
        elif t == ItemType.USER_IDENTITY_RQ:
            ui.user_identity = _user_identity(r)
        elif t == ItemType.USER_IDENTITY_AC:
            ui.user_identity_response = bytes(r.lv())
        else:
            ui.unknown.append((t, bytes(r.rest())))
    if ui.max_length < 0:
        raise PDUError("user information has no maximum length sub-item")
    return ui


def _presentation_context(r: _Reader, kind: PduType) -> PresentationContext:
    pc = PresentationContext(r.u8())
    r.take(1)
    result = r.u8()
    r.take(1)
    if kind == PduType.A_ASSOCIATE_AC:
        pc.result = result
    for st, sv in r.items():
        if st == ItemType.ABSTRACT_SYNTAX and kind == PduType.A_ASSOCIATE_RQ:
            pc.abstract_syntax = _uid(sv.rest())
        elif st == ItemType.TRANSFER_SYNTAX:
            pc.transfer_syntaxes.append(_uid(sv.rest()))
        else:
            raise PDUError(
                f"unexpected sub-item {st:02X}H in a presentation context", AbortReason.UNEXPECTED_PDU_PARAMETER
            )
    return pc


def _associate(body: memoryview, kind: PduType) -> AssociateRQ | AssociateAC:
    r = _Reader(body, "A-ASSOCIATE")
    if r.left() < 68:
        raise PDUError("A-ASSOCIATE PDU shorter than its fixed fields")
    version = r.u16()
    r.take(2)
    called, calling = _ae(r.take(16)), _ae(r.take(16))
    r.take(32)
    context_item = (
        ItemType.PRESENTATION_CONTEXT_RQ if kind == PduType.A_ASSOCIATE_RQ else ItemType.PRESENTATION_CONTEXT_AC
    )
    app_context = None
    contexts: list[PresentationContext] = []
    user_info = None
    for t, v in r.items():
        if t == ItemType.APPLICATION_CONTEXT:
            app_context = _uid(v.rest())
        elif t == context_item:
            contexts.append(_presentation_context(v, kind))
        elif t == ItemType.USER_INFORMATION:
            user_info = _user_info(v)
        else:
            raise PDUError(f"unrecognized item {t:02X}H in an A-ASSOCIATE PDU", AbortReason.UNRECOGNIZED_PDU_PARAMETER)
    if app_context is None:
        raise PDUError("A-ASSOCIATE PDU without an application context")
    if user_info is None:
        raise PDUError("A-ASSOCIATE PDU without user information")
    if kind == PduType.A_ASSOCIATE_RQ:
        for pc in contexts:
            if pc.abstract_syntax is None or not pc.transfer_syntaxes:
                raise PDUError(f"presentation context {pc.id} lacks its abstract or transfer syntax")
        return AssociateRQ(called, calling, contexts, user_info, app_context, version)
    return AssociateAC(called, calling, contexts, user_info, app_context, version)


def _pdata(body: memoryview) -> PDataTF:
    if not body:
        raise PDUError("P-DATA-TF without a PDV item")
    r = _Reader(body, "P-DATA-TF")
    pdvs = [r.pdv()]
    while r.left():
        pdvs.append(r.pdv())
    return PDataTF(pdvs)


def _fixed(body: memoryview, what: str) -> _Reader:
    return _Reader(body, what).exactly(4)


def decode(kind: int, body: memoryview) -> PDU:
    """Decode the variable part of a PDU of type ``kind`` (the 6-byte header already read)."""
    if kind == PduType.A_ASSOCIATE_RQ or kind == PduType.A_ASSOCIATE_AC:
        return _associate(body, PduType(kind))
    if kind == PduType.P_DATA_TF:
        return _pdata(body)
    if kind == PduType.A_ASSOCIATE_RJ:
        r = _fixed(body, "A-ASSOCIATE-RJ")
        r.take(1)
        return AssociateRJ(r.u8(), r.u8(), r.u8())
    if kind == PduType.A_RELEASE_RQ:
        return ReleaseRQ()
    if kind == PduType.A_RELEASE_RP:
        return ReleaseRP()
    if kind == PduType.A_ABORT:
        r = _fixed(body, "A-ABORT")
        r.take(2)
        return Abort(r.u8(), r.u8())
    raise PDUError(f"unrecognized PDU type {kind:02X}H", AbortReason.UNRECOGNIZED_PDU)


# -- encoding ------------------------------------------------------------------------------------


def _item(t: int, value: bytes) -> bytes:
    if len(value) > 0xFFFF:
        raise ValueError(f"item {t:02X}H of {len(value)} bytes does not fit a 16-bit length")
    return struct.pack(">BBH", t, 0, len(value)) + value


def _ascii(s: str) -> bytes:
    # Received text may hold replacement characters (bytes that were not ASCII): never fail on them.
    return s.encode("ascii", "replace")


def _lv(s: bytes) -> bytes:
    return struct.pack(">H", len(s)) + s


def _encode_user_info(ui: UserInfo, kind: PduType) -> bytes:
    out = [
        _item(ItemType.MAXIMUM_LENGTH, struct.pack(">L", ui.max_length)),
        _item(ItemType.IMPLEMENTATION_CLASS_UID, _ascii(ui.implementation_class_uid)),
    ]
    if ui.async_ops is not None:
        out.append(_item(ItemType.ASYNCHRONOUS_OPERATIONS_WINDOW, struct.pack(">HH", *ui.async_ops)))
    for r in ui.roles:
        out.append(_item(ItemType.ROLE_SELECTION, _lv(_ascii(r.sop_class_uid)) + bytes((int(r.scu), int(r.scp)))))
    if ui.implementation_version_name:
        out.append(_item(ItemType.IMPLEMENTATION_VERSION_NAME, _ascii(ui.implementation_version_name[:16])))
    for uid, info in ui.sop_class_extended.items():
        out.append(_item(ItemType.SOP_CLASS_EXTENDED_NEGOTIATION, _lv(_ascii(uid)) + info))
    if kind == PduType.A_ASSOCIATE_RQ:
        for ce in ui.common_extended:
            related = b"".join(_lv(_ascii(u)) for u in ce.related_general_sop_classes)
            value = _lv(_ascii(ce.sop_class_uid)) + _lv(_ascii(ce.service_class_uid)) + _lv(related)
            out.append(_item(ItemType.SOP_CLASS_COMMON_EXTENDED_NEGOTIATION, value))
        if ui.user_identity is not None:
            u = ui.user_identity
            value = bytes((u.type, int(u.positive_response_requested))) + _lv(u.primary) + _lv(u.secondary)
            out.append(_item(ItemType.USER_IDENTITY_RQ, value))
    elif ui.user_identity_response is not None:
        out.append(_item(ItemType.USER_IDENTITY_AC, _lv(ui.user_identity_response)))
    for t, v in ui.unknown:
        out.append(_item(t, v))
    return _item(ItemType.USER_INFORMATION, b"".join(out))


def _pad_ae(ae: str) -> bytes:
    raw = _ascii(ae)[:16] if "\ufffd" in ae else _ascii(ae)
    if len(raw) > 16:
        raise ValueError(f"AE title {ae!r} is longer than 16 characters")
    return raw.ljust(16, b" ")


def _header(kind: PduType, body: bytes) -> bytes:
    return struct.pack(">BBL", kind, 0, len(body)) + body


def _encode_associate(a: AssociateRQ | AssociateAC, kind: PduType) -> bytes:
    parts = [struct.pack(">HH", a.protocol_version, 0), _pad_ae(a.called_ae), _pad_ae(a.calling_ae), bytes(32)]
    parts.append(_item(ItemType.APPLICATION_CONTEXT, _ascii(a.application_context)))
    for pc in a.contexts:
        if kind == PduType.A_ASSOCIATE_RQ:
            sub = _item(ItemType.ABSTRACT_SYNTAX, _ascii(pc.abstract_syntax or "")) + b"".join(
                _item(ItemType.TRANSFER_SYNTAX, _ascii(ts)) for ts in pc.transfer_syntaxes
            )
            parts.append(_item(ItemType.PRESENTATION_CONTEXT_RQ, bytes((pc.id, 0, 0, 0)) + sub))
        else:
            # One transfer syntax sub-item, whatever the result (its value is not significant when refused).
            sub = _item(ItemType.TRANSFER_SYNTAX, _ascii((pc.transfer_syntaxes or [""])[0]))
            parts.append(_item(ItemType.PRESENTATION_CONTEXT_AC, bytes((pc.id, 0, pc.result or 0, 0)) + sub))
    parts.append(_encode_user_info(a.user_info, kind))
    return _header(kind, b"".join(parts))


def encode(pdu: PDU) -> bytes:
    """The bytes of a PDU (header included)."""
    if isinstance(pdu, AssociateRQ):
        return _encode_associate(pdu, PduType.A_ASSOCIATE_RQ)
    if isinstance(pdu, AssociateAC):
        return _encode_associate(pdu, PduType.A_ASSOCIATE_AC)
    if isinstance(pdu, AssociateRJ):
        return _header(PduType.A_ASSOCIATE_RJ, bytes((0, pdu.result, pdu.source, pdu.reason)))
    if isinstance(pdu, PDataTF):
        return _header(
            PduType.P_DATA_TF,
            b"".join(struct.pack(">LBB", len(v) + 2, ctx, control) + bytes(v) for ctx, control, v in pdu.pdvs),
        )
    if isinstance(pdu, ReleaseRQ):
        return _header(PduType.A_RELEASE_RQ, bytes(4))
    if isinstance(pdu, ReleaseRP):
        return _header(PduType.A_RELEASE_RP, bytes(4))
    if isinstance(pdu, Abort):
        return _header(PduType.A_ABORT, bytes((0, 0, pdu.source, pdu.reason)))
    raise TypeError(f"not a PDU: {type(pdu).__name__}")


def pdata_header(context_id: int, control: int, length: int) -> bytes:
    """The 12 bytes that start a P-DATA-TF PDU holding one PDV of ``length`` value bytes."""
    return struct.pack(">BBLLBB", PduType.P_DATA_TF, 0, length + 6, length + 2, context_id, control)
