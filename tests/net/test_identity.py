"""One implementation identity: what fastdicom sends in A-ASSOCIATE, stores over the network and writes to files."""

from __future__ import annotations

import importlib

import numpy as np
import pydicom

import fastdicom
from fastdicom import synth
from fastdicom.net import StorageSCP, store

write_module = importlib.import_module("fastdicom.dataset.write")
OURS = write_module.IMPLEMENTATION_CLASS_UID
FOREIGN = "1.2.3.4.5.6.7"


def _foreign_file(path) -> str:
    """A CT slice whose File Meta names another implementation (written by pydicom, as from another toolkit)."""
    uids = {k: synth.new_uid() for k in ("study_uid", "series_uid", "frame_uid")}
    fastdicom.write(path, synth.ct_slice(0, rows=16, columns=16, **uids))
    ds = pydicom.dcmread(path)
    ds.file_meta.ImplementationClassUID = FOREIGN
    ds.file_meta.ImplementationVersionName = "OTHER_1"
    ds.save_as(path, enforce_file_format=True)
    return str(path)


def _writer(path) -> tuple[str, str | None]:
    meta = pydicom.dcmread(path, stop_before_pixels=True).file_meta
    return meta.ImplementationClassUID, meta.get("ImplementationVersionName")


def test_our_uid_is_a_uuid_derived_2_25_uid():
    assert OURS.startswith("2.25.") and int(OURS[5:]) < 2**128 and len(OURS) <= 64
    assert write_module.IMPLEMENTATION_VERSION_NAME.startswith("FASTDICOM")


def test_rewritten_files_name_fastdicom_unchanged_ones_keep_their_writer(tmp_path):
    src = _foreign_file(tmp_path / "foreign.dcm")
    ds = fastdicom.read(src)
    fastdicom.write(tmp_path / "same.dcm", ds)  # unchanged: byte for byte
    assert open(tmp_path / "same.dcm", "rb").read() == open(src, "rb").read()
    assert _writer(tmp_path / "same.dcm") == (FOREIGN, "OTHER_1")
    edited = fastdicom.read(src)
    edited.PatientName = "EDITED^NAME"  # another element edited: the encoding and pixels are the source's
    fastdicom.write(tmp_path / "edited.dcm", edited)
    assert _writer(tmp_path / "edited.dcm")[0] == FOREIGN
    fastdicom.write(tmp_path / "implicit.dcm", ds, transfer_syntax="1.2.840.10008.1.2")  # syntax converted
    assert _writer(tmp_path / "implicit.dcm") == (OURS, write_module.IMPLEMENTATION_VERSION_NAME)
    rle = fastdicom.transcode(ds, "RLELossless")  # pixels re-encoded
    fastdicom.write(tmp_path / "rle.dcm", rle)
    assert _writer(tmp_path / "rle.dcm")[0] == OURS
    assert rle.file_meta.get(0x00020012) == OURS
    assert np.array_equal(fastdicom.read(tmp_path / "rle.dcm").pixel_array, ds.pixel_array)


def test_the_scp_stores_under_the_same_identity(tmp_path):
    src = _foreign_file(tmp_path / "foreign.dcm")
    peers = []
    with StorageSCP(str(tmp_path / "archive"), port=0, on_association=peers.append) as scp:
        report = store([src], f"FASTDICOM@127.0.0.1:{scp.port}", progress=False)
    assert not report.failed
    assert peers and {(p.implementation_class_uid, p.implementation_version_name) for p in peers} == {
        (OURS, write_module.IMPLEMENTATION_VERSION_NAME)  # what our SCU said in its A-ASSOCIATE-RQs
    }
    [stored] = list((tmp_path / "archive").glob("*/*/*.dcm"))
    assert _writer(stored) == (OURS, write_module.IMPLEMENTATION_VERSION_NAME)  # the SCP wrote the File Meta
