"""One list of the pydicom idioms people type, run on pydicom and on fastdicom, with the results compared.

Each idiom is a function of a data set read by either library; where a
result cannot be compared directly (pydicom's own classes), ``_plain``
turns both into plain values first. The README's value-type table names
what works; this test is what keeps it true.
"""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest

import fastdicom
from fastdicom.dataset.valuerep import IS, UID, DSfloat, MultiValue, PersonName

pydicom = pytest.importorskip("pydicom")
from pydicom.data import get_testdata_file  # noqa: E402


def _file(name: str) -> str:
    from pathlib import Path

    charset = Path(pydicom.data.__file__).parent / "charset_files" / name
    path = str(charset) if charset.is_file() else get_testdata_file(name)
    if path is None:
        pytest.fail(f"{name} is not among pydicom {pydicom.__version__}'s test files")
    return str(path)


def _plain(v):
    """A value of either library as plain Python (lists, str, int, float), for comparison."""
    if isinstance(v, (list, tuple)) or type(v).__name__ == "MultiValue":
        return [_plain(x) for x in v]
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return float(v)
    if isinstance(v, bytes):
        return v
    return str(v)


#: (name, idiom): each runs on a data set of either library.
IDIOMS = [
    ("PatientName.family_name", lambda ds: ds.PatientName.family_name),
    ("PatientName.given_name", lambda ds: ds.PatientName.given_name),
    ("PatientName.middle_name", lambda ds: ds.PatientName.middle_name),
    ("PatientName.name_prefix", lambda ds: ds.PatientName.name_prefix),
    ("PatientName.name_suffix", lambda ds: ds.PatientName.name_suffix),
    ("PatientName.alphabetic", lambda ds: ds.PatientName.alphabetic),
    ("PatientName.ideographic", lambda ds: ds.PatientName.ideographic),
    ("PatientName.phonetic", lambda ds: ds.PatientName.phonetic),
    ("PatientName.components", lambda ds: list(ds.PatientName.components)),
    ("str(PatientName)", lambda ds: str(ds.PatientName)),
    ("PatientName == str", lambda ds: ds.PatientName == str(ds.PatientName)),
    ("family_comma_given()", lambda ds: ds.PatientName.family_comma_given()),
    ("formatted()", lambda ds: ds.PatientName.formatted("%(given_name)s %(family_name)s")),
    ("str(DS)", lambda ds: [str(ds[k].value) for k in ("SliceThickness", "RescaleIntercept") if k in ds]),
    ("float(DS)", lambda ds: [float(ds[k].value) for k in ("SliceThickness", "RescaleIntercept") if k in ds]),
    ("DS.original_string", lambda ds: ds.SliceThickness.original_string if "SliceThickness" in ds else None),
    ("str(IS)", lambda ds: str(ds.InstanceNumber) if "InstanceNumber" in ds else None),
    ("int(IS) + 1", lambda ds: int(ds.InstanceNumber) + 1 if "InstanceNumber" in ds else None),
    (
        "multi-valued DS",
        lambda ds: [float(x) for x in ds.ImagePositionPatient] if "ImagePositionPatient" in ds else None,
    ),
    ("str(multi-valued)", lambda ds: str(ds.ImageType) if "ImageType" in ds else None),
    ("str(multi-valued DS)", lambda ds: str(ds.PixelSpacing) if "PixelSpacing" in ds else None),
    ("multi-valued == list", lambda ds: ds.ImageType == list(ds.ImageType) if "ImageType" in ds else None),
    ("len(multi-valued)", lambda ds: len(ds.ImageType) if "ImageType" in ds else None),
    ("SOPClassUID.name", lambda ds: ds.SOPClassUID.name),
    ("SOPClassUID.keyword", lambda ds: ds.SOPClassUID.keyword),
    ("SOPClassUID.is_transfer_syntax", lambda ds: ds.SOPClassUID.is_transfer_syntax),
    ("TransferSyntaxUID.name", lambda ds: ds.file_meta.TransferSyntaxUID.name),
    ("TransferSyntaxUID.is_compressed", lambda ds: ds.file_meta.TransferSyntaxUID.is_compressed),
    ("TransferSyntaxUID.is_little_endian", lambda ds: ds.file_meta.TransferSyntaxUID.is_little_endian),
    ("TransferSyntaxUID.is_implicit_VR", lambda ds: ds.file_meta.TransferSyntaxUID.is_implicit_VR),
    ("TransferSyntaxUID.is_encapsulated", lambda ds: ds.file_meta.TransferSyntaxUID.is_encapsulated),
    ("SOPInstanceUID.is_valid", lambda ds: ds.SOPInstanceUID.is_valid),
    ("elem.VR", lambda ds: ds["PatientName"].VR),
    ("elem.VM", lambda ds: [ds[k].VM for k in ("PatientName", "ImageType") if k in ds]),
    ("elem.keyword", lambda ds: ds["PatientName"].keyword),
    ("elem.name", lambda ds: ds["PatientName"].name),
    ("elem.value", lambda ds: ds["PatientName"].value),
    ("elem.is_private", lambda ds: [e.is_private for e in ds][:40]),
    ("elem.is_empty", lambda ds: [e.is_empty for e in ds if e.VR != "SQ"][:60]),
    ("ds.data_element()", lambda ds: ds.data_element("PatientName").value),
    ("ds.data_element(absent)", lambda ds: ds.data_element("NoSuchKeyword")),
    ("ds.dir(filter)", lambda ds: ds.dir("Patient")),
    ("ds.dir(filters)", lambda ds: ds.dir("uid", "date")),
    ("ds.dir()", lambda ds: ds.dir()),
    ("'PatientName' in ds", lambda ds: "PatientName" in ds),
    ("ds.get(absent, default)", lambda ds: ds.get("NoSuchKeyword", 7)),
    ("ds.Rows, ds.Columns", lambda ds: (ds.Rows, ds.Columns)),
    ("ds.pixel_array.shape", lambda ds: ds.pixel_array.shape),
]


