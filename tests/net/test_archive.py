"""The archive's durable write path without DIMSE: stage, commit one or a batch, every outcome settled."""

from __future__ import annotations

import importlib
import os

import pytest

import fastdicom
from fastdicom import synth
from fastdicom.archive import DiscardArchive, FolderArchive, Reason, durable

write_module = importlib.import_module("fastdicom.dataset.write")
CT = "1.2.840.10008.5.1.4.1.1.2"


def _object(instance: str, series: str = "1.2.3.4", **changes) -> tuple[str, bytes]:
    """A CT slice as Part 10 bytes (SOP Instance UID ``instance``, series ``series``)."""
    ds = synth.ct_slice(0, study_uid="1.2.3", series_uid=series, frame_uid="1.2.3.5", rows=8, columns=8)
    ds.SOPInstanceUID = instance
    for k, v in changes.items():
        setattr(ds, k, v)
    return instance, write_module.to_bytes(ds)


def _stage(archive: FolderArchive, data: bytes):
    staged = archive.stage()
    staged.write(memoryview(data))
    return staged


def test_commit_files_by_study_and_series_and_leaves_nothing_staged(tmp_path):
    archive = FolderArchive(str(tmp_path))
    uid, data = _object("1.2.3.4.1")
    outcome = archive.commit(_stage(archive, data), CT, uid)
    assert outcome.reason is Reason.STORED and outcome.ok and outcome.bytes == len(data)
    assert outcome.path == str(tmp_path / "1.2.3" / "1.2.3.4" / "1.2.3.4.1.dcm")
    assert open(outcome.path, "rb").read() == data
    assert not os.listdir(tmp_path / ".incoming")


def test_a_part_without_announced_uids_is_filed_as_it_says(tmp_path):
    """What a STOW-RS part is: a Part 10 object with its own File Meta, no command naming it."""
    archive = FolderArchive(str(tmp_path))
    uid, data = _object("1.2.3.4.7")
    outcome = archive.commit(_stage(archive, data))
    assert outcome.reason is Reason.STORED and outcome.path.endswith("1.2.3.4.7.dcm")
    outcome = archive.commit(_stage(archive, _object("../../evil")[1]))
    assert outcome.reason is Reason.INVALID_UID and not (tmp_path.parent / "evil.dcm").exists()


@pytest.mark.parametrize(
    "announced,changes,reason",
    [
        (("1.2.3.4.9", CT), {}, Reason.MISMATCH),  # the data set says 1.2.3.4.1
        (("1.2.3.4.1", CT), {"SeriesInstanceUID": "../x"}, Reason.NO_STUDY_OR_SERIES),
        (("1.2.3.4.1\n", CT), {}, Reason.INVALID_UID),
    ],
)
def test_what_does_not_check_out_is_refused_and_removed(tmp_path, announced, changes, reason):
    archive = FolderArchive(str(tmp_path))
    _uid, data = _object("1.2.3.4.1", **changes)
    outcome = archive.commit(_stage(archive, data), announced[1], announced[0])
    assert outcome.reason is reason and not outcome.ok and outcome.detail
    assert not os.listdir(tmp_path / ".incoming")
    assert not [f for _r, _d, fs in os.walk(tmp_path) for f in fs if f.endswith(".dcm")]


def test_unreadable_and_disk_errors(tmp_path):
    archive = FolderArchive(str(tmp_path))
    assert archive.commit(_stage(archive, b"not dicom at all"), CT, "1.2.3").reason is Reason.UNREADABLE
    staged = archive.stage()
    staged.data_plane_done(10, 28)  # the data plane reports ENOSPC
    assert archive.commit(staged, CT, "1.2.3").reason is Reason.OUT_OF_RESOURCES
    os.rmdir(tmp_path / ".incoming")
    (tmp_path / ".incoming").write_bytes(b"")  # a file where the folder was: it cannot be made again
    staged = archive.stage()  # the error is kept, the data drained
    staged.write(memoryview(b"ab"))
    assert staged.data_plane_fd() == -1
    assert archive.commit(staged, CT, "1.2.3").reason is Reason.OUT_OF_RESOURCES
    assert (tmp_path / ".incoming").read_bytes() == b""  # (what is there is never removed)


