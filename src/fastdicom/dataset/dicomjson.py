"""The DICOM JSON Model (PS3.18 Annex F.2): one codec for ``Dataset.to_json``, QIDO-RS, WADO-RS metadata and STOW-RS.

A data set becomes an object whose keys are tags as eight upper-case hex
digits, each holding ``{"vr": VR}`` and at most one of:

- ``"Value"``: an array, one entry per value; an empty value inside a
  multi-valued element is ``null``. Strings for the text VRs, AT as
  ``"GGGGEEEE"``, numbers for DS, IS, FL, FD, SL, SS, UL, US, SV and UV,
  an object of ``"Alphabetic"``, ``"Ideographic"`` and ``"Phonetic"`` for PN
  (groups without text left out), an array of data set objects for SQ;
- ``"InlineBinary"``: the bytes of OB, OD, OF, OL, OV, OW and UN values,
  base64, in little-endian order whatever the data set's byte order;
- ``"BulkDataURI"``: where a handler put such bytes instead.

An element without a value has only its ``"vr"``. Group length elements
(gggg,0000) are left out (the model has no use for them), as is File Meta.
Text is decoded with the data set's Specific Character Set; the attribute
itself is kept, so that a data set read back from JSON writes its text as
it was.

:func:`from_json` reads the model back into a :class:`~.Dataset`, checking
every key, VR and value type: what does not conform raises
:class:`~fastdicom.errors.InvalidDicomError` naming the tag.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import InvalidDicomError
from . import byteorder
from .valuerep import IS, UID, DSfloat, MultiValue, PersonName

#: VRs whose JSON values are numbers.
NUMBER_VRS = frozenset(("DS", "FL", "FD", "IS", "SL", "SS", "UL", "US", "SV", "UV"))
#: VRs whose values travel as InlineBinary or BulkDataURI.
BINARY_VRS = frozenset(("OB", "OD", "OF", "OL", "OV", "OW", "UN"))
TEXT_VRS = frozenset(
    ("AE", "AS", "CS", "DA", "DT", "LO", "LT", "SH", "ST", "TM", "UC", "UI", "UR", "UT")
)  # fmt: skip
ALL_VRS = NUMBER_VRS | BINARY_VRS | TEXT_VRS | {"AT", "PN", "SQ"}
_PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")
#: Deepest sequence nesting :func:`from_json` accepts (hostile input cannot exhaust the stack).
MAX_DEPTH = 64

BulkDataHandler = Callable[[Any], str]
BulkDataURIHandler = Callable[[int, str, str], Any]


def _key(tag: int) -> str:
    return f"{tag:08X}"


def _values_of(value: Any) -> list:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return list(value)
    return [value]


def _number(vr: str, v: Any, tag: int) -> Any:
    if v is None or v == "":
        return None
    if vr in ("DS", "FL", "FD"):
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise InvalidDicomError(f"{vr} value {v!r} is not a number", tag) from None
        if not math.isfinite(f):  # JSON has no NaN or infinity
            raise InvalidDicomError(f"{vr} value {v} has no JSON number", tag)
        if vr == "FL":  # the shortest decimal that reads back as the same 32-bit float
            return float(np.format_float_positional(np.float32(f), unique=True, trim="-"))
        return f
    try:
        return int(v)
    except (TypeError, ValueError):
        raise InvalidDicomError(f"{vr} value {v!r} is not an integer", tag) from None


def _pn(v: Any) -> Any:
    if v is None or v == "":
        return None
    groups = str(v).split("=")
    out = {name: g for name, g in zip(_PN_GROUPS, groups) if g}
    return out or None


def _little_bytes(elem, vr: str) -> bytes:
    """The value's bytes in little-endian order, as the JSON model carries them (PS3.5 7.3, 8.2 rules)."""
    raw = bytes(elem.raw)
    ds = elem._ds
    if ds is not None and not ds._little and not elem.is_undefined_length:
        raw = bytes(byteorder.convert(raw, vr, False, True, tag=elem.tag))
    return raw