def _walk(ds) -> list:
    seen = []
    ds.walk(lambda d, e: seen.append((int(e.tag), e.VR)))
    return seen


IDIOMS += [
    ("ds.walk(callback)", _walk),
    (
        "ds.walk(callback, recursive=False)",
        lambda ds: (lambda s: (ds.walk(lambda d, e: s.append(int(e.tag)), recursive=False), s)[1])([]),
    ),
]

FILES = ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "chrH31.dcm", "chrX1.dcm", "SC_rgb_rle.dcm"]


def _both(name: str):
    path = _file(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path), fastdicom.read(path)


def _run(fn, ds):
    try:
        return ("ok", _plain(fn(ds)))
    except (AttributeError, KeyError) as exc:  # absent attribute: both must say so
        return ("absent", type(exc).__name__)


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("idiom,fn", IDIOMS, ids=[i[0] for i in IDIOMS])
def test_idiom_gives_what_pydicom_gives(name, idiom, fn):
    pds, fds = _both(name)
    expected = _run(fn, pds)
    got = _run(fn, fds)
    if expected[0] == "absent":
        assert got[0] == "absent", f"{idiom}: pydicom has no value, fastdicom gives {got[1]!r}"
        return
    assert got == expected, idiom


def test_value_types_are_pydicoms_subclasses():
    """The types are plain Python types underneath: comparisons, hashing, arithmetic and JSON work as for them."""
    ds = fastdicom.read(_file("CT_small.dcm"))
    assert isinstance(ds.PatientName, PersonName) and isinstance(ds.PatientName, str)
    assert isinstance(ds.SOPInstanceUID, UID) and isinstance(ds.SOPInstanceUID, str)
    assert isinstance(ds.SliceThickness, DSfloat) and isinstance(ds.SliceThickness, float)
    assert isinstance(ds.InstanceNumber, IS) and isinstance(ds.InstanceNumber, int)
    assert isinstance(ds.ImagePositionPatient, MultiValue) and isinstance(ds.ImagePositionPatient, list)
    assert {ds.PatientName: 1}[str(ds.PatientName)] == 1
    assert ds.SliceThickness * 2 == 10.0 and type(ds.SliceThickness * 2) is float
    assert json.loads(json.dumps([ds.SliceThickness, ds.InstanceNumber, ds.PatientName])) == [
        5.0,
        1,
        str(ds.PatientName),
    ]
    assert np.asarray(ds.ImagePositionPatient, dtype=float).shape == (3,)


