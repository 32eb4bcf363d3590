"""The DICOM JSON Model codec (PS3.18 F.2), against DCMTK's dcm2json and pydicom, on the public corpus.

DCMTK follows the model's rules, so it is the oracle: no group length
attributes, ``null`` for an empty value inside a multi-valued element, no
``Value`` for an empty sequence, InlineBinary little endian. Where dcm2json
says something else without the standard deciding, the comparison normalises
both sides and says why (see ``_normalise``). pydicom differs from the model
in three places, each asserted below.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import warnings

import numpy as np
import pytest

import fastdicom
from fastdicom.errors import InvalidDicomError

from ..corpus import corpus_files

DCM2JSON = "/usr/bin/dcm2json"
FILES = [cf for cf in corpus_files() if cf.resolve() is not None]


def _fl(v):
    return float(np.float32(v))


def _pn(pn: dict | None) -> dict | None:
    groups = {k: v.rstrip("^") for k, v in (pn or {}).items()}
    groups = {k: v for k, v in groups.items() if v}
    return groups or None


def _normalise(ours: dict, theirs: dict) -> tuple[dict, dict]:
    """Both sides of a comparison with DCMTK, where dcm2json differs without the standard deciding:

    - Specific Character Set: dcm2json converts text to UTF-8 and says ISO_IR 192; we keep the attribute;
    - FL: dcm2json prints nine digits, we the shortest decimal of the 32-bit float: compared as float32;
    - FD: dcm2json prints 16 significant digits, which can miss the double by one unit in the last place;
      we print the shortest decimal that reads back as the same double: compared to 15 digits;
    - PN: dcm2json drops trailing empty components (``A^B^^`` as ``A^B``, ``^^^`` as no value), we keep
      the value as stored;
    - CS: dcm2json trims each value of a multi-valued element, we trim the whole value (as pydicom);
    - a text value of spaces: dcm2json writes ``[null]``, we no Value (the element's value is empty);
    - private elements dcm2json does not know (UN) where our private dictionary knows the VR;
    - an odd-length binary value (not conformant): dcm2json pads it to even, we give the bytes as stored.
    """
    skip = {k for k, v in theirs.items() if v.get("vr") == "UN" and ours.get(k, {}).get("vr") not in (None, "UN")}
    skip.add("00080005")
    a = {k: _element(v, theirs.get(k), mine=True) for k, v in ours.items() if k not in skip}
    b = {k: _element(v, ours.get(k), mine=False) for k, v in theirs.items() if k not in skip}
    return a, b


def _element(obj: dict, other: dict | None, mine: bool) -> dict:
    obj = dict(obj)
    vr, values = obj.get("vr"), obj.get("Value")
    if "InlineBinary" in obj:
        raw = base64.b64decode(obj["InlineBinary"])
        obj["InlineBinary"] = raw + b"\0" * (len(raw) % 2)
    if vr == "PN" and values:
        values = obj["Value"] = [_pn(pn) for pn in values]
    if values == [None]:
        obj.pop("Value")
    elif vr == "FL" and values:
        obj["Value"] = [_fl(v) for v in values]
    elif vr in ("FD", "DS") and values:
        obj["Value"] = [float(f"{v:.15g}") if v is not None else None for v in values]
    elif vr == "CS" and values:
        obj["Value"] = [v.strip() if isinstance(v, str) else v for v in values]
    elif vr == "SQ" and values:
        others = (other or {}).get("Value") or [{}] * len(values)
        pairs = [(item, o) if mine else (o, item) for item, o in zip(values, others)]
        obj["Value"] = [_normalise(x, y)[0 if mine else 1] for x, y in pairs]
    return obj


def _dcmtk(path) -> dict | None:
    r = subprocess.run([DCM2JSON, str(path)], capture_output=True, timeout=60)
    if r.returncode != 0:
        return None  # compressed Pixel Data (dcm2json will not inline it) or a file it refuses
    try:
        return json.loads(r.stdout)
    except UnicodeDecodeError:  # DCMTK 3.6.7 leaves text in a sequence item unconverted (chrSQEncoding.dcm)
        return None


@pytest.mark.skipif(shutil.which(DCM2JSON) is None and not os.path.exists(DCM2JSON), reason="DCMTK not installed")
@pytest.mark.parametrize("cf", FILES, ids=lambda cf: cf.id)
def test_json_matches_dcm2json(cf):
    path = cf.resolve()
    theirs = _dcmtk(path)
    if theirs is None:
        pytest.skip(
            "dcm2json does not convert this file (compressed Pixel Data, text it cannot convert, or it refuses it)"
        )
    try:
        ours = fastdicom.read(path).to_json_dict()
    except InvalidDicomError:
        pytest.skip("malformed on purpose: fastdicom refuses it")
    a, b = _normalise(ours, theirs)
    assert a == b


def _as_written(d: dict) -> dict:
    """What writing changes on purpose: odd-length binary values padded to even; OB Pixel Data of more than
    8 bits (not conformant, PS3.5 8.2) written as OW."""
    out = {}
    for k, v in d.items():
        v = dict(v)
        if "InlineBinary" in v:
            raw = base64.b64decode(v["InlineBinary"])
            v["InlineBinary"] = raw + b"\0" * (len(raw) % 2)
        if k == "7FE00010" and v["vr"] == "OB" and (d.get("00280100", {}).get("Value") or [8])[0] > 8:
            v["vr"] = "OW"
        if v.get("vr") == "SQ" and v.get("Value"):
            v["Value"] = [_as_written(item) for item in v["Value"]]
        out[k] = v
    return out


@pytest.mark.parametrize("cf", FILES, ids=lambda cf: cf.id)
def test_json_round_trip_keeps_every_value(cf):
    """to_json -> from_json -> to_json is the same JSON; for native Pixel Data, writing and reading the data set
    made from JSON gives it again too (encapsulated Pixel Data needs its transfer syntax, which the model does
    not carry: DICOMweb sends it beside the JSON)."""
    path = cf.resolve()
    try:
        ds = fastdicom.read(path)
        first = ds.to_json_dict()
    except InvalidDicomError:
        pytest.skip("malformed on purpose: fastdicom refuses it")
    back = fastdicom.Dataset.from_json(json.dumps(first))
    assert _as_written(back.to_json_dict()) == _as_written(first)
    ts = ds.transfer_syntax
    if ts is not None and fastdicom.dictionary.uid.is_encapsulated(ts):
        return
    again = fastdicom.read(fastdicom.to_bytes(back)).to_json_dict()
    assert _as_written(again) == _as_written(first)


def _pydicom_dict(path):
    pydicom = pytest.importorskip("pydicom")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path, force=True).to_json_dict()


def test_where_pydicom_differs_from_the_model():
    """pydicom keeps group lengths, writes '' for an empty value and [] for an empty sequence; the model does not."""
    pydicom = pytest.importorskip("pydicom")
    base = os.path.dirname(pydicom.data.__file__)
    siemens = next(cf.resolve() for cf in FILES if cf.path.endswith("MR-SIEMENS-DICOM-WithOverlays.dcm"))
    ours, theirs = fastdicom.read(siemens).to_json_dict(), _pydicom_dict(siemens)
    assert "" in theirs["00080008"]["Value"] and None in ours["00080008"]["Value"]
    j2k = next(cf.resolve() for cf in FILES if cf.path.endswith("693_J2KR.dcm"))
    assert "00080000" in _pydicom_dict(j2k) and "00080000" not in fastdicom.read(j2k).to_json_dict()
    cat = next(cf.resolve() for cf in FILES if cf.path.endswith("animals/cat.dcm"))
    assert _pydicom_dict(cat)["00102293"] == {"vr": "SQ", "Value": []}
    assert fastdicom.read(cat).to_json_dict()["00102293"] == {"vr": "SQ"}
    assert os.path.isdir(base)


def test_big_endian_inline_binary_is_little_endian():
    be = next(cf.resolve() for cf in FILES if cf.path.endswith("test_files/MR_small_bigendian.dcm"))
    le = next(cf.resolve() for cf in FILES if cf.path.endswith("test_files/MR_small.dcm"))
    a = fastdicom.read(be).to_json_dict()["7FE00010"]
    b = fastdicom.read(le).to_json_dict()["7FE00010"]
    assert a == b and base64.b64decode(a["InlineBinary"])[:4] == bytes(fastdicom.read(le).PixelData[:4])


def test_bulk_data_handlers_both_ways():
    path = next(cf.resolve() for cf in FILES if cf.path.endswith("test_files/CT_small.dcm"))
    ds = fastdicom.read(path)
    store = {}

    def put(elem):
        uri = f"bulk://{elem.tag:08X}"
        store[uri] = bytes(elem.raw)
        return uri

    d = ds.to_json_dict(bulk_data_threshold=64, bulk_data_element_handler=put)
    assert d["7FE00010"] == {"vr": "OW", "BulkDataURI": "bulk://7FE00010"}
    back = fastdicom.Dataset.from_json(d, lambda tag, vr, uri: store[uri])
    assert bytes(back.PixelData) == bytes(ds.PixelData)
    assert fastdicom.Dataset.from_json(d).get("PixelData") is None  # no handler: left empty
    text = ds.to_json(bulk_data_threshold=64, bulk_data_element_handler=put)
    assert json.loads(text) == d


@pytest.mark.parametrize(
    "doc",
    [
        "[]",
        "{not json",
        '{"0010001": {"vr": "PN"}}',
        '{"0010001G": {"vr": "PN"}}',
        '{"00100010": {"vr": "XX"}}',
        '{"00100010": "Doe"}',
        '{"00100010": {"vr": "PN", "Value": "Doe"}}',
        '{"00100010": {"vr": "PN", "Value": [{"Alphabetic": 3}]}}',
        '{"00100010": {"vr": "PN", "Value": [{"Nickname": "x"}]}}',
        '{"00280010": {"vr": "US", "Value": ["x"]}}',
        '{"00280010": {"vr": "US", "Value": [1.5]}}',
        '{"00280010": {"vr": "US", "Value": [true]}}',
        '{"00200013": {"vr": "IS", "Value": [1.5]}}',
        '{"00100010": {"vr": "PN", "Value": [1]}}',
        '{"7FE00010": {"vr": "OW", "InlineBinary": "***"}}',
        '{"7FE00010": {"vr": "OW", "InlineBinary": "AA==", "BulkDataURI": "x"}}',
        '{"7FE00010": {"vr": "OW", "Value": [1]}}',
        '{"00100010": {"vr": "PN", "InlineBinary": "AA=="}}',
        '{"00081140": {"vr": "SQ", "Value": [1]}}',
        '{"00209165": {"vr": "AT", "Value": [1]}}',
        '{"00080018": {"vr": "UI", "Value": [1]}}',
        "[" * 100000,
    ],
)
def test_bad_json_is_refused_with_a_typed_error(doc):
    with pytest.raises(InvalidDicomError):
        fastdicom.Dataset.from_json(doc)


def test_deep_nesting_is_refused():
    doc: dict = {}
    for _ in range(200):
        doc = {"00081140": {"vr": "SQ", "Value": [doc]}}
    with pytest.raises(InvalidDicomError, match="nested"):
        fastdicom.Dataset.from_json(doc)


def test_values_the_model_cannot_hold_are_refused_or_left_out():
    ds = fastdicom.Dataset()
    ds.add_new(0x00189087, "FD", float("nan"))
    with pytest.raises(InvalidDicomError):
        ds.to_json_dict()
    assert "00189087" not in ds.to_json_dict(suppress_invalid_tags=True)
