"""Storage Commitment SCP (CommitmentService) over an Archive: pynetdicom as the SCU, and fastdicom's own SCU.

The objects are stored through the network (fastdicom store -> StorageSCP over the Archive, checksums computed while
receiving), then committed: present, missing (0x0112), class conflicts (0x0119), a byte flipped on disk (0x0110);
the report on the same association, on a new one when the requestor released, and after a restart.
"""

from __future__ import annotations

import threading
import time

import pytest

import fastdicom
from fastdicom.archive import Archive
from fastdicom.archive.commitments import REPORTED, VERIFIED, CommitmentStore
from fastdicom.net import StorageSCP, commit, store
from fastdicom.services.commitment import (
    STORAGE_COMMITMENT,
    STORAGE_COMMITMENT_INSTANCE,
    CommitmentService,
    FailureReason,
)

from .conftest import free_port

pynetdicom = pytest.importorskip("pynetdicom")
MR = "1.2.840.10008.5.1.4.1.1.4"


def _uids(paths):
    out = []
    for p in paths:
        ds = fastdicom.read(p, stop_before_pixels=True)
        out.append((str(ds.SOPClassUID), str(ds.SOPInstanceUID)))
    return out


class GatedArchive(Archive):
    """The real Archive, whose lookups wait for ``gate`` (a test holds verification back until it has released)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.gate.set()

    def lookup(self, sop_instance_uids):
        assert self.gate.wait(60)
        return super().lookup(sop_instance_uids)


@pytest.fixture
def stored(tmp_path, series):
    """An archive holding the series, stored over the network; its folder and the (class, instance) pairs."""
    root = tmp_path / "archive"
    with StorageSCP(str(root), port=0) as scp:
        report = store(series, f"FASTDICOM@127.0.0.1:{scp.port}", associations=2, progress=False)
    assert not report.failed
    return root, _uids(series)


def _server(archive, **kwargs):
    service = CommitmentService(archive, retry_delays=(0.2,), **kwargs)
    return StorageSCP(archive=archive, port=0, services=[service]).start(), service


def _dataset(transaction_uid, pairs):
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.TransactionUID = transaction_uid
    refs = []
    for c, i in pairs:
        r = Dataset()
        r.ReferencedSOPClassUID, r.ReferencedSOPInstanceUID = c, i
        refs.append(r)
    ds.ReferencedSOPSequence = refs
    return ds


class Listener:
    """A pynetdicom SCU of Storage Commitment waiting for reports on its own port (it takes the requestor's SCP
    role), answering ``status``."""

    def __init__(self, port=None, ae_title="PYSCU", status=0x0000):
        from pynetdicom import AE, evt

        self.port = port or free_port()
        self.reports = []
        self.callers = []
        self.status = status
        self.got = threading.Event()
        ae = AE(ae_title=ae_title)
        ae.add_supported_context(STORAGE_COMMITMENT, scu_role=False, scp_role=True)
        self.server = ae.start_server(
            ("127.0.0.1", self.port), block=False, evt_handlers=[(evt.EVT_N_EVENT_REPORT, self._on_report)]
        )

    def _on_report(self, event):
        self.reports.append((event.event_type, event.event_information))
        self.callers.append(event.assoc.requestor.ae_title)
        self.got.set()
        return self.status, None

    def close(self):
        self.server.shutdown()


def _report_sets(ds):
    ok = {(x.ReferencedSOPClassUID, x.ReferencedSOPInstanceUID) for x in ds.get("ReferencedSOPSequence", [])}
    failed = {
        (x.ReferencedSOPClassUID, x.ReferencedSOPInstanceUID): int(x.FailureReason)
        for x in ds.get("FailedSOPSequence", [])
    }
    return ok, failed


def test_pynetdicom_scu_report_on_the_same_association(stored):
    from pydicom.uid import generate_uid
    from pynetdicom import AE, evt

    root, pairs = stored
    archive = Archive(str(root))
    corrupted = archive.lookup([pairs[3][1]])[pairs[3][1]].path
    with open(corrupted, "r+b") as f:  # one byte flipped on disk, past the header: same size, other checksum
        f.seek(-100, 2)
        b = f.read(1)
        f.seek(-100, 2)
        f.write(bytes([b[0] ^ 0xFF]))
    scp, service = _server(archive)
    got = threading.Event()
    reports = []

    def on_report(event):
        reports.append((event.event_type, event.event_information))
        got.set()
        return 0x0000, None

    request = [*pairs[:5], (pairs[0][0], "1.2.3.4.404"), (MR, pairs[1][1])]
    try:
        ae = AE(ae_title="PYSCU")
        ae.add_requested_context(STORAGE_COMMITMENT)
        assoc = ae.associate(
            "127.0.0.1", scp.port, ae_title="FASTDICOM", evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)]
        )
        assert assoc.is_established
        uid = generate_uid()
        status, _ = assoc.send_n_action(_dataset(uid, request), 1, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE)
        assert status.Status == 0x0000
        assert got.wait(60)
        assoc.release()
        assert service.wait_idle(30)
    finally:
        scp.stop()
        archive.close()
    event_type, ds = reports[0]
    assert event_type == 2 and ds.TransactionUID == uid
    ok, failed = _report_sets(ds)
    assert ok == {pairs[k] for k in (0, 1, 2, 4)}
    assert failed == {
        pairs[3]: FailureReason.PROCESSING_FAILURE,  # the corrupted file
        (pairs[0][0], "1.2.3.4.404"): FailureReason.NO_SUCH_OBJECT_INSTANCE,
        (MR, pairs[1][1]): FailureReason.CLASS_INSTANCE_CONFLICT,
    }
    assert service.stats["reported_same"] == 1
    db = CommitmentStore(str(root / ".fastdicom" / "index.sqlite"))
    assert db.get(uid).state == REPORTED
    db.close()


def test_report_on_a_new_association_when_the_requestor_released(stored):
    from pydicom.uid import generate_uid
    from pynetdicom import AE

    root, pairs = stored
    archive = GatedArchive(str(root))
    listener = Listener()
    scp, service = _server(archive, peers={"PYSCU": ("127.0.0.1", listener.port)}, ae_title="FDSCP")
    try:
        archive.gate.clear()  # verification waits until the requestor has gone
        ae = AE(ae_title="PYSCU")
        ae.add_requested_context(STORAGE_COMMITMENT)
        assoc = ae.associate("127.0.0.1", scp.port, ae_title="FASTDICOM")
        uid = generate_uid()
        status, _ = assoc.send_n_action(_dataset(uid, pairs), 1, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE)
        assert status.Status == 0x0000
        assoc.release()
        archive.gate.set()
        assert listener.got.wait(60)
        assert service.wait_idle(30)
    finally:
        scp.stop()
        listener.close()
        archive.close()
    event_type, ds = listener.reports[0]
    assert event_type == 1 and ds.TransactionUID == uid
    ok, failed = _report_sets(ds)
    assert ok == set(pairs) and not failed and "FailedSOPSequence" not in ds
    assert listener.callers == ["FDSCP"]
    assert service.stats["reported_new"] == 1 and service.stats["reported_same"] == 0


def test_a_report_pending_at_shutdown_is_sent_after_a_restart(stored):
    from pydicom.uid import generate_uid
    from pynetdicom import AE

    root, pairs = stored
    port = free_port()  # where the requestor will listen: nobody yet
    archive = Archive(str(root))
    scp, service = _server(archive, peers={"PYSCU": ("127.0.0.1", port)}, max_attempts=1000)
    db = CommitmentStore(archive.database_path)
    try:
        ae = AE(ae_title="PYSCU")
        ae.add_requested_context(STORAGE_COMMITMENT)
        assoc = ae.associate("127.0.0.1", scp.port, ae_title="FASTDICOM")
        uid = generate_uid()
        request = [*pairs[:3], (pairs[0][0], "1.2.3.4.404")]
        status, _ = assoc.send_n_action(_dataset(uid, request), 1, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE)
        assert status.Status == 0x0000
        assoc.release()
        deadline = time.time() + 60
        while time.time() < deadline:  # verified, and at least one delivery failed: nobody listens
            t = db.get(uid)
            if t is not None and t.state == VERIFIED and t.attempts >= 1:
                break
            time.sleep(0.05)
        assert t.state == VERIFIED and t.attempts >= 1 and t.last_error
    finally:
        scp.stop()  # the server goes away with the report undelivered
        archive.close()
    assert db.get(uid).state == VERIFIED
    listener = Listener(port=port)
    archive = Archive(str(root))
    scp, service = _server(archive, peers={"PYSCU": ("127.0.0.1", port)})  # the restart
    try:
        assert listener.got.wait(60)
        assert service.wait_idle(30)
    finally:
        scp.stop()
        listener.close()
        archive.close()
    event_type, ds = listener.reports[0]
    assert event_type == 2 and ds.TransactionUID == uid
    ok, failed = _report_sets(ds)
    assert ok == set(pairs[:3]) and failed == {(pairs[0][0], "1.2.3.4.404"): FailureReason.NO_SUCH_OBJECT_INSTANCE}
    assert db.get(uid).state == REPORTED
    db.close()


def test_a_requestor_that_answers_the_report_with_a_failure_gets_it_again(stored):
    from pydicom.uid import generate_uid
    from pynetdicom import AE

    root, pairs = stored
    archive = GatedArchive(str(root))
    listener = Listener(status=0x0110)
    scp, service = _server(archive, peers={"PYSCU": ("127.0.0.1", listener.port)})
    try:
        archive.gate.clear()
        ae = AE(ae_title="PYSCU")
        ae.add_requested_context(STORAGE_COMMITMENT)
        assoc = ae.associate("127.0.0.1", scp.port, ae_title="FASTDICOM")
        uid = generate_uid()
        assoc.send_n_action(_dataset(uid, pairs[:2]), 1, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE)
        assoc.release()
        archive.gate.set()
        deadline = time.time() + 60
        while len(listener.reports) < 2 and time.time() < deadline:
            time.sleep(0.05)
        listener.status = 0x0000
        deadline = time.time() + 60
        while service.stats["reported_new"] < 1 and time.time() < deadline:
            time.sleep(0.05)
    finally:
        scp.stop()
        listener.close()
        archive.close()
    assert len(listener.reports) >= 3 and service.stats["reported_new"] == 1
    assert all(ds.TransactionUID == uid for _, ds in listener.reports)


def test_bad_n_action_requests_get_failure_statuses_and_the_server_keeps_serving(stored):
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid
    from pynetdicom import AE

    root, pairs = stored
    archive = Archive(str(root))
    scp, service = _server(archive)
    try:
        ae = AE(ae_title="PYSCU")
        ae.add_requested_context(STORAGE_COMMITMENT)
        assoc = ae.associate("127.0.0.1", scp.port, ae_title="FASTDICOM")
        good = _dataset(generate_uid(), pairs[:1])
        no_uid = Dataset()
        no_uid.ReferencedSOPSequence = good.ReferencedSOPSequence
        statuses = [
            assoc.send_n_action(good, 2, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE)[0].Status,  # action 2
            assoc.send_n_action(good, 1, STORAGE_COMMITMENT, "1.2.3.4")[0].Status,  # not the well-known instance
            assoc.send_n_action(no_uid, 1, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE)[0].Status,
        ]
        assoc.release()
        assert statuses == [0x0123, 0x0112, 0x0120]
        report = commit(f"FASTDICOM@127.0.0.1:{scp.port}", pairs[:2], timeout=60)  # still serving
        assert report.ok
    finally:
        scp.stop()
        archive.close()
    assert service.stats["requests"] == 1


@pytest.mark.parametrize("listen", [False, True])
def test_fastdicom_scu_to_fastdicom_scp(stored, series, listen):
    root, pairs = stored
    archive = Archive(str(root))
    port = free_port()
    scp, service = _server(archive, peers={"FDSCU": ("127.0.0.1", port)})
    try:
        items = [*series[:6], (pairs[0][0], "1.2.3.4.404")]
        report = commit(
            f"FASTDICOM@127.0.0.1:{scp.port}", items, timeout=60, listen=port if listen else None, calling_ae="FDSCU"
        )
    finally:
        scp.stop()
        archive.close()
    assert report.action_status == 0 and report.event_type == 2
    assert report.same_association is (not listen)
    assert [r.committed for r in report.results] == [True] * 6 + [False]
    assert report.results[-1].failure_reason == 0x0112
    assert service.stats["reported_new" if listen else "reported_same"] == 1


def _n_action(port, ae_title, pairs):
    from pydicom.uid import generate_uid
    from pynetdicom import AE

    ae = AE(ae_title=ae_title)
    ae.add_requested_context(STORAGE_COMMITMENT)
    assoc = ae.associate("127.0.0.1", port, ae_title="FASTDICOM")
    assert assoc.is_established
    uid = generate_uid()
    status, _ = assoc.send_n_action(_dataset(uid, pairs), 1, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE)
    assoc.release()
    return uid, status.Status


def test_a_requestor_not_allowed_to_commit_gets_0x0124(stored):
    root, pairs = stored
    archive = Archive(str(root))
    scp, service = _server(archive, may=lambda ae, right: ae == "TRUSTED" and right == "commit")
    try:
        _, refused = _n_action(scp.port, "STRANGER", pairs[:1])
        _, accepted = _n_action(scp.port, "TRUSTED", pairs[:1])
    finally:
        scp.stop()
        archive.close()
    assert (refused, accepted) == (0x0124, 0x0000)
    assert service.stats["requests"] == 1


def test_an_unreachable_requestor_holds_up_no_other_report(stored):
    import socket

    root, pairs = stored
    silent = socket.create_server(("127.0.0.1", 0), backlog=4)  # accepts connections, never answers
    listener = Listener(ae_title="PYSCU")
    peers = {"SILENT": silent.getsockname(), "PYSCU": ("127.0.0.1", listener.port)}
    archive = Archive(str(root))
    scp, service = _server(archive, peers=peers, network_timeout=120)
    db = CommitmentStore(archive.database_path)
    try:
        stuck, _ = _n_action(scp.port, "SILENT", pairs[:2])
        deadline = time.time() + 60
        while time.time() < deadline and (db.get(stuck) is None or db.get(stuck).state != VERIFIED):
            time.sleep(0.05)
        time.sleep(0.5)  # its report is on its way to a peer that never answers
        uid, _ = _n_action(scp.port, "PYSCU", pairs[2:4])
        assert listener.got.wait(60)  # while the other waits up to 120 s for an A-ASSOCIATE-AC
        assert listener.reports[0][1].TransactionUID == uid
        t = db.get(stuck)
        assert t.state == VERIFIED and t.attempts == 0  # still in its first attempt
    finally:
        silent.close()
        scp.stop()
        listener.close()
        archive.close()
        db.close()


def test_a_transaction_recorded_but_never_verified_is_verified_and_reported_at_start(stored):
    root, pairs = stored
    listener = Listener(ae_title="PYSCU")
    archive = Archive(str(root))
    db = CommitmentStore(archive.database_path)
    # What a server killed right after answering the N-ACTION leaves: the row, nothing checked yet.
    db.add("1.2.3.777", "PYSCU", "FASTDICOM", [*pairs[:2], (MR, pairs[2][1])], "1.2.840.10008.1.2")
    scp, service = _server(archive, peers={"PYSCU": ("127.0.0.1", listener.port)})
    try:
        assert listener.got.wait(60)
        assert service.wait_idle(30)
    finally:
        scp.stop()
        listener.close()
        archive.close()
    event_type, ds = listener.reports[0]
    ok, failed = _report_sets(ds)
    assert event_type == 2 and ds.TransactionUID == "1.2.3.777"
    assert ok == set(pairs[:2]) and failed == {(MR, pairs[2][1]): FailureReason.CLASS_INSTANCE_CONFLICT}
    assert db.get("1.2.3.777").state == REPORTED
    db.close()
