"""Conversion to and from pydicom (an optional dependency)."""

from __future__ import annotations

from typing import Any

from .dataset.dataset import Dataset, Element
from .dictionary import uid as _uid


def _to_pydicom_dataset(ds: Dataset, pydicom: Any, dataset_cls: Any) -> Any:
    out = dataset_cls()
    for elem in ds:
        out.add(_to_pydicom_element(elem, pydicom))
    return out


def _to_pydicom_element(elem: Element, pydicom: Any) -> Any:
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset as PDataset
    from pydicom.sequence import Sequence

    if elem.vr == "SQ":
        items = [_to_pydicom_dataset(item, pydicom, PDataset) for item in elem.value]
        return DataElement(elem.tag, "SQ", Sequence(items), is_undefined_length=elem.is_undefined_length)
    value = elem.value
    if elem.vr in ("DS", "IS") and value is not None:  # their text, so that pydicom keeps it as read
        value = [str(v) for v in value] if isinstance(value, list) else str(value)
    elif isinstance(value, list):
        value = list(value)
    return DataElement(elem.tag, elem.vr, value, is_undefined_length=elem.is_undefined_length)


def to_pydicom(ds: Dataset) -> Any:
    """Build a ``pydicom.Dataset`` from fastdicom's own parsed elements."""
    import pydicom
    from pydicom.dataset import Dataset as PDataset
    from pydicom.dataset import FileMetaDataset

    out = _to_pydicom_dataset(ds, pydicom, PDataset)
    if ds.file_meta is not None:
        meta = FileMetaDataset()
        for elem in ds.file_meta:
            meta.add(_to_pydicom_element(elem, pydicom))
        out.file_meta = meta
    if ds.preamble is not None:
        out.preamble = ds.preamble
    if ds.filename:
        out.filename = ds.filename
    out.set_original_encoding(ds.is_implicit_vr, ds.is_little_endian, ds.get(0x00080005))
    return out


def _value_from_pydicom(elem: Any) -> Any:
    from pydicom.multival import MultiValue
    from pydicom.valuerep import PersonName

    v = elem.value
    if elem.VR == "SQ":
        return [from_pydicom(item) for item in v]
    if isinstance(v, (MultiValue, list, tuple)):
        return [str(x) if isinstance(x, PersonName) else x for x in v]
    if isinstance(v, PersonName):
        return str(v)
    return v


def _pydicom_little(pds: Any) -> bool:
    """Whether a pydicom data set's bytes values (OW, OF...) are little endian: as it was read, else its syntax."""
    little = getattr(pds, "original_encoding", (None, None))[1]
    if little is None:
        meta = getattr(pds, "file_meta", None)
        ts = meta.get("TransferSyntaxUID") if meta is not None else None
        little = ts != _uid.ExplicitVRBigEndian
    return bool(little)


def from_pydicom(pds: Any) -> Dataset:
    """Build a :class:`fastdicom.Dataset` from a ``pydicom.Dataset``.

    Bytes values keep pydicom's bytes, so the new data set takes the byte
    order they are in (pydicom converts nothing): a big-endian one stays so.
    """
    meta = getattr(pds, "file_meta", None)
    fm = None
    if meta is not None and len(meta):
        fm = Dataset()
        for elem in meta:
            fm.add_new(elem.tag, elem.VR, _value_from_pydicom(elem))
    ds = Dataset._empty(
        little_endian=_pydicom_little(pds), transfer_syntax=fm.get(0x00020010) if fm is not None else None
    )
    for elem in pds:
        vr = elem.VR if " or " not in elem.VR else elem.VR.split(" or ")[-1]
        ds.add_new(elem.tag, vr, _value_from_pydicom(elem))
    if fm is not None:
        ds.file_meta = fm
    pre = getattr(pds, "preamble", None)
    ds.preamble = pre
    return ds
