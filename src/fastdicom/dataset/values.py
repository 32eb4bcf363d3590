"""Decoding and encoding of element values, VR by VR (PS3.5 section 6.2).

Values use the types and values of pydicom 3's defaults so that they
compare equal and carry the same attributes (see :mod:`.valuerep`): ``str``
for text VRs, :class:`~.valuerep.UID` for UI, :class:`~.valuerep.PersonName`
for PN, :class:`~.valuerep.IS` for IS and :class:`~.valuerep.DSfloat` for DS
(numbers that keep their text), ``int`` for US/SS/UL/SL/UV/SV, ``float`` for
FL/FD, ``str`` for DA/TM/DT, ``int`` tag for AT, ``bytes`` for
OB/OW/OD/OF/OL/OV/UN, a :class:`~.valuerep.MultiValue` (a list) for VM > 1.
Empty values are ``''`` for text VRs and ``None`` for the others.
"""

from __future__ import annotations

import struct
from typing import Any

from ..errors import InvalidDicomError
from .charset import decode_text, encode_text
from .valuerep import IS, UID, DSfloat, MultiValue, PersonName

_ds_from = DSfloat._from
_is_from = IS._from

DEFAULT_ENCODING = "latin_1"

#: VRs whose value is text in the default repertoire.
ASCII_TEXT_VRS = frozenset(("AE", "AS", "CS", "DA", "DT", "TM", "UI", "UR", "DS", "IS"))
#: VRs whose value is text in the Specific Character Set.
CHARSET_TEXT_VRS = frozenset(("SH", "LO", "UC", "ST", "LT", "UT", "PN"))
TEXT_VRS = ASCII_TEXT_VRS | CHARSET_TEXT_VRS
BYTES_VRS = frozenset(("OB", "OD", "OF", "OL", "OV", "OW", "UN"))
NUMBER_FORMATS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d", "UV": "Q", "SV": "q"}
#: Empty value of text VRs is '' (None for the others, [] for SQ).
EMPTY_STR_VRS = frozenset(("AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"))
#: Padding byte of each text VR (PS3.5 6.2): NUL for UI, space for the others.
_STRUCTS: dict[tuple[bool, str, int], struct.Struct] = {}


def _struct(little: bool, fmt: str, count: int) -> struct.Struct:
    key = (little, fmt, count)
    s = _STRUCTS.get(key)
    if s is None:
        s = _STRUCTS[key] = struct.Struct(("<" if little else ">") + fmt * count)
    return s


def empty_value(vr: str) -> Any:
    if vr == "SQ":
        return []
    if vr in EMPTY_STR_VRS:
        return ""
    return None


def _multi(values: list) -> Any:
    return values[0] if len(values) == 1 else MultiValue(values)


def _ds(s: str) -> Any:
    t = s.strip()
    if not t:
        return s if s == "" else ""
    try:
        return _ds_from(float(t), t)
    except ValueError:
        return s


def _is(s: str) -> Any:
    t = s.strip()
    if not t:
        return ""
    try:
        return _is_from(int(t), t)
    except ValueError:
        try:
            f = float(t)
        except ValueError:
            return s
        return _is_from(int(f), t) if f.is_integer() else s


def _numbers(fmt: str, size: int):
    def dec(raw, little, codecs):
        count, rem = divmod(len(raw), size)
        if rem:
            raise InvalidDicomError(f"value length {len(raw)} is not a multiple of {size}")
        values = _struct(little, fmt, count).unpack_from(raw)
        return values[0] if count == 1 else MultiValue(values)

    return dec


def _bytes(raw, little, codecs):
    return bytes(raw)


def _ae(raw, little, codecs):
    return _multi([v.strip() for v in str(raw, DEFAULT_ENCODING).split("\\")])


def _ur(raw, little, codecs):
    return str(raw, DEFAULT_ENCODING).rstrip()


def _ds_value(raw, little, codecs):
    s = str(raw, DEFAULT_ENCODING)
    if "\\" not in s:
        return _ds(s)
    return MultiValue([_ds(v) for v in s.strip().split("\\")])


def _is_value(raw, little, codecs):
    s = str(raw, DEFAULT_ENCODING)
    if "\\" not in s:
        return _is(s)
    return MultiValue([_is(v) for v in s.strip().split("\\")])


def _ui(raw, little, codecs):
    s = str(raw, DEFAULT_ENCODING).rstrip("\0 ")
    if "\\" in s:
        return MultiValue([UID(v) if v else v for v in s.split("\\")])
    return UID(s) if s else s


def _datetime(raw, little, codecs):
    s = str(raw, DEFAULT_ENCODING).rstrip(" \0")
    if "\\" not in s:
        return s.rstrip()
    return MultiValue(s.split("\\"))


def _ascii(raw, little, codecs):
    s = str(raw, DEFAULT_ENCODING).rstrip(" \0")
    return MultiValue(s.split("\\")) if "\\" in s else s


def _pn(raw, little, codecs):
    s = decode_text(bytes(raw).rstrip(b"\0 "), codecs, "PN")
    # Trailing empty component groups carry nothing: 'A^B=' is 'A^B'.
    return _multi([PersonName(v.rstrip("=")) for v in s.split("\\")])


def _single_text(vr: str):
    def dec(raw, little, codecs):
        return decode_text(bytes(raw), codecs, vr).rstrip("\0 ")

    return dec


def _multi_text(vr: str):
    def dec(raw, little, codecs):
        s = decode_text(bytes(raw), codecs, vr)
        if "\\" not in s:
            return s.rstrip("\0 ")
        return MultiValue([v.rstrip("\0 ") for v in s.split("\\")])

    return dec


