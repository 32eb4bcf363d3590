"""DIMSE (PS3.7): command sets, statuses, and the channel that frames messages on an association.

A command is a ``dict`` from keyword to value. :func:`encode_command` writes
the elements in ascending tag order with (0000,0000) Command Group Length
first (group 0000 in Implicit VR Little Endian, PS3.7 9.3 and Annex E);
:func:`decode_command` reads them back and refuses anything outside group
0000 or past its bytes.

:class:`DimseChannel` sends and receives whole messages on an
:class:`~fastdicom.net.association.Association`: the command set and data
set as separate message parts, one PDV per PDU, even fragments within the
peer's maximum length. Received messages are checked for the same rules
(one context per message, no interleaving, command before data); a data set
can be streamed to a :class:`~fastdicom.net.dataplane.DataSink` fragment by
fragment instead of being collected in memory.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import FastDicomError
from .association import Association, Negotiated, NetworkError, ReleaseRequested
from .dataplane import DataSink, FileRegion, Stop
from .pdu import COMMAND, LAST_FRAGMENT, AbortReason, Pdv

# keyword -> (tag, VR)
COMMAND_ELEMENTS: dict[str, tuple[int, str]] = {
    "CommandGroupLength": (0x00000000, "UL"),
    "AffectedSOPClassUID": (0x00000002, "UI"),
    "RequestedSOPClassUID": (0x00000003, "UI"),
    "CommandField": (0x00000100, "US"),
    "MessageID": (0x00000110, "US"),
    "MessageIDBeingRespondedTo": (0x00000120, "US"),
    "MoveDestination": (0x00000600, "AE"),
    "Priority": (0x00000700, "US"),
    "CommandDataSetType": (0x00000800, "US"),
    "Status": (0x00000900, "US"),
    "OffendingElement": (0x00000901, "AT"),
    "ErrorComment": (0x00000902, "LO"),
    "ErrorID": (0x00000903, "US"),
    "AffectedSOPInstanceUID": (0x00001000, "UI"),
    "RequestedSOPInstanceUID": (0x00001001, "UI"),
    "EventTypeID": (0x00001002, "US"),
    "AttributeIdentifierList": (0x00001005, "AT"),
    "ActionTypeID": (0x00001008, "US"),
    "NumberOfRemainingSuboperations": (0x00001020, "US"),
    "NumberOfCompletedSuboperations": (0x00001021, "US"),
    "NumberOfFailedSuboperations": (0x00001022, "US"),
    "NumberOfWarningSuboperations": (0x00001023, "US"),
    "MoveOriginatorApplicationEntityTitle": (0x00001030, "AE"),
    "MoveOriginatorMessageID": (0x00001031, "US"),
}
_BY_TAG = {tag: (kw, vr) for kw, (tag, vr) in COMMAND_ELEMENTS.items()}

# Command Field values (PS3.7 E.1)
C_STORE_RQ, C_STORE_RSP = 0x0001, 0x8001
C_GET_RQ, C_GET_RSP = 0x0010, 0x8010
C_FIND_RQ, C_FIND_RSP = 0x0020, 0x8020
C_MOVE_RQ, C_MOVE_RSP = 0x0021, 0x8021
C_ECHO_RQ, C_ECHO_RSP = 0x0030, 0x8030
N_EVENT_REPORT_RQ, N_EVENT_REPORT_RSP = 0x0100, 0x8100
N_ACTION_RQ, N_ACTION_RSP = 0x0130, 0x8130
C_CANCEL_RQ = 0x0FFF

#: Command Data Set Type: no data set follows.
NO_DATA_SET = 0x0101
HAS_DATA_SET = 0x0000


class Status(enum.IntEnum):
    """Statuses any DIMSE service may answer (PS3.7 Annex C); each service adds its own (C-STORE:
    :class:`fastdicom.services.storage.StoreStatus`)."""

    SUCCESS = 0x0000
    ATTRIBUTE_LIST_ERROR = 0x0107  # a warning
    ATTRIBUTE_VALUE_OUT_OF_RANGE = 0x0116  # a warning
    PROCESSING_FAILURE = 0x0110
    DUPLICATE_SOP_INSTANCE = 0x0111
    INVALID_SOP_INSTANCE = 0x0117
    SOP_CLASS_NOT_SUPPORTED = 0x0122
    NOT_AUTHORIZED = 0x0124
    DUPLICATE_INVOCATION = 0x0210
    UNRECOGNIZED_OPERATION = 0x0211
    MISTYPED_ARGUMENT = 0x0212
    CANCEL = 0xFE00
    PENDING = 0xFF00
    PENDING_WARNING = 0xFF01


class Category(str, enum.Enum):
    """The category of a status (PS3.7 C.1)."""

    SUCCESS = "success"
    WARNING = "warning"
    FAILURE = "failure"
    PENDING = "pending"
    CANCEL = "cancel"


def status_category(status: int) -> Category:
    """What a status means, for every service (PS3.7 C.1 and the service ranges of PS3.4): the one place."""
    if status == Status.SUCCESS:
        return Category.SUCCESS
    if status in (Status.PENDING, Status.PENDING_WARNING):
        return Category.PENDING
    if status == Status.CANCEL:
        return Category.CANCEL
    if (
        status in (0x0001, Status.ATTRIBUTE_LIST_ERROR, Status.ATTRIBUTE_VALUE_OUT_OF_RANGE)
        or 0xB000 <= status <= 0xBFFF
    ):
        return Category.WARNING
    return Category.FAILURE


class DIMSEError(FastDicomError):
    """A command set that cannot be read, or a DIMSE exchange that broke the protocol."""


def _value(vr: str, value: Any) -> bytes:
    if vr == "US":
        return struct.pack("<H", value)
    if vr == "UL":
        return struct.pack("<L", value)
    if vr == "AT":
        tags = value if isinstance(value, (list, tuple)) else [value]
        return b"".join(struct.pack("<HH", t >> 16, t & 0xFFFF) for t in tags)
    raw = str(value).encode("ascii", "replace")
    if len(raw) % 2:
        raw += b"\0" if vr == "UI" else b" "
    return raw


def encode_command(command: dict[str, Any]) -> bytes:
    """Encode a command set; (0000,0000) is computed, other keywords must be command elements."""
    parts = []
    for kw, value in command.items():
        if kw == "CommandGroupLength" or value is None:
            continue
        try:
            tag, vr = COMMAND_ELEMENTS[kw]
        except KeyError:
            raise DIMSEError(f"{kw!r} is not a command element") from None
        parts.append((tag, _value(vr, value)))
    parts.sort()
    body = b"".join(struct.pack("<HHL", tag >> 16, tag & 0xFFFF, len(v)) + v for tag, v in parts)
    return struct.pack("<HHLL", 0, 0, 4, len(body)) + body


def decode_command(raw: bytes | bytearray | memoryview) -> dict[str, Any]:
    """Decode a command set; unknown group 0000 elements are kept under their hex tag."""
    raw = memoryview(raw)
    out: dict[str, Any] = {}
    pos, end = 0, len(raw)
    if end >= 12 and struct.unpack_from("<HHL", raw, 0) == (0, 0, 4):
        declared = 12 + struct.unpack_from("<L", raw, 8)[0]
        if declared + 4 <= end and struct.unpack_from("<H", raw, declared)[0] != 0:
            # Orthanc 1.10.1 (its C-GET SCP's failure answer) appends the identifier to the command PDV;
            # the command ends where its group length says: what follows is dropped, not misread.
            end = declared
    while pos < end:
        if pos + 8 > end:
            raise DIMSEError(f"command set truncated at byte {pos}")
        group, elem, n = struct.unpack_from("<HHL", raw, pos)
        pos += 8
        if group != 0:
            raise DIMSEError(f"element ({group:04X},{elem:04X}) in a command set")
        if pos + n > end:
            raise DIMSEError(f"command element (0000,{elem:04X}) of length {n} runs past the command set")
        v = raw[pos : pos + n]
        pos += n
        kw, vr = _BY_TAG.get(elem, (f"{elem:08X}", "UN"))
        if vr == "US":
            if n != 2:
                raise DIMSEError(f"{kw} must be 2 bytes, not {n}")
            out[kw] = struct.unpack("<H", v)[0]
        elif vr == "UL":
            if n != 4:
                raise DIMSEError(f"{kw} must be 4 bytes, not {n}")
            out[kw] = struct.unpack("<L", v)[0]
        elif vr == "AT":
            if n % 4:
                raise DIMSEError(f"{kw} length {n} is not a multiple of 4")
            halves = struct.unpack(f"<{n // 2}H", v)
            tags = [halves[i] << 16 | halves[i + 1] for i in range(0, len(halves), 2)]
            out[kw] = tags[0] if len(tags) == 1 else tags
        elif vr == "UN":
            out[kw] = bytes(v)
        else:
            out[kw] = (
                bytes(v).decode("ascii", "replace").rstrip("\0 ").strip()
                if vr == "AE"
                else bytes(v).decode("ascii", "replace").rstrip("\0 ")
            )
    if "CommandField" not in out:
        raise DIMSEError("command set without a Command Field")
    return out


# -- messages on an association ------------------------------------------------------------------


@dataclass
class Message:
    """A DIMSE message: its command set, context, and data set bytes (None when streamed or absent)."""

    context_id: int
    command: dict[str, Any]
    data: bytes | None = None


#: Largest command set accepted (a real one is a few hundred bytes).
MAX_COMMAND = 1 << 16


class DimseChannel:
    """DIMSE messages on one association: message IDs, sending, and receiving (streamed or collected)."""

    def __init__(self, association: Association) -> None:
        self.association = association
        self._next_message_id = 1
        # PDVs of the next message that arrived in the PDU ending this one (copies: the buffer is reused).
        self._leftover: list[Pdv] = []

    @property
    def agreement(self) -> Negotiated:
        return self.association.agreement

    def next_message_id(self) -> int:
        mid = self._next_message_id
        self._next_message_id = mid % 0xFFFF + 1
        return mid

    def release(self) -> None:
        self.association.release()

    def abort(self) -> None:
        self.association.abort()

    def send_message(
        self, context_id: int, command: dict[str, Any], data: bytes | memoryview | FileRegion | None = None
    ) -> None:
        """Send a DIMSE message: command set, then data set (bytes, memoryview, FileRegion) when given."""
        assoc = self.association
        if context_id not in (assoc.negotiated.contexts if assoc.negotiated else {}):
            raise NetworkError(f"presentation context {context_id} is not accepted on this association")
        if data is not None and len(data) % 2:
            raise NetworkError("a data set must have an even length")
        command = dict(command)
        command["CommandDataSetType"] = NO_DATA_SET if data is None else HAS_DATA_SET
        encoded = encode_command(command)
        with assoc.sending():
            assoc.send_pdata(context_id, encoded, True)
            if data is not None:
                assoc.send_pdata(context_id, data, False)

    def receive_message(
        self,
        sink_factory: Callable[[int, dict[str, Any]], DataSink | None] | None = None,
        timeout: float | None = None,
        max_data: int = 64 << 20,
    ) -> Message:
        """Receive one DIMSE message.

        ``sink_factory(context_id, command)`` may return a :class:`DataSink`
        that gets the data set fragments as they arrive (the message's
        ``data`` is then None); otherwise the data set is collected, up to
        ``max_data`` bytes (more aborts the association). A peer's
        A-RELEASE-RQ raises :class:`~fastdicom.net.association.ReleaseRequested`
        (answer it with ``association.answer_release()``).
        """
        assoc = self.association
        command_buf = bytearray()
        command: dict[str, Any] | None = None
        context: int | None = None
        data_parts: list[bytes] = []
        collected = 0
        sink: DataSink | None = None
        expect_data = False
        first = True
        while True:
            header = None
            pdvs: list[Pdv] | None = None
            if self._leftover:
                pdvs, self._leftover = self._leftover, []
            elif sink is not None and context is not None and assoc.data_plane_may_receive():
                # The data set's fragments go from the socket to the sink in the data plane
                # (Rust, GIL released); it stops at the last one or at what needs us here.
                fd = sink.data_plane_fd()
                hasher = sink.data_plane_hasher(assoc.dataplane) if hasattr(sink, "data_plane_hasher") else None
                n, err, stop, extra = assoc.receive_data(context, fd, hasher)
                sink.data_plane_done(n, err)
                first = False
                if stop is Stop.DONE:
                    self._leftover = extra
                    assert command is not None  # a data set follows its command
                    return Message(context, command, None)
                if stop is Stop.PDVS:
                    pdvs = extra
                elif stop is Stop.MALFORMED:
                    assoc.provider_abort(AbortReason.INVALID_PDU_PARAMETER_VALUE, extra)
                else:
                    header = extra
            if pdvs is None:
                try:
                    pdvs = assoc.receive_pdata(timeout if first else None, header)
                except ReleaseRequested:
                    if command is not None or command_buf:
                        assoc.provider_abort(AbortReason.UNEXPECTED_PDU, "A-RELEASE-RQ in the middle of a message")
                    raise
                first = False
            for k, pdv in enumerate(pdvs):
                control = pdv.control
                if context is None:
                    if assoc.negotiated is None or pdv.context_id not in assoc.negotiated.contexts:
                        assoc.provider_abort(
                            AbortReason.INVALID_PDU_PARAMETER_VALUE, f"PDV on unaccepted context {pdv.context_id}"
                        )
                    context = pdv.context_id
                elif pdv.context_id != context:
                    assoc.provider_abort(AbortReason.INVALID_PDU_PARAMETER_VALUE, "PDVs of one message on two contexts")
                done: Message | None = None
                if control & COMMAND:
                    if command is not None:
                        assoc.provider_abort(AbortReason.UNEXPECTED_PDU_PARAMETER, "command fragment after the command")
                    command_buf += pdv.value
                    if len(command_buf) > MAX_COMMAND:
                        assoc.provider_abort(AbortReason.INVALID_PDU_PARAMETER_VALUE, "command set larger than 64 KiB")
                    if control & LAST_FRAGMENT:
                        try:
                            command = decode_command(command_buf)
                        except DIMSEError as exc:
                            assoc.provider_abort(AbortReason.INVALID_PDU_PARAMETER_VALUE, str(exc))
                        expect_data = command.get("CommandDataSetType", NO_DATA_SET) != NO_DATA_SET
                        if not expect_data:
                            done = Message(context, command)
                        elif sink_factory is not None:
                            sink = sink_factory(context, command)
                else:
                    if command is None or not expect_data:
                        assoc.provider_abort(AbortReason.UNEXPECTED_PDU_PARAMETER, "data fragment without a command")
                    if sink is not None:
                        sink.write(memoryview(pdv.value))
                    else:
                        collected += len(pdv.value)
                        if collected > max_data:
                            assoc.provider_abort(
                                AbortReason.NOT_SPECIFIED,
                                f"data set larger than {max_data} bytes where none was expected",
                            )
                        data_parts.append(bytes(pdv.value))
                    if control & LAST_FRAGMENT:
                        done = Message(context, command, None if sink is not None else b"".join(data_parts))
                if done is not None:
                    self._leftover = [Pdv(p.context_id, p.control, bytes(p.value)) for p in pdvs[k + 1 :]]
                    return done
