"""Running the server: durability modes, the operator's log, recovery, idle connections, SIGTERM."""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from fastdicom import synth
from fastdicom.dataset.write import encode_dataset
from fastdicom.net import Association, AssociationRejected, StorageSCP, dimse, echo, pdu
from fastdicom.net.dimse import DimseChannel
from fastdicom.services.storage import StoreStatus

from .conftest import free_port, need, wait_port

CT = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
PEER_ENV = {**os.environ, "TCP_NODELAY": "1"}


def _storescu(port, files, *options):
    return subprocess.run(
        [need("storescu"), *options, "-aec", "FASTDICOM", "127.0.0.1", str(port), *files],
        capture_output=True,
        text=True,
        timeout=120,
        env=PEER_ENV,
    )


def _dcm_files(root):
    out = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".incoming"]
        out += [os.path.join(folder, f) for f in files if f.endswith(".dcm")]
    return sorted(out)


def _parts(root):
    out = []
    for _folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".fastdicom"]  # the archive's index
        out += [f for f in files if not f.endswith(".dcm")]
    return out


def _body(path):
    from fastdicom.services.store import data_set_offset

    with open(path, "rb") as f:
        data = f.read()
    return data[data_set_offset(data) :]


def _messages(caplog, logger=None):
    return [r.getMessage() for r in caplog.records if logger is None or r.name == logger]


# -- 1. durability -----------------------------------------------------------------------------------


@pytest.mark.parametrize("durability", ["fsync", "os"])
def test_durability_modes_store_the_same_and_only_fsync_flushes(tmp_path, series, monkeypatch, durability):
    calls = []
    real = os.fsync

    def counting(fd):
        calls.append(fd)
        return real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    # Files are flushed by the `staging` capability (natively: fsync in Rust, not seen here); its twin calls
    # os.fsync, and tests/net/test_staging.py shows both do the same.
    from fastdicom.archive import _files_py, folder

    monkeypatch.setattr(folder, "_staging", lambda: _files_py)
    with StorageSCP(str(tmp_path), port=0, durability=durability) as scp:
        out = _storescu(scp.port, series)
        assert out.returncode == 0, out.stderr
    stored = _dcm_files(tmp_path)
    assert len(stored) == len(series)
    by_name = {os.path.basename(p): p for p in stored}
    for src in series:
        uid = synth_uid(src)
        assert _body(by_name[uid + ".dcm"]) == _body(src)
    assert _parts(tmp_path) == []  # staged files were renamed or removed: nothing partial anywhere
    if durability == "fsync":
        assert len(calls) >= len(series)  # every file, and the folders
    else:
        assert calls == []


def synth_uid(path):
    import fastdicom

    return str(fastdicom.read(path, stop_before_pixels=True).SOPInstanceUID)