def _at(raw, little, codecs):
    count, rem = divmod(len(raw), 4)
    if rem:
        raise InvalidDicomError(f"value length {len(raw)} of VR AT is not a multiple of 4")
    halves = _struct(little, "H", count * 2).unpack_from(raw)
    return _multi([halves[i] << 16 | halves[i + 1] for i in range(0, len(halves), 2)])


#: VR -> decoder(raw, little_endian, codecs); unknown VRs keep their bytes.
DECODERS = {
    **{vr: _numbers(fmt, struct.calcsize("<" + fmt)) for vr, fmt in NUMBER_FORMATS.items()},
    **{vr: _bytes for vr in BYTES_VRS},
    "AE": _ae,
    "UR": _ur,
    "DS": _ds_value,
    "IS": _is_value,
    "UI": _ui,
    "DA": _datetime,
    "DT": _datetime,
    "TM": _datetime,
    "AS": _ascii,
    "CS": _ascii,
    "PN": _pn,
    "ST": _single_text("ST"),
    "LT": _single_text("LT"),
    "UT": _single_text("UT"),
    "SH": _multi_text("SH"),
    "LO": _multi_text("LO"),
    "UC": _multi_text("UC"),
    "AT": _at,
}


def decode(vr: str, raw, little: bool, codecs: tuple[str, ...]) -> Any:
    """Decode the raw value bytes of one element (not SQ).

    Parameters
    ----------
    vr : str
        The element's (resolved) VR.
    raw : bytes or memoryview
        The encoded value.
    little : bool
        Byte order of the data set.
    codecs : tuple of str
        Python codecs of the Specific Character Set in effect.
    """
    if not raw:
        return empty_value(vr)
    return DECODERS.get(vr, _bytes)(raw, little, codecs)


def vm_of(vr: str, value: Any) -> int:
    """Value multiplicity, as pydicom counts it."""
    if value is None or value == "" or (isinstance(value, list) and not value and vr != "SQ"):
        return 0
    if vr == "SQ":
        return 1
    if isinstance(value, list):
        return len(value)
    return 1


def _pad(vr: str, b: bytes) -> bytes:
    if len(b) % 2:
        return b + (b"\0" if vr == "UI" else b" ")
    return b


def _fmt_ds(v: Any) -> str:
    if isinstance(v, str):
        return v
    orig = getattr(v, "original_string", None)
    if isinstance(orig, str):
        return orig
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    s = repr(float(v))
    if s.endswith(".0"):
        s = s[:-2]
    if len(s) > 16:
        s = f"{float(v):.10g}"
        if len(s) > 16:
            s = f"{float(v):.8g}"
    return s


def _text_of(vr: str, value: Any) -> str:
    if vr == "DS":
        return _fmt_ds(value)
    if vr == "IS":
        return value if isinstance(value, str) else str(value) if isinstance(value, IS) else str(int(value))
    return str(value)


def encode(vr: str, value: Any, little: bool, codecs: tuple[str, ...]) -> bytes:
    """Encode a Python value as the bytes of an element of VR ``vr`` (even length)."""
    if value is None:
        return b""
    if vr in BYTES_VRS:
        b = bytes(value)
        return b + b"\0" if len(b) % 2 else b
    fmt = NUMBER_FORMATS.get(vr)
    values = value if isinstance(value, (list, tuple)) else [value]
    if fmt is not None:
        if value == "":
            return b""
        return _struct(little, fmt, len(values)).pack(*values)
    if vr == "AT":
        halves = []
        for t in values:
            halves += [int(t) >> 16, int(t) & 0xFFFF]
        return _struct(little, "H", len(halves)).pack(*halves)
    if vr in TEXT_VRS:
        text = "\\".join(_text_of(vr, v) for v in values)
        if vr in CHARSET_TEXT_VRS:
            b = encode_text(text, codecs, vr)
        else:
            b = text.encode(DEFAULT_ENCODING)
        return _pad(vr, b)
    raise InvalidDicomError(f"cannot encode a value of VR {vr!r}")


class Encapsulated:
    """An encapsulated Pixel Data value to write (PS3.5 A.4): compressed frames, one fragment each.

    Assign it to Pixel Data (VR OB); the writer emits the undefined-length
    element, a Basic Offset Table (filled, unless ``offset_table`` is False),
    one item per frame (padded to even length) and the sequence delimiter.
    """

    __slots__ = ("frames", "offset_table")

    def __init__(self, frames: list[bytes], *, offset_table: bool = True) -> None:
        self.frames = [bytes(f) for f in frames]
        self.offset_table = offset_table

    def items(self, little: bool) -> list[bytes]:
        fmt = "<HHL" if little else ">HHL"
        frames = [f + b"\0" if len(f) % 2 else f for f in self.frames]
        offsets, pos = [], 0
        for f in frames:
            offsets.append(pos)
            pos += 8 + len(f)
        if pos > 0xFFFFFFFF:
            raise ValueError("encapsulated frames exceed the 4 GiB a Basic Offset Table can address")
        bot = struct.pack(("<" if little else ">") + f"{len(offsets)}L", *offsets) if self.offset_table else b""
        out = [struct.pack(fmt, 0xFFFE, 0xE000, len(bot)), bot]
        for f in frames:
            out += [struct.pack(fmt, 0xFFFE, 0xE000, len(f)), f]
        out.append(struct.pack(fmt, 0xFFFE, 0xE0DD, 0))
        return out
