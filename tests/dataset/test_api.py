"""The Dataset / Element API, editing, writing and pydicom interop."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

import fastdicom
from fastdicom import Dataset

pydicom = pytest.importorskip("pydicom")
DATA = Path(pydicom.data.__file__).parent / "test_files"


@pytest.fixture
def ct(backend):
    return fastdicom.read(DATA / "CT_small.dcm", backend=backend)


def test_keys_and_access(ct):
    assert ct["PatientName"] is ct[0x00100010] is ct[(0x0010, 0x0010)]
    assert ct.PatientName == "CompressedSamples^CT1"
    assert ct.get("PatientName") == ct["PatientName"].value
    assert ct.get("NoSuchKeyword", 1) == 1 and ct.get(0x00991234) is None
    assert "PatientName" in ct and 0x00100010 in ct and "AcquisitionContextSequence" not in ct
    tags = [e.tag for e in ct]
    assert tags == sorted(tags) and len(ct) == len(tags)
    assert all(t >> 16 != 2 for t in tags)
    assert ct.file_meta is not None and ct.file_meta.TransferSyntaxUID == ct.transfer_syntax
    e = ct["Rows"]
    assert (e.tag, e.vr, e.vm, e.value) == (0x00280010, "US", 1, 128)
    assert isinstance(e.raw, memoryview) and bytes(e.raw) == b"\x80\x00"
    assert ct.ImagePositionPatient == [-158.135803, -179.035797, -75.699997]
    with pytest.raises(KeyError):
        _ = ct["PatientMotherBirthName"]
    with pytest.raises(AttributeError):
        _ = ct.NotAKeyword


def test_values_are_views_of_the_mapping(ct):
    px = ct["PixelData"].raw
    assert isinstance(px, memoryview) and px.readonly
    assert len(px) == 128 * 128 * 2


def test_edit_and_write_reencodes(ct, tmp_path, backend):
    ct.PatientName = "Anon^Ymous"
    ct.PatientID = "X1"
    del ct.PatientBirthDate
    ct.add_new(0x00091001, "LO", "private")
    out = tmp_path / "edited.dcm"
    ct.save(out)
    back = fastdicom.read(out, backend=backend)
    assert back.PatientName == "Anon^Ymous" and back.PatientID == "X1"
    assert "PatientBirthDate" not in back and back[0x00091001].value == "private"
    assert bytes(back.PixelData) == bytes(fastdicom.read(DATA / "CT_small.dcm").PixelData)
    pd = pydicom.dcmread(out)
    assert pd.PatientName == "Anon^Ymous" and pd.Rows == 128


def test_nested_edit_marks_parents(backend, tmp_path):
    ds = fastdicom.read(DATA / "rtplan.dcm", backend=backend)
    seq = ds.BeamSequence
    seq[0].BeamName = "EDITED"
    data = fastdicom.to_bytes(ds)
    back = fastdicom.read(data, backend=backend)
    assert back.BeamSequence[0].BeamName == "EDITED"
    assert len(back.BeamSequence) == len(seq)
    assert back.BeamSequence[0].BeamNumber == seq[0].BeamNumber
    assert back.FractionGroupSequence[0].NumberOfBeams == ds.FractionGroupSequence[0].NumberOfBeams


def test_new_dataset_written_and_read_by_pydicom(tmp_path, backend):
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = "1.2.3.4"
    ds.PatientName = "Ünïcødé^Name"
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.Rows = 2
    ds.PixelSpacing = [0.5, 0.25]
    ds.ReferencedSeriesSequence = [Dataset()]
    ds.ReferencedSeriesSequence[0].SeriesInstanceUID = "1.2.3"
    for ts in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"):
        data = fastdicom.to_bytes(ds, transfer_syntax=ts)
        pd = pydicom.dcmread(io.BytesIO(data))
        assert pd.file_meta.TransferSyntaxUID == ts
        assert pd.file_meta.MediaStorageSOPInstanceUID == "1.2.3.4"
        assert str(pd.PatientName) == "Ünïcødé^Name"
        assert pd.Rows == 2 and list(pd.PixelSpacing) == [0.5, 0.25]
        assert pd.ReferencedSeriesSequence[0].SeriesInstanceUID == "1.2.3"
        back = fastdicom.read(data, backend=backend)
        assert back.PatientName == "Ünïcødé^Name" and back.transfer_syntax == ts


def test_pydicom_interop_round_trip(ct):
    pd = ct.to_pydicom()
    direct = pydicom.dcmread(DATA / "CT_small.dcm")
    assert pd.PatientName == direct.PatientName
    assert pd.PixelData == direct.PixelData
    assert pd.file_meta.TransferSyntaxUID == direct.file_meta.TransferSyntaxUID
    back = fastdicom.from_pydicom(direct)
    assert [e.tag for e in back] == [e.tag for e in ct]
    for a, b in zip(back, ct):
        assert a.value == b.value, hex(a.tag)


def test_sources(backend):
    path = DATA / "CT_small.dcm"
    data = path.read_bytes()
    for src in (str(path), path, data, bytearray(data), memoryview(data), io.BytesIO(data)):
        ds = fastdicom.read(src, backend=backend)
        assert ds.PatientName == "CompressedSamples^CT1"
    with open(path, "rb") as f:
        assert fastdicom.read(f, backend=backend).Rows == 128


def test_stop_before_pixels(backend):
    ds = fastdicom.read(DATA / "CT_small.dcm", stop_before_pixels=True, backend=backend)
    assert "PixelData" not in ds and ds.Rows == 128
    with pytest.raises(fastdicom.FastDicomError):
        fastdicom.to_bytes(ds)


def test_raw_datasets_without_meta(backend):
    for name, little, explicit in (
        ("ExplVR_LitEndNoMeta.dcm", True, True),
        ("ExplVR_BigEndNoMeta.dcm", False, True),
    ):
        ds = fastdicom.read(DATA / name, backend=backend)
        assert ds.file_meta is None
        assert ds.is_little_endian is little and ds.is_implicit_vr is not explicit


def test_dicomdir(backend):
    ds = fastdicom.read(DATA / "dicomdirtests" / "DICOMDIR", backend=backend)
    records = ds.DirectoryRecordSequence
    assert len(records) > 10 and records[0].DirectoryRecordType == "PATIENT"


def test_atomic_write_leaves_no_temp_files(ct, tmp_path):
    out = tmp_path / "a.dcm"
    fastdicom.write(out, ct)
    assert os.listdir(tmp_path) == ["a.dcm"]


def test_backend_info_names():
    info = fastdicom.backend_info()
    assert set(info) >= {"parse", "byteswap"}
    if os.environ.get("FASTDICOM_BACKEND") == "python":
        from fastdicom import _backends

        assert all(_backends.is_python(v) for v in info.values()), info
    elif os.environ.get("FASTDICOM_REQUIRE_NATIVE") == "1":
        assert info["parse"] == "rust" and info["byteswap"] == "cython"


def test_byteswap_twins_agree():
    from fastdicom import _backends

    data = bytes(range(251))
    results = set()
    for name, module, attr in _backends.REGISTRY["byteswap"]:
        mod, _ = _backends._try(name, module, attr)
        if mod is None:
            continue
        for size in (1, 2, 4, 8):
            results.add((size, mod.byteswap(data, size)))
    assert len({r for r in results}) == 4


def test_group_lengths_are_recomputed_when_reencoding(backend):
    ds = Dataset()
    ds.add_new(0x00080000, "UL", 999)
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = "1.2.3"
    ds.add_new(0x00100000, "UL", 1)
    ds.PatientName = "A^B"
    for ts in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"):
        back = fastdicom.read(fastdicom.to_bytes(ds, transfer_syntax=ts), backend=backend)
        for group in (0x0008, 0x0010):
            elems = [e for e in back if e.tag >> 16 == group and e.tag & 0xFFFF]
            assert back[group << 16].value == sum(e._end - e._hdr for e in elems)


def test_keys_outside_the_tag_range(backend):
    import fastdicom.synth as synth

    ds = fastdicom.read(
        fastdicom.to_bytes(synth.ct_slice(0, study_uid="1.2", series_uid="1.3", frame_uid="1.4", rows=4, columns=4)),
        backend=backend,
    )
    for key in (-1, 2**32, 2**40, (0x10000, 0x10), (0x10, -1)):
        assert key not in ds
        assert ds.get(key, "absent") == "absent"
        with pytest.raises(KeyError):
            ds[key]
