"""DIMSE command sets (PS3.7 section 9.3 and annex E): group 0000 in Implicit VR Little Endian.

A command is a ``dict`` from keyword to value. :func:`encode_command` writes
the elements in ascending tag order with (0000,0000) Command Group Length
first; :func:`decode_command` reads them back and refuses anything outside
group 0000 or past its bytes.
"""

from __future__ import annotations

import struct
from typing import Any

from ..errors import FastDicomError

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

VERIFICATION_SOP_CLASS = "1.2.840.10008.1.1"

# C-STORE statuses (PS3.4 B.2.3) and the general ones (PS3.7 C)
SUCCESS = 0x0000
WARNING_COERCION = 0xB000
WARNING_ELEMENTS_DISCARDED = 0xB006
WARNING_MISMATCH = 0xB007
OUT_OF_RESOURCES = 0xA700
DATA_SET_MISMATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000
SOP_CLASS_NOT_SUPPORTED = 0x0122
NOT_AUTHORIZED = 0x0124
DUPLICATE_INVOCATION = 0x0210
UNRECOGNIZED_OPERATION = 0x0211
MISTYPED_ARGUMENT = 0x0212
INVALID_SOP_INSTANCE = 0x0117
PROCESSING_FAILURE = 0x0110


class DIMSEError(FastDicomError):
    """A command set that cannot be read, or a DIMSE exchange that broke the protocol."""


def status_category(status: int) -> str:
    """'success', 'warning', 'failure', 'pending' or 'cancel' (PS3.7 C.1 and PS3.4 status ranges)."""
    if status == 0x0000:
        return "success"
    if status in (0xFF00, 0xFF01):
        return "pending"
    if status == 0xFE00:
        return "cancel"
    if status in (0x0001, 0x0107, 0x0116) or 0xB000 <= status <= 0xBFFF:
        return "warning"
    return "failure"


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