def element_json(
    elem,
    *,
    bulk_data_threshold: int = 1024,
    bulk_data_element_handler: BulkDataHandler | None = None,
    depth: int = 0,
) -> dict:
    """The JSON object of one element (``{"vr": ..., "Value" | "InlineBinary" | "BulkDataURI": ...}``)."""
    vr = elem.vr
    out: dict[str, Any] = {"vr": vr}
    if vr == "SQ":
        items = elem.value or []
        if items:
            out["Value"] = [
                dataset_json(
                    item,
                    bulk_data_threshold=bulk_data_threshold,
                    bulk_data_element_handler=bulk_data_element_handler,
                    depth=depth + 1,
                )
                for item in items
            ]
        return out
    if vr in BINARY_VRS or vr not in ALL_VRS:
        if vr not in ALL_VRS:
            out["vr"] = "UN"
        if len(elem.raw) == 0:
            return out
        if bulk_data_element_handler is not None and len(elem.raw) > bulk_data_threshold:
            out["BulkDataURI"] = bulk_data_element_handler(elem)
        else:
            out["InlineBinary"] = base64.b64encode(_little_bytes(elem, out["vr"])).decode("ascii")
        return out
    values = _values_of(elem.value)
    if not values:
        return out
    if vr in NUMBER_VRS:
        out["Value"] = [_number(vr, v, elem.tag) for v in values]
    elif vr == "PN":
        out["Value"] = [_pn(v) for v in values]
    elif vr == "AT":
        out["Value"] = [_key(int(v)) for v in values]
    else:
        out["Value"] = [str(v) if v != "" else None for v in values]
    return out


def dataset_json(
    ds,
    *,
    bulk_data_threshold: int = 1024,
    bulk_data_element_handler: BulkDataHandler | None = None,
    suppress_invalid_tags: bool = False,
    depth: int = 0,
) -> dict:
    """The DICOM JSON object of a data set (its File Meta left out)."""
    out: dict[str, Any] = {}
    for elem in ds:
        tag = elem.tag
        if tag & 0xFFFF == 0 or tag >> 16 == 0x0002:
            continue
        try:
            out[_key(tag)] = element_json(
                elem,
                bulk_data_threshold=bulk_data_threshold,
                bulk_data_element_handler=bulk_data_element_handler,
                depth=depth,
            )
        except (InvalidDicomError, UnicodeError, ValueError):
            if not suppress_invalid_tags:
                raise
    return out


def to_json_dict(
    ds,
    bulk_data_threshold: int = 1024,
    bulk_data_element_handler: BulkDataHandler | None = None,
    suppress_invalid_tags: bool = False,
) -> dict:
    """The data set as a DICOM JSON Model object (pydicom's ``Dataset.to_json_dict``).

    ``bulk_data_element_handler(elem) -> uri`` is called for binary values
    longer than ``bulk_data_threshold`` bytes; without a handler they are
    inlined. ``suppress_invalid_tags`` leaves out elements whose value
    cannot be represented instead of raising.
    """
    return dataset_json(
        ds,
        bulk_data_threshold=bulk_data_threshold,
        bulk_data_element_handler=bulk_data_element_handler,
        suppress_invalid_tags=suppress_invalid_tags,
    )


def to_json(
    ds,
    bulk_data_threshold: int = 1024,
    bulk_data_element_handler: BulkDataHandler | None = None,
    dump_handler: Callable[[dict], str] | None = None,
    suppress_invalid_tags: bool = False,
) -> str:
    """The data set as DICOM JSON text (pydicom's ``Dataset.to_json``; ``dump_handler`` replaces ``json.dumps``)."""
    d = to_json_dict(ds, bulk_data_threshold, bulk_data_element_handler, suppress_invalid_tags)
    if dump_handler is not None:
        return dump_handler(d)
    return json.dumps(d, sort_keys=True, ensure_ascii=False, allow_nan=False)


# -- reading ---------------------------------------------------------------


def _tag(key: Any) -> int:
    if not isinstance(key, str) or len(key) != 8:
        raise InvalidDicomError(f"DICOM JSON key {key!r} is not a tag of eight hex digits")
    try:
        return int(key, 16)
    except ValueError:
        raise InvalidDicomError(f"DICOM JSON key {key!r} is not a tag of eight hex digits") from None


def _from_number(vr: str, v: Any, tag: int) -> Any:
    if v is None:
        return ""
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise InvalidDicomError(f"{vr} value {v!r} is not a number", tag)
    if isinstance(v, str):  # some servers send DS, IS, SV and UV as strings
        try:
            v = float(v) if vr in ("DS", "FL", "FD") else int(v)
        except ValueError:
            raise InvalidDicomError(f"{vr} value {v!r} is not a number", tag) from None
    if vr == "DS":
        return DSfloat(v)
    if vr == "IS":
        if isinstance(v, float) and not v.is_integer():
            raise InvalidDicomError(f"IS value {v!r} is not an integer", tag)
        return IS(int(v))
    if vr in ("FL", "FD"):
        return float(v)
    if isinstance(v, float):
        if not v.is_integer():
            raise InvalidDicomError(f"{vr} value {v!r} is not an integer", tag)
        v = int(v)
    return v


