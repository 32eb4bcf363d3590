"""The per-object file path of the store pipeline: staged files (Rust and its twin give the same results),
the archive's folder cache, and the sender's header scan by element table."""

from __future__ import annotations

import errno
import importlib
import os
import re
import shutil

import pytest

import fastdicom
from fastdicom import synth
from fastdicom.archive import FolderArchive, Reason

from ..conftest import implementations

store_module = importlib.import_module("fastdicom.services.store")
write_module = importlib.import_module("fastdicom.dataset.write")
STAGERS = implementations("staging")
CT = "1.2.840.10008.5.1.4.1.1.2"


def _closed(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError as exc:
        return exc.errno == errno.EBADF
    return False


@pytest.mark.parametrize("name,impl", STAGERS, ids=[n for n, _ in STAGERS])
def test_stage_create_writes_the_header_into_a_fresh_file(tmp_path, name, impl):
    fd, path = impl.stage_create(str(tmp_path), b"HEADER")
    fd2, path2 = impl.stage_create(str(tmp_path), b"")
    assert path != path2 and os.path.dirname(path) == str(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{32}\.part", os.path.basename(path))
    os.write(fd, b"-body")
    assert impl.sync_close([fd, fd2]) == [0, 0]
    assert _closed(fd) and _closed(fd2)
    with open(path, "rb") as f:
        assert f.read() == b"HEADER-body"
    assert os.path.getsize(path2) == 0


@pytest.mark.parametrize("name,impl", STAGERS, ids=[n for n, _ in STAGERS])
def test_stage_create_in_a_missing_folder_raises(tmp_path, name, impl):
    with pytest.raises(FileNotFoundError):
        impl.stage_create(str(tmp_path / "gone"), b"x")


def test_sync_close_gives_the_same_errnos_in_every_implementation(tmp_path):
    """Flushed, a repeated or negative descriptor (EBADF, untouched), one that cannot be fsynced (a pipe)."""
    results = {}
    for name, impl in STAGERS:
        fd, _path = impl.stage_create(str(tmp_path), b"ab")
        r, w = os.pipe()
        got = impl.sync_close([fd, fd, -1, r])
        assert _closed(fd) and _closed(r)
        os.close(w)
        results[name] = got
    assert len(set(map(tuple, results.values()))) == 1, results
    assert next(iter(results.values())) == [0, errno.EBADF, errno.EBADF, errno.EINVAL]


def test_the_twin_flushes_in_parallel_after_a_slow_first_flush(tmp_path, monkeypatch):
    twin = importlib.import_module("fastdicom.archive._files_py")
    monkeypatch.setattr(twin, "PARALLEL_AFTER", -1.0)
    fds = [twin.stage_create(str(tmp_path), b"x")[0] for _ in range(5)]
    assert twin.sync_close(fds) == [0] * 5
    assert all(_closed(fd) for fd in fds)


def _object(instance: str) -> bytes:
    ds = synth.ct_slice(0, study_uid="1.2.3", series_uid="1.2.3.4", frame_uid="1.2.3.5", rows=8, columns=8)
    ds.SOPInstanceUID = instance
    return write_module.to_bytes(ds)


def _commit(archive: FolderArchive, instance: str):
    staged = archive.stage()
    staged.write(memoryview(_object(instance)))
    return archive.commit(staged, CT, instance)


def test_a_series_folder_removed_by_hand_is_made_again(tmp_path):
    archive = FolderArchive(str(tmp_path))
    first = _commit(archive, "1.2.3.4.1")
    assert first.reason is Reason.STORED
    shutil.rmtree(tmp_path / "1.2.3")  # the folder the archive remembers is gone
    second = _commit(archive, "1.2.3.4.2")
    assert second.reason is Reason.STORED and second.path and os.path.exists(second.path)
    assert fastdicom.read(second.path).SOPInstanceUID == "1.2.3.4.2"
    assert not os.listdir(tmp_path / ".incoming")


def test_a_batch_flushes_every_object_once(tmp_path):
    archive = FolderArchive(str(tmp_path))
    batch = []
    for k in range(4):
        staged = archive.stage()
        staged.write(memoryview(_object(f"1.2.3.4.{k}")))
        batch.append((staged, CT, f"1.2.3.4.{k}"))
    outcomes = archive.commit_batch(batch)
    assert [o.reason for o in outcomes] == [Reason.STORED] * 4
    assert all(s.fd == -1 for s, _, _ in batch)
    assert not os.listdir(tmp_path / ".incoming")


def _general(path: str):
    saved = store_module._scan_table
    store_module._scan_table = lambda *_: None
    try:
        return store_module._scan(path)
    finally:
        store_module._scan_table = saved


def test_the_header_scan_by_table_agrees_with_the_general_path(tmp_path):
    paths = synth.write_ct_series(str(tmp_path / "ct"), 3, rows=8, columns=8)
    ds = synth.ct_slice(0, study_uid="1.2.3", series_uid="1.2.3.4", frame_uid="1.2.3.5", rows=8, columns=8)
    bare = tmp_path / "bare.dcm"  # no File Meta: the general path takes it
    bare.write_bytes(b"".join(bytes(c) for c in write_module.encode_dataset(ds, True, True)))
    parse = importlib.import_module("fastdicom._backends").resolve("parse")[1]
    for p in paths:
        head, _ = parse.read_prefix(p, store_module.HEAD)
        assert store_module._scan_table(parse, head) is not None
        assert store_module._scan(p) == _general(p)
    assert store_module._scan_table(parse, bare.read_bytes()) is None
    assert store_module._scan(str(bare)) == _general(str(bare))