def test_assigned_values_get_the_read_types():
    """pydicom converts on assignment; so do we, and writing keeps a DS's text."""
    ds = fastdicom.read(_file("CT_small.dcm"))
    ds.PatientName = "Doe^Jane^^Dr."
    ds.SliceThickness = "2.50"
    ds.ImagePositionPatient = ["1.0", "-2", 3.5]
    ds.InstanceNumber = "007"
    assert ds.PatientName.family_name == "Doe" and ds.PatientName.name_prefix == "Dr."
    assert str(ds.SliceThickness) == "2.50"
    assert isinstance(ds.ImagePositionPatient, MultiValue) and [str(x) for x in ds.ImagePositionPatient] == [
        "1.0",
        "-2",
        "3.5",
    ]
    back = fastdicom.read(fastdicom.to_bytes(ds))
    assert str(back.SliceThickness) == "2.50" and str(back.InstanceNumber) == "007"
    p = pydicom.dcmread(__import__("io").BytesIO(fastdicom.to_bytes(ds)))
    assert p.ImagePositionPatient.original_string if hasattr(p.ImagePositionPatient, "original_string") else True
    assert [str(x) for x in p.ImagePositionPatient] == ["1.0", "-2", "3.5"]


def test_person_name_components_follow_ps3_5():
    pn = PersonName("Yamada^Tarou=山田^太郎=やまだ^たろう")
    assert pn.components == ("Yamada^Tarou", "山田^太郎", "やまだ^たろう")
    assert (pn.family_name, pn.given_name, pn.ideographic, pn.phonetic) == (
        "Yamada",
        "Tarou",
        "山田^太郎",
        "やまだ^たろう",
    )
    assert PersonName("").components == () and PersonName("A==").components == ("A",)
    built = PersonName.from_named_components(family_name="Doe", given_name="John", family_name_ideographic="ド")
    assert built == "Doe^John=ド" and built.ideographic == "ド"
    for name in ("Doe^John", "A^B^C^D^E", "=X^Y", "Z==P"):
        assert pydicom.valuerep.PersonName(name).components == PersonName(name).components


def test_uid_properties_match_pydicom_on_the_registry():
    """Every UID of the registry: name, keyword, type and the transfer syntax flags, against pydicom.

    Where we differ, the standard decides: Encapsulated Uncompressed Explicit VR Little Endian is encapsulated
    but not compressed (pydicom says compressed); the two JPIP Referenced Deflate syntaxes deflate their data
    set (PS3.5 A.5; pydicom says not deflated); Papyrus 3 Implicit VR Little Endian (retired) is implicit VR
    with native Pixel Data, as its name says (pydicom says explicit, encapsulated and compressed).
    """
    from fastdicom.dictionary._uids import UIDS

    ours_differ = {
        ("1.2.840.10008.1.2.1.98", "is_compressed"),
        ("1.2.840.10008.1.2.4.95", "is_deflated"),
        ("1.2.840.10008.1.2.4.205", "is_deflated"),
        ("1.2.840.10008.1.20", "is_implicit_VR"),
        ("1.2.840.10008.1.20", "is_encapsulated"),
        ("1.2.840.10008.1.20", "is_compressed"),
    }
    from ci.gen_dictionary import NEWER_UIDS

    for uid in UIDS:
        if uid in NEWER_UIDS:  # added to the standard after pydicom 3.0.2's tables
            continue
        a, b = pydicom.uid.UID(uid), UID(uid)
        assert (a.name, a.keyword, a.type, a.is_transfer_syntax) == (b.name, b.keyword, b.type, b.is_transfer_syntax)
        if not b.is_transfer_syntax:
            continue
        for flag in ("is_little_endian", "is_implicit_VR", "is_deflated", "is_encapsulated", "is_compressed"):
            if (uid, flag) in ours_differ:
                assert getattr(a, flag) != getattr(b, flag)
            else:
                assert getattr(a, flag) == getattr(b, flag), (uid, flag)
    assert UID("1.2.3").name == "1.2.3" and UID("1.2.3").is_private and not UID("1.2.840.10008.1.2").is_private
    assert UID("1.2.04").is_valid is False and UID("1.2.840.10008.1.2").is_valid
    with pytest.raises(ValueError):
        _ = UID("1.2.840.10008.5.1.4.1.1.2").is_compressed