def _from_pn(v: Any, tag: int) -> str:
    if v is None:
        return ""
    if isinstance(v, str):  # not the model, but seen from some servers
        return PersonName(v)
    if not isinstance(v, dict) or not set(v) <= set(_PN_GROUPS):
        raise InvalidDicomError(f"PN value {v!r} is not an object of Alphabetic, Ideographic, Phonetic", tag)
    groups = [v.get(g) or "" for g in _PN_GROUPS]
    if not all(isinstance(g, str) for g in groups):
        raise InvalidDicomError(f"PN component group of {v!r} is not a string", tag)
    return PersonName("=".join(groups).rstrip("="))


def _one_or_many(values: list) -> Any:
    if not values:
        return None
    return values[0] if len(values) == 1 else MultiValue(values)


def _element_value(tag: int, vr: str, obj: dict, handler: BulkDataURIHandler | None, depth: int) -> Any:
    keys = {"Value", "InlineBinary", "BulkDataURI"} & set(obj)
    if len(keys) > 1:
        raise InvalidDicomError(f"DICOM JSON element has more than one of {sorted(keys)}", tag)
    if "InlineBinary" in obj:
        if vr not in BINARY_VRS:
            raise InvalidDicomError(f"InlineBinary for VR {vr}", tag)
        data = obj["InlineBinary"]
        if not isinstance(data, str):
            raise InvalidDicomError("InlineBinary is not a base64 string", tag)
        try:
            return base64.b64decode(data, validate=True)
        except ValueError:
            raise InvalidDicomError("InlineBinary is not valid base64", tag) from None
    if "BulkDataURI" in obj:
        uri = obj["BulkDataURI"]
        if not isinstance(uri, str):
            raise InvalidDicomError("BulkDataURI is not a string", tag)
        if handler is None:
            return None
        return handler(tag, vr, uri)
    values = obj.get("Value")
    if values is None:
        return [] if vr == "SQ" else None
    if not isinstance(values, list):
        raise InvalidDicomError("Value is not an array", tag)
    if vr == "SQ":
        items = []
        for item in values:
            if not isinstance(item, dict):
                raise InvalidDicomError("a sequence item is not an object", tag)
            items.append(_dataset_from(item, handler, depth + 1))
        return items
    if vr in BINARY_VRS:
        raise InvalidDicomError(f"Value array for binary VR {vr}", tag)
    if vr in NUMBER_VRS:
        return _one_or_many([_from_number(vr, v, tag) for v in values])
    if vr == "PN":
        return _one_or_many([_from_pn(v, tag) for v in values])
    if vr == "AT":
        tags: list[int] = []
        for v in values:
            if not isinstance(v, str):
                raise InvalidDicomError(f"AT value {v!r} is not a string", tag)
            tags.append(_tag(v))
        return _one_or_many(tags)
    out: list[str] = []
    for v in values:
        if v is None:
            out.append("")
        elif isinstance(v, str):
            out.append(UID(v) if vr == "UI" and v else v)
        else:
            raise InvalidDicomError(f"{vr} value {v!r} is not a string", tag)
    return _one_or_many(out)


def _dataset_from(obj: dict, handler: BulkDataURIHandler | None, depth: int):
    from .dataset import Dataset, Element

    if depth > MAX_DEPTH:
        raise InvalidDicomError(f"DICOM JSON sequences nested deeper than {MAX_DEPTH}")
    ds = Dataset()
    elements = []
    for key, elem_obj in obj.items():
        tag = _tag(key)
        if not isinstance(elem_obj, dict):
            raise InvalidDicomError("a DICOM JSON attribute is not an object", tag)
        vr = elem_obj.get("vr")
        if vr not in ALL_VRS:
            raise InvalidDicomError(f"DICOM JSON attribute has no valid vr ({vr!r})", tag)
        elements.append(Element(tag, vr, _element_value(tag, vr, elem_obj, handler, depth)))
    for elem in elements:
        if elem.vr == "SQ":
            for item in elem.value:
                ds._adopt(item)
        ds[elem.tag] = elem
    return ds


def from_json(data: str | bytes | dict, bulk_data_uri_handler: BulkDataURIHandler | None = None):
    """A :class:`~.Dataset` from DICOM JSON text or an already parsed object (pydicom's ``Dataset.from_json``).

    ``bulk_data_uri_handler(tag, vr, uri) -> bytes`` fetches BulkDataURI
    values; without one those elements are left empty.
    """
    if isinstance(data, (str, bytes, bytearray)):
        try:
            data = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise InvalidDicomError(f"not DICOM JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidDicomError("DICOM JSON is an object of attributes")
    return _dataset_from(data, bulk_data_uri_handler, 0)