def test_durability_os_interrupted_transfer_leaves_nothing_visible(tmp_path):
    ds = synth.ct_slice(0, study_uid="1.2.3", series_uid="1.2.3.4", frame_uid="1.2.3.5", rows=16, columns=16)
    body = b"".join(bytes(c) for c in encode_dataset(ds, True, True))
    with StorageSCP(str(tmp_path), port=0, durability="os") as scp:
        a = _assoc(scp.port)
        _send_command(a, ds.SOPInstanceUID)
        half = body[: len(body) // 2 & ~1]
        a.association.sock.sendall(pdu.pdata_header(1, 0, len(half)) + half)
        time.sleep(0.3)
        a.association.sock.close()
        time.sleep(0.5)
    assert _dcm_files(tmp_path) == [] and _parts(tmp_path) == []


def test_durability_is_checked():
    with pytest.raises(ValueError):
        StorageSCP("x", port=0, durability="sometimes")


# -- 2. the operator's log ---------------------------------------------------------------------------


def _assoc(port, calling="SCU", **options):
    contexts = [pdu.PresentationContext(1, CT, [EXPLICIT])]
    options.setdefault("network_timeout", 20)
    return DimseChannel(
        Association.request("127.0.0.1", port, calling_ae=calling, called_ae="FASTDICOM", contexts=contexts, **options)
    )


def _store_rq(uid, message_id=1):
    return {
        "CommandField": dimse.C_STORE_RQ,
        "MessageID": message_id,
        "Priority": 0,
        "AffectedSOPClassUID": CT,
        "AffectedSOPInstanceUID": uid,
    }


def _send_command(a, uid):
    command = {**_store_rq(uid), "CommandDataSetType": 0}
    a.association.send_pdata(1, dimse.encode_command(command), True)


def test_log_associations_refusals_failures_and_summary(tmp_path, series, caplog):
    caplog.set_level(logging.INFO, logger="fastdicom")
    with StorageSCP(str(tmp_path), port=0, allowed_aes=["STORESCU", "SCU"]) as scp:
        out = _storescu(scp.port, series[:3])
        assert out.returncode == 0, out.stderr
        refused = subprocess.run(
            [need("echoscu"), "-aet", "INTRUDER", "-aec", "FASTDICOM", "127.0.0.1", str(scp.port)],
            capture_output=True,
            text=True,
            timeout=60,
            env=PEER_ENV,
        )
        assert refused.returncode != 0
        a = _assoc(scp.port)  # a C-STORE whose data set names another instance: a failure, logged
        ds = synth.ct_slice(0, study_uid="1.2.3", series_uid="1.2.3.4", frame_uid="1.2.3.5", rows=8, columns=8)
        body = b"".join(bytes(c) for c in encode_dataset(ds, True, True))
        a.send_message(
            1,
            _store_rq("1.2.3.999", 1),
            body,
        )
        assert a.receive_message().command["Status"] == StoreStatus.DATA_SET_DOES_NOT_MATCH_SOP_CLASS
        a.association.abort()
        deadline = time.time() + 20
        while time.time() < deadline and not any("SCU) aborted" in m for m in _messages(caplog)):
            time.sleep(0.05)
    msgs = _messages(caplog, "fastdicom.server")
    accepted = [m for m in msgs if "(STORESCU -> FASTDICOM) accepted" in m]
    assert len(accepted) == 1 and "presentation contexts" in accepted[0]
    released = [m for m in msgs if "(STORESCU) released" in m]
    assert len(released) == 1 and "3 stored, 0 failed" in released[0]
    assert any("(INTRUDER -> FASTDICOM) refused: calling ae title not recognized, permanent" in m for m in msgs)
    assert any("(SCU) aborted" in m and "0 stored, 1 failed" in m for m in msgs)
    failures = [r for r in caplog.records if r.name == "fastdicom.storage"]
    assert len(failures) == 1 and failures[0].levelname == "WARNING"
    assert "1.2.3.999 from SCU failed: 0xA900" in failures[0].getMessage()
    summary = [m for m in _messages(caplog) if m.startswith("summary:")]
    assert summary == [
        "summary: 3 stored, 1 failed, %.1f MB, 2 associations, 1 connections refused" % (scp.stats["bytes"] / 1e6)
    ]


def test_log_refusal_over_the_association_limit(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="fastdicom")
    with StorageSCP(str(tmp_path), port=0, max_associations=1) as scp:
        first = _assoc(scp.port)
        with pytest.raises(AssociationRejected):
            _assoc(scp.port, calling="SECOND")
        first.release()
    warn = [r for r in caplog.records if r.levelname == "WARNING" and r.name == "fastdicom.server"]
    assert len(warn) == 1 and "(SECOND -> FASTDICOM) refused: 1 associations open (the limit), transient" in (
        warn[0].getMessage()
    )


# -- 3. recovery -------------------------------------------------------------------------------------


def test_archive_folder_removed_while_running_is_made_again(tmp_path, series, caplog):
    caplog.set_level(logging.INFO, logger="fastdicom")
    root = tmp_path / "archive"
    with StorageSCP(str(root), port=0) as scp:
        assert _storescu(scp.port, series[:4]).returncode == 0
        shutil.rmtree(root)  # the archive emptied by hand, .incoming with it
        out = _storescu(scp.port, series[4:])
        assert out.returncode == 0, out.stderr
        assert scp.stats["failed"] == 0
    stored = [os.path.basename(p) for p in _dcm_files(root)]
    assert sorted(stored) == sorted(synth_uid(p) + ".dcm" for p in series[4:])
    warn = [r for r in caplog.records if r.levelname == "WARNING" and "had vanished" in r.getMessage()]
    assert len(warn) == 1 and warn[0].name == "fastdicom.archive"


def _block_staging(root):
    """Make ``.incoming`` impossible to create again (a file in its place): what a read-only or gone disk does
    to the server, without needing to be able to make one read-only (tests may run as root)."""
    shutil.rmtree(root / ".incoming")
    (root / ".incoming").write_bytes(b"")


def test_archive_that_cannot_store_logs_each_failure_and_stops(tmp_path, series, caplog):
    caplog.set_level(logging.INFO, logger="fastdicom")
    scp = StorageSCP(str(tmp_path), port=0, stop_after_failures=3).start()
    try:
        _block_staging(tmp_path)
        _storescu(scp.port, series[:5], "--no-halt")  # it goes on after a failure
        deadline = time.time() + 30
        while time.time() < deadline and scp.open_associations:
            time.sleep(0.05)
        assert scp.stopping.wait(30)
        assert scp.fatal is not None and "3 objects in a row could not be stored" in scp.fatal
    finally:
        scp.stop()
    errors = [r for r in caplog.records if r.levelname == "ERROR" and r.name == "fastdicom.storage"]
    assert len(errors) >= 3 and all("failed: 0xA700 cannot store" in r.getMessage() for r in errors)
    critical = [r for r in caplog.records if r.levelname == "CRITICAL"]
    assert len(critical) == 1 and "the server stops" in critical[0].getMessage()
    with pytest.raises(OSError):  # it does not listen any more
        socket.create_connection(("127.0.0.1", scp.port), timeout=2).close()


@pytest.fixture
def small_disk(tmp_path):
    """A real 8 MB file system of our own (tmpfs), to make read-only or full; skipped where we cannot mount."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.mark.parametrize("removed", [False, True])
def test_read_only_disk_fails_loudly_and_stops(small_disk, series, caplog, removed):
    caplog.set_level(logging.INFO, logger="fastdicom")
    root = small_disk / "archive"
    # index=False: the index's SQLite files stay open on the mount, so it could not be remounted read-only
    # (a read-only or full disk under the index is a gap, said in the note)
    scp = StorageSCP(str(root), port=0, stop_after_failures=3, index=False).start()
    try:
        assert _storescu(scp.port, series[:2]).returncode == 0
        if removed:
            shutil.rmtree(root)
        subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
        _storescu(scp.port, series[2:8], "--no-halt")
        assert scp.stopping.wait(30) and scp.fatal is not None and "Read-only file system" in scp.fatal
    finally:
        scp.stop()
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert sum("failed: 0xA700 cannot store: Read-only file system" in m for m in errors) >= 3
    if removed:
        assert any("cannot make the archive's staging folder" in m for m in errors)
    assert scp.stats["stored"] == 2


def test_full_disk_answers_out_of_resources_per_object_and_carries_on(small_disk, caplog, tmp_path):
    caplog.set_level(logging.INFO, logger="fastdicom")
    big = synth.write_ct_series(str(tmp_path / "big"), 12, rows=512, columns=512)  # 0.5 MB each: 6 MB in all
    with StorageSCP(str(small_disk / "archive"), port=0, index=False) as scp:  # (see above)
        (small_disk / "ballast").write_bytes(b"\0" * (5 << 20))  # 3 MB left
        _storescu(scp.port, big, "--no-halt")
        stored, failed = scp.stats["stored"], scp.stats["failed"]
        assert stored >= 1 and failed >= 1 and stored + failed == 12
        (small_disk / "ballast").unlink()
        assert _storescu(scp.port, big[:1]).returncode == 0  # room again: it stores again
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == failed and all("No space left on device" in m for m in errors)
    assert _parts(small_disk / "archive") == []


def test_a_good_store_resets_the_failure_count(tmp_path, series):
    with StorageSCP(str(tmp_path), port=0, stop_after_failures=3) as scp:
        for _ in range(2):
            _block_staging(tmp_path)
            _storescu(scp.port, series[:2], "--no-halt")  # 2 failures in a row
            (tmp_path / ".incoming").unlink()
            assert _storescu(scp.port, series[2:3]).returncode == 0  # a success: counting starts again
        assert not scp.stopping.is_set() and scp.fatal is None
        assert scp.stats["failed"] == 4


# -- 4. idle connections -----------------------------------------------------------------------------


def test_idle_connections_take_no_association_slot_and_are_closed_by_their_timer(tmp_path, series):
    with StorageSCP(str(tmp_path), port=0, max_associations=2, request_timeout=2.0) as scp:
        assert scp.policy.limits.max_pending_connections == 8
        idle = [socket.create_connection(("127.0.0.1", scp.port), timeout=30) for _ in range(6)]
        time.sleep(0.3)
        out = _storescu(scp.port, series[:3])  # more idle sockets than association slots: a real peer gets in
        assert out.returncode == 0, out.stderr
        t0 = time.time()
        for s in idle:
            assert s.recv(10) == b""  # closed by the server, not answered
        assert time.time() - t0 < 20
        for s in idle:
            s.close()
        assert len(_dcm_files(tmp_path)) == 3


def test_pending_connections_past_their_cap_are_closed_at_once(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="fastdicom")
    with StorageSCP(str(tmp_path), port=0, max_associations=1, max_pending_connections=3, request_timeout=30) as scp:
        idle = [socket.create_connection(("127.0.0.1", scp.port), timeout=30) for _ in range(3)]
        time.sleep(0.3)
        extra = socket.create_connection(("127.0.0.1", scp.port), timeout=30)
        t0 = time.time()
        assert extra.recv(10) == b""  # closed at once, long before the 30 s timer
        assert time.time() - t0 < 10
        extra.close()
        for s in idle:
            s.close()
        time.sleep(0.3)
        assert echo(f"FASTDICOM@127.0.0.1:{scp.port}") == 0  # once they go, the server takes connections again
    assert any("closed at once" in m for m in _messages(caplog, "fastdicom.server"))


# -- 5. SIGTERM --------------------------------------------------------------------------------------


def _serve(tmp_path, *extra):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastdicom", "serve", "--port", str(port), "--dir", str(tmp_path / "archive"), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    wait_port(port, 60)
    return proc, port


def _slow_store(port, uid, body, pause, result):
    """Send one C-STORE's data set in two halves with ``pause`` between; ``result``: the status, or the error."""
    try:
        a = _assoc(port)
        _send_command(a, uid)
        half = len(body) // 2 & ~1
        a.association.sock.sendall(pdu.pdata_header(1, 0, half) + body[:half])
        time.sleep(pause)
        a.association.sock.sendall(pdu.pdata_header(1, 2, len(body) - half) + body[half:])
        result.append(a.receive_message().command["Status"])
        a.send_message(
            1,
            _store_rq(uid + ".1", 2),
            body,
        )  # the next one, while the server stops: refused
        result.append(a.receive_message().command["Status"])
    except Exception as exc:  # noqa: BLE001 - the test reads it
        result.append(exc)


def _wait_staged(root):
    deadline = time.time() + 60
    while time.time() < deadline and not _parts(root):
        time.sleep(0.02)
    assert _parts(root), "the object never started"


def _ct_body(uid):
    ds = synth.ct_slice(0, study_uid="1.2.3", series_uid="1.2.3.4", frame_uid="1.2.3.5", rows=64, columns=64)
    ds.SOPInstanceUID = uid
    return b"".join(bytes(c) for c in encode_dataset(ds, True, True))


def _sigterm_during_a_slow_store(tmp_path, grace, uid, pause):
    """SIGTERM a ``fastdicom serve`` while half an object is in; (seconds to exit, rc, stdout, stderr, result)."""
    proc, port = _serve(tmp_path, "--grace", str(grace))
    result: list = []
    t = threading.Thread(target=_slow_store, args=(port, uid, _ct_body(uid), pause, result))
    t.start()
    _wait_staged(tmp_path / "archive")  # half of the object is in
    t0 = time.time()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    seconds = time.time() - t0
    t.join(90)
    return seconds, proc.returncode, out, err, result


def test_sigterm_finishes_the_object_in_flight(tmp_path):
    seconds, rc, out, err, result = _sigterm_during_a_slow_store(tmp_path, 20, "1.2.3.4.1", 2.0)
    assert rc == 0, err
    assert seconds < 20
    assert result[0] == 0, result  # stored and answered
    # the next C-STORE is answered 0xA700 (not stored) when it comes before the association is closed
    assert result[1] == StoreStatus.OUT_OF_RESOURCES or isinstance(result[1], Exception), result
    assert [os.path.basename(p) for p in _dcm_files(tmp_path / "archive")] == ["1.2.3.4.1.dcm"]
    assert _parts(tmp_path / "archive") == []
    assert "SIGTERM: stopping" in err
    assert re.search(r"1 objects finished, [01] refused, 0 aborted", err), err
    assert re.search(r"stored\s+1\b", out), out


def test_sigterm_aborts_a_stalled_object_within_the_grace(tmp_path):
    seconds, rc, _out, err, result = _sigterm_during_a_slow_store(tmp_path, 1, "1.2.3.4.2", 8.0)
    assert rc == 0, err
    assert seconds < 15  # bounded: the grace, then the abort
    assert "0 objects finished, 0 refused, 1 aborted" in err
    assert isinstance(result[0], Exception), result  # the sender saw its association end
    assert _dcm_files(tmp_path / "archive") == [] and _parts(tmp_path / "archive") == []


def test_serve_quiet_logs_only_warnings_and_durability_os_stores(tmp_path, series):
    proc, port = _serve(tmp_path, "-q", "--durability", "os")
    try:
        assert _storescu(port, series[:3]).returncode == 0
        a = _assoc(port)  # one failure (the data set names another instance): a WARNING, shown under -q
        a.send_message(
            1,
            _store_rq("1.2.3.999", 1),
            _ct_body("1.2.3.4.5"),
        )
        assert a.receive_message().command["Status"] == StoreStatus.DATA_SET_DOES_NOT_MATCH_SOP_CLASS
        a.release()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "durability os" in out and re.search(r"stored\s+3\b", out) and re.search(r"failed\s+1\b", out)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "WARNING" in lines[0] and "1.2.3.999 from SCU failed: 0xA900" in lines[0], err
    assert len(_dcm_files(tmp_path / "archive")) == 3