def test_a_vanished_staging_folder_is_made_again(tmp_path, caplog):
    import shutil

    archive = FolderArchive(str(tmp_path / "archive"))
    shutil.rmtree(tmp_path / "archive")  # the whole archive folder, removed by hand
    uid, body = _object("1.2.3.4.1")
    with caplog.at_level("WARNING", logger="fastdicom.archive"):
        outcome = archive.commit(_stage(archive, body), CT, uid)
    assert outcome.reason is Reason.STORED and os.path.exists(outcome.path)
    assert any("had vanished: made again" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)


@pytest.mark.parametrize(
    "policy,reason,kept",
    [
        ("overwrite", Reason.STORED, "NEW"),
        ("keep", Reason.DUPLICATE_KEPT, "OLD"),
        ("reject", Reason.DUPLICATE_REFUSED, "OLD"),
    ],
)
def test_duplicates(tmp_path, policy, reason, kept):
    archive = FolderArchive(str(tmp_path), duplicates=policy)
    uid, old = _object("1.2.3.4.1", PatientID="OLD")
    _, new = _object("1.2.3.4.1", PatientID="NEW")
    first = archive.commit(_stage(archive, old), CT, uid)
    second = archive.commit(_stage(archive, new), CT, uid)
    assert first.reason is Reason.STORED and second.reason is reason
    assert fastdicom.read(first.path).PatientID == kept
    assert not os.listdir(tmp_path / ".incoming")


def test_a_batch_settles_a_failed_folder_fsync_before_returning(tmp_path, monkeypatch):
    """Objects in a folder whose fsync fails are not durable: they fail, the others of the batch stand."""
    archive = FolderArchive(str(tmp_path))
    objects = [_object(f"1.2.3.4.{k}", series="1.2.3.4") for k in range(3)]
    objects += [_object(f"1.2.3.5.{k}", series="1.2.3.5") for k in range(2)]
    real = durable.fsync_dir
    flushed = []

    def fsync_dir(path):
        flushed.append(path)
        if path.endswith("1.2.3.5"):
            raise OSError(5, "Input/output error")
        real(path)

    monkeypatch.setattr("fastdicom.archive.folder.fsync_dir", fsync_dir)
    outcomes = archive.commit_batch([(_stage(archive, data), CT, uid) for uid, data in objects])
    assert [o.reason for o in outcomes] == [Reason.STORED] * 3 + [Reason.OUT_OF_RESOURCES] * 2
    assert "Input/output error" in outcomes[3].detail
    # each folder the batch renamed into is flushed once (the study and series folders when created, too)
    renamed_into = [p for p in flushed if p.endswith(("1.2.3.4", "1.2.3.5"))]
    assert sorted(renamed_into).count(str(tmp_path / "1.2.3" / "1.2.3.4")) == 1
    archive.close()


def test_sweep_removes_what_a_killed_process_left(tmp_path):
    archive = FolderArchive(str(tmp_path))
    _stage(archive, b"half an object")
    assert os.listdir(tmp_path / ".incoming")
    FolderArchive(str(tmp_path)).sweep()
    assert not os.listdir(tmp_path / ".incoming")


def test_discard_archive_checks_and_drops():
    archive = DiscardArchive()
    staged = archive.stage(b"header")
    staged.write(memoryview(b"abcd"))
    assert archive.commit(staged).reason is Reason.STORED and archive.commit(staged).bytes == 4
    odd = archive.stage()
    odd.write(memoryview(b"abc"))
    assert [o.reason for o in archive.commit_batch([(odd, None, None)])] == [Reason.UNREADABLE]


def test_write_atomic_replaces_durably_and_cleans_up(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    durable.write_atomic(str(target), [b"ab", memoryview(b"cd")])
    assert target.read_bytes() == b"abcd"

    def boom(path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        durable.write_atomic(str(target), [b"new"])
    assert target.read_bytes() == b"abcd" and os.listdir(tmp_path) == ["f.bin"]