def test_str_of_a_dataset_prints_file_meta_first():
    path = _file("CT_small.dcm")
    text = str(fastdicom.read(path))
    expected = str(pydicom.dcmread(path))
    assert text.splitlines()[0] == expected.splitlines()[0] == "Dataset.file_meta -------------------------------"
    ours = [line[:11] for line in text.splitlines() if line.startswith("(")]
    theirs = [line[:11] for line in expected.splitlines() if line.startswith("(")]
    assert ours == theirs  # the same elements, in the same order, File Meta first
    assert "(0010,0010) Patient's Name                      PN: 'CompressedSamples^CT1'" in text.splitlines()


def test_save_as_writes_what_pydicom_reads(tmp_path):
    path = _file("CT_small.dcm")
    ds = fastdicom.read(path)
    out = tmp_path / "out.dcm"
    ds.save_as(out, implicit_vr=True, little_endian=True)
    back = pydicom.dcmread(out)
    assert back.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    assert np.array_equal(back.pixel_array, pydicom.dcmread(path).pixel_array)
    with pytest.raises(FileExistsError):
        ds.save_as(out, overwrite=False)
    ds.save_as(out)  # the default: overwrite, in the data set's own syntax
    assert pydicom.dcmread(out).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"


def test_decompress_and_compress_in_place_as_pydicom():
    path = _file("SC_rgb_rle.dcm")
    pds, fds = _both("SC_rgb_rle.dcm")
    uid = fds.SOPInstanceUID
    pds.decompress()
    fds.decompress()
    assert fds.file_meta.TransferSyntaxUID == pds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert np.array_equal(fds.pixel_array, pds.pixel_array)
    assert fds.SOPInstanceUID != uid and fds.SOPInstanceUID.is_valid  # pydicom 3 makes a new instance too
    assert fds.file_meta.MediaStorageSOPInstanceUID == fds.SOPInstanceUID
    kept = fastdicom.read(path)
    kept.decompress(generate_instance_uid=False)
    assert kept.SOPInstanceUID == uid
    fds.compress("1.2.840.10008.1.2.5")
    pds.compress("1.2.840.10008.1.2.5")
    assert fds.file_meta.TransferSyntaxUID == pds.file_meta.TransferSyntaxUID
    assert np.array_equal(fds.pixel_array, pds.pixel_array)
    again = pydicom.dcmread(__import__("io").BytesIO(fastdicom.to_bytes(fds)))
    assert np.array_equal(again.pixel_array, pds.pixel_array)


def test_json_pair_round_trips_and_pydicom_reads_it():
    path = _file("CT_small.dcm")
    ds = fastdicom.read(path)
    text = ds.to_json()
    back = fastdicom.Dataset.from_json(text)
    assert back.to_json_dict() == ds.to_json_dict()
    theirs = pydicom.Dataset.from_json(text)
    assert theirs.PatientName == ds.PatientName and float(theirs.SliceThickness) == 5.0
    assert np.array_equal(np.frombuffer(theirs.PixelData, "<i2"), np.frombuffer(bytes(ds.PixelData), "<i2"))


@pytest.mark.skipif(os.environ.get("FASTDICOM_BACKEND") == "python", reason="also run natively")
def test_native_and_twin_values_have_the_same_types():
    path = _file("CT_small.dcm")
    a = fastdicom.read(path, backend="rust")
    b = fastdicom.read(path, backend="python")
    for elem in a:
        if elem.vr == "SQ":
            continue
        va, vb = a.get(elem.tag), b.get(elem.tag)
        assert type(va) is type(vb) and str(va) == str(vb), hex(elem.tag)
