"""DICOM Upper Layer PDUs (PS3.8 section 9.3): decoding and encoding.

Every length in a PDU is big-endian. Decoding checks each length against
the bytes it sits in and raises :class:`PDUError` (with the A-ABORT reason a
peer should get) instead of reading past them; unknown user-information
sub-items are kept, not refused (PS3.8 D.2). Encoding pads AE titles to 16
bytes and writes reserved fields as zero.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ..errors import FastDicomError

A_ASSOCIATE_RQ = 0x01
A_ASSOCIATE_AC = 0x02
A_ASSOCIATE_RJ = 0x03
P_DATA_TF = 0x04
A_RELEASE_RQ = 0x05
A_RELEASE_RP = 0x06
A_ABORT = 0x07

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"

# A-ABORT sources and provider reasons (PS3.8 9.3.8)
ABORT_SOURCE_USER = 0
ABORT_SOURCE_PROVIDER = 2
REASON_NOT_SPECIFIED = 0
REASON_UNRECOGNIZED_PDU = 1
REASON_UNEXPECTED_PDU = 2
REASON_UNRECOGNIZED_PARAMETER = 4
REASON_UNEXPECTED_PARAMETER = 5
REASON_INVALID_PARAMETER = 6

# A-ASSOCIATE-RJ (PS3.8 9.3.4)
RJ_PERMANENT = 1
RJ_TRANSIENT = 2
RJ_SOURCE_USER = 1
RJ_SOURCE_ACSE = 2
RJ_SOURCE_PRESENTATION = 3

# Presentation context results (PS3.8 9.3.3.2)
PC_ACCEPTANCE = 0
PC_USER_REJECTION = 1
PC_NO_REASON = 2
PC_ABSTRACT_SYNTAX_NOT_SUPPORTED = 3
PC_TRANSFER_SYNTAXES_NOT_SUPPORTED = 4

#: Largest A-ASSOCIATE PDU accepted (a full negotiation is a few KiB; 128 contexts about 20 KiB).
MAX_ASSOCIATE_PDU = 1 << 20


class PDUError(FastDicomError):
    """A malformed or unexpected PDU; ``reason`` is the A-ABORT provider reason to answer with."""

    def __init__(self, message: str, reason: int = REASON_INVALID_PARAMETER) -> None:
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
        return self.result == PC_ACCEPTANCE

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
    called_ae: str
    calling_ae: str
    contexts: list[PresentationContext]
    user_info: UserInfo
    application_context: str = APPLICATION_CONTEXT
    protocol_version: int = 1


@dataclass
class AssociateAC(AssociateRQ):
    pass


@dataclass
class AssociateRJ:
    result: int
    source: int
    reason: int


@dataclass
class PDataTF:
    #: (presentation context ID, message control header, value) per PDV item.
    pdvs: list[tuple[int, int, memoryview]]


@dataclass
class ReleaseRQ:
    pass


@dataclass
class ReleaseRP:
    pass


@dataclass
class Abort:
    source: int = ABORT_SOURCE_USER
    reason: int = REASON_NOT_SPECIFIED


# -- decoding ------------------------------------------------------------------------------------


def _ae(raw: bytes) -> str:
    return raw.decode("ascii", "replace").strip(" \0")


def _uid(raw: bytes | memoryview) -> str:
    return bytes(raw).decode("ascii", "replace").rstrip("\0 ")


def _items(body: memoryview, what: str):
    """Yield (type, value) of the items in ``body`` (type 1 byte, reserved 1, length 2)."""
    pos, end = 0, len(body)
    while pos < end:
        if pos + 4 > end:
            raise PDUError(f"{what}: truncated item header")
        t = body[pos]
        (n,) = struct.unpack_from(">H", body, pos + 2)
        if pos + 4 + n > end:
            raise PDUError(f"{what}: item {t:02X}H length {n} runs past its PDU")
        yield t, body[pos + 4 : pos + 4 + n]
        pos += 4 + n


def _user_info(body: memoryview) -> UserInfo:
    ui = UserInfo(max_length=-1)
    for t, v in _items(body, "user information"):
        if t == 0x51:
            if len(v) != 4:
                raise PDUError("maximum length sub-item must hold 4 bytes")
            (ui.max_length,) = struct.unpack(">L", v)
        elif t == 0x52:
            ui.implementation_class_uid = _uid(v)
        elif t == 0x55:
            ui.implementation_version_name = bytes(v).decode("ascii", "replace").strip()
        elif t == 0x53:
            if len(v) != 4:
                raise PDUError("asynchronous operations window sub-item must hold 4 bytes")
            ui.async_ops = struct.unpack(">HH", v)
        elif t == 0x54:
            if len(v) < 2:
                raise PDUError("role selection sub-item too short")
            (n,) = struct.unpack_from(">H", v)
            if 2 + n + 2 > len(v):
                raise PDUError("role selection sub-item truncated")
            ui.roles.append(RoleSelection(_uid(v[2 : 2 + n]), bool(v[2 + n]), bool(v[3 + n])))
        elif t == 0x56:
            if len(v) < 2:
                raise PDUError("SOP class extended negotiation sub-item too short")
            (n,) = struct.unpack_from(">H", v)
            if 2 + n > len(v):
                raise PDUError("SOP class extended negotiation sub-item truncated")
            ui.sop_class_extended[_uid(v[2 : 2 + n])] = bytes(v[2 + n :])
        elif t == 0x57:
            ui.common_extended.append(_common_extended(v))
        elif t == 0x58:
            if len(v) < 4:
                raise PDUError("user identity sub-item too short")
            kind, positive = v[0], v[1]
            (n,) = struct.unpack_from(">H", v, 2)
            if 4 + n + 2 > len(v):
                raise PDUError("user identity sub-item truncated")
            primary = bytes(v[4 : 4 + n])
            (m,) = struct.unpack_from(">H", v, 4 + n)
            if 6 + n + m > len(v):
                raise PDUError("user identity sub-item truncated")
            ui.user_identity = UserIdentity(kind, primary, bytes(v[6 + n : 6 + n + m]), bool(positive))
        elif t == 0x59:
            if len(v) < 2:
                raise PDUError("user identity response sub-item too short")
            (n,) = struct.unpack_from(">H", v)
            ui.user_identity_response = bytes(v[2 : 2 + n])
        else:
            ui.unknown.append((t, bytes(v)))
    if ui.max_length < 0:
        raise PDUError("user information has no maximum length sub-item", REASON_INVALID_PARAMETER)
    return ui


def _common_extended(v: memoryview) -> CommonExtended:
    def take(pos: int) -> tuple[str, int]:
        if pos + 2 > len(v):
            raise PDUError("common extended negotiation sub-item truncated")
        (n,) = struct.unpack_from(">H", v, pos)
        if pos + 2 + n > len(v):
            raise PDUError("common extended negotiation sub-item truncated")
        return _uid(v[pos + 2 : pos + 2 + n]), pos + 2 + n

    sop, pos = take(0)
    service, pos = take(pos)
    if pos + 2 > len(v):
        raise PDUError("common extended negotiation sub-item truncated")
    (n,) = struct.unpack_from(">H", v, pos)
    end = pos + 2 + n
    if end > len(v):
        raise PDUError("common extended negotiation sub-item truncated")
    related = []
    pos += 2
    while pos < end:
        uid, pos = take(pos)
        related.append(uid)
    return CommonExtended(sop, service, related)


def _associate(body: memoryview, kind: int) -> AssociateRQ:
    if len(body) < 68:
        raise PDUError("A-ASSOCIATE PDU shorter than its fixed fields")
    (version,) = struct.unpack_from(">H", body)
    called, calling = _ae(bytes(body[4:20])), _ae(bytes(body[20:36]))
    app_context = None
    contexts: list[PresentationContext] = []
    user_info = None
    for t, v in _items(body[68:], "A-ASSOCIATE"):
        if t == 0x10:
            app_context = _uid(v)
        elif t == (0x20 if kind == A_ASSOCIATE_RQ else 0x21):
            if len(v) < 4:
                raise PDUError("presentation context item too short")
            pc = PresentationContext(v[0])
            if kind == A_ASSOCIATE_AC:
                pc.result = v[2]
            for st, sv in _items(v[4:], "presentation context"):
                if st == 0x30 and kind == A_ASSOCIATE_RQ:
                    pc.abstract_syntax = _uid(sv)
                elif st == 0x40:
                    pc.transfer_syntaxes.append(_uid(sv))
                else:
                    raise PDUError(
                        f"unexpected sub-item {st:02X}H in a presentation context", REASON_UNEXPECTED_PARAMETER
                    )
            contexts.append(pc)
        elif t == 0x50:
            user_info = _user_info(v)
        else:
            raise PDUError(f"unrecognized item {t:02X}H in an A-ASSOCIATE PDU", REASON_UNRECOGNIZED_PARAMETER)
    if app_context is None:
        raise PDUError("A-ASSOCIATE PDU without an application context")
    if user_info is None:
        raise PDUError("A-ASSOCIATE PDU without user information")
    if kind == A_ASSOCIATE_RQ:
        for pc in contexts:
            if pc.abstract_syntax is None or not pc.transfer_syntaxes:
                raise PDUError(f"presentation context {pc.id} lacks its abstract or transfer syntax")
    cls = AssociateRQ if kind == A_ASSOCIATE_RQ else AssociateAC
    return cls(called, calling, contexts, user_info, app_context, version)


def _pdata(body: memoryview) -> PDataTF:
    pdvs = []
    pos, end = 0, len(body)
    while pos < end:
        if pos + 6 > end:
            raise PDUError("P-DATA-TF: truncated PDV item")
        (n,) = struct.unpack_from(">L", body, pos)
        if n < 2 or pos + 4 + n > end:
            raise PDUError(f"P-DATA-TF: PDV length {n} does not fit its PDU")
        ctx, control = body[pos + 4], body[pos + 5]
        if control & 0xFC:
            raise PDUError(f"P-DATA-TF: message control header {control:02X}H sets reserved bits")
        pdvs.append((ctx, control, body[pos + 6 : pos + 4 + n]))
        pos += 4 + n
    if not pdvs:
        raise PDUError("P-DATA-TF without a PDV item")
    return PDataTF(pdvs)


def decode(kind: int, body: memoryview):
    """Decode the variable part of a PDU of type ``kind`` (the 6-byte header already read)."""
    if kind in (A_ASSOCIATE_RQ, A_ASSOCIATE_AC):
        return _associate(body, kind)
    if kind == P_DATA_TF:
        return _pdata(body)
    if kind == A_ASSOCIATE_RJ:
        if len(body) != 4:
            raise PDUError("A-ASSOCIATE-RJ must be 4 bytes")
        return AssociateRJ(body[1], body[2], body[3])
    if kind == A_RELEASE_RQ:
        return ReleaseRQ()
    if kind == A_RELEASE_RP:
        return ReleaseRP()
    if kind == A_ABORT:
        if len(body) != 4:
            raise PDUError("A-ABORT must be 4 bytes")
        return Abort(body[2], body[3])
    raise PDUError(f"unrecognized PDU type {kind:02X}H", REASON_UNRECOGNIZED_PDU)


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


def _encode_user_info(ui: UserInfo, kind: int) -> bytes:
    out = [_item(0x51, struct.pack(">L", ui.max_length)), _item(0x52, _ascii(ui.implementation_class_uid))]
    if ui.async_ops is not None:
        out.append(_item(0x53, struct.pack(">HH", *ui.async_ops)))
    for r in ui.roles:
        out.append(_item(0x54, _lv(_ascii(r.sop_class_uid)) + bytes((int(r.scu), int(r.scp)))))
    if ui.implementation_version_name:
        out.append(_item(0x55, _ascii(ui.implementation_version_name[:16])))
    for uid, info in ui.sop_class_extended.items():
        out.append(_item(0x56, _lv(_ascii(uid)) + info))
    if kind == A_ASSOCIATE_RQ:
        for ce in ui.common_extended:
            related = b"".join(_lv(_ascii(u)) for u in ce.related_general_sop_classes)
            out.append(_item(0x57, _lv(_ascii(ce.sop_class_uid)) + _lv(_ascii(ce.service_class_uid)) + _lv(related)))
        if ui.user_identity is not None:
            u = ui.user_identity
            out.append(
                _item(0x58, bytes((u.type, int(u.positive_response_requested))) + _lv(u.primary) + _lv(u.secondary))
            )
    elif ui.user_identity_response is not None:
        out.append(_item(0x59, _lv(ui.user_identity_response)))
    for t, v in ui.unknown:
        out.append(_item(t, v))
    return _item(0x50, b"".join(out))


def _pad_ae(ae: str) -> bytes:
    raw = _ascii(ae)[:16] if "\ufffd" in ae else _ascii(ae)
    if len(raw) > 16:
        raise ValueError(f"AE title {ae!r} is longer than 16 characters")
    return raw.ljust(16, b" ")


def _header(kind: int, body: bytes) -> bytes:
    return struct.pack(">BBL", kind, 0, len(body)) + body


def encode(pdu) -> bytes:
    """The bytes of a PDU (header included)."""
    if isinstance(pdu, (AssociateRQ, AssociateAC)):
        kind = A_ASSOCIATE_AC if isinstance(pdu, AssociateAC) else A_ASSOCIATE_RQ
        parts = [
            struct.pack(">HH", pdu.protocol_version, 0),
            _pad_ae(pdu.called_ae),
            _pad_ae(pdu.calling_ae),
            bytes(32),
        ]
        parts.append(_item(0x10, _ascii(pdu.application_context)))
        for pc in pdu.contexts:
            if kind == A_ASSOCIATE_RQ:
                sub = _item(0x30, _ascii(pc.abstract_syntax or "")) + b"".join(
                    _item(0x40, _ascii(ts)) for ts in pc.transfer_syntaxes
                )
                parts.append(_item(0x20, bytes((pc.id, 0, 0, 0)) + sub))
            else:
                ts = pc.transfer_syntaxes[:1] if pc.result == PC_ACCEPTANCE else (pc.transfer_syntaxes[:1] or [""])
                sub = b"".join(_item(0x40, _ascii(t)) for t in ts)
                parts.append(_item(0x21, bytes((pc.id, 0, pc.result or 0, 0)) + sub))
        parts.append(_encode_user_info(pdu.user_info, kind))
        return _header(kind, b"".join(parts))
    if isinstance(pdu, AssociateRJ):
        return _header(A_ASSOCIATE_RJ, bytes((0, pdu.result, pdu.source, pdu.reason)))
    if isinstance(pdu, PDataTF):
        return _header(
            P_DATA_TF,
            b"".join(struct.pack(">LBB", len(v) + 2, ctx, control) + bytes(v) for ctx, control, v in pdu.pdvs),
        )
    if isinstance(pdu, ReleaseRQ):
        return _header(A_RELEASE_RQ, bytes(4))
    if isinstance(pdu, ReleaseRP):
        return _header(A_RELEASE_RP, bytes(4))
    if isinstance(pdu, Abort):
        return _header(A_ABORT, bytes((0, 0, pdu.source, pdu.reason)))
    raise TypeError(f"not a PDU: {type(pdu).__name__}")


def pdata_header(context_id: int, control: int, length: int) -> bytes:
    """The 12 bytes that start a P-DATA-TF PDU holding one PDV of ``length`` value bytes."""
    return struct.pack(">BBLLBB", P_DATA_TF, 0, length + 6, length + 2, context_id, control)
