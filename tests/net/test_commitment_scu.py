"""Storage Commitment SCU (fastdicom.net.commit) against a pynetdicom SCP written here, both ways of reporting."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

import fastdicom
from fastdicom.net import commit
from fastdicom.services.commitment import STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE, FailureReason

from .conftest import free_port

pynetdicom = pytest.importorskip("pynetdicom")


def _uids(paths):
    out = []
    for p in paths:
        ds = fastdicom.read(p, stop_before_pixels=True)
        out.append((ds.SOPClassUID, ds.SOPInstanceUID))
    return out


class PynetdicomCommitSCP:
    """A Storage Commitment SCP made of pynetdicom: it commits every instance except those in ``refuse`` (each
    failed with its reason), and reports on the same association or, with ``report_to``, on a new one to
    (host, port) proposing the SCP role for itself."""

    def __init__(self, refuse=None, report_to=None, delay=0.2):
        from pynetdicom import AE, evt

        self.refuse = dict(refuse or {})
        self.report_to = report_to
        self.delay = delay
        self.requests = []
        self.report_status = []
        self.done = threading.Event()
        self.ae = AE(ae_title="PYSCP")
        self.ae.add_supported_context(STORAGE_COMMITMENT)
        self.port = free_port()
        self.server = self.ae.start_server(
            ("127.0.0.1", self.port), block=False, evt_handlers=[(evt.EVT_N_ACTION, self._on_action)]
        )

    def _on_action(self, event):
        ds = event.action_information
        self.requests.append(ds)
        threading.Thread(target=self._report, args=(event.assoc, ds), daemon=True).start()
        return 0x0000, None

    def _report_data(self, ds):
        from pydicom.dataset import Dataset

        out = Dataset()
        out.TransactionUID = ds.TransactionUID
        ok, failed = [], []
        for item in ds.ReferencedSOPSequence:
            ref = Dataset()
            ref.ReferencedSOPClassUID = item.ReferencedSOPClassUID
            ref.ReferencedSOPInstanceUID = item.ReferencedSOPInstanceUID
            reason = self.refuse.get(item.ReferencedSOPInstanceUID)
            if reason is None:
                ok.append(ref)
            else:
                ref.FailureReason = reason
                failed.append(ref)
        if ok:
            out.ReferencedSOPSequence = ok
        if failed:
            out.FailedSOPSequence = failed
        return (2 if failed else 1), out

    def _report(self, assoc, ds):
        from pynetdicom import AE, build_role

        time.sleep(self.delay)  # after the N-ACTION-RSP
        event_type, data = self._report_data(ds)
        if self.report_to is None:
            status, _ = assoc.send_n_event_report(data, event_type, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE)
        else:
            ae = AE(ae_title="PYSCP")
            ae.add_requested_context(STORAGE_COMMITMENT)
            role = build_role(STORAGE_COMMITMENT, scu_role=False, scp_role=True)
            host, port, called = self.report_to
            other = ae.associate(host, port, ae_title=called, ext_neg=[role])
            assert other.is_established
            status, _ = other.send_n_event_report(data, event_type, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE)
            other.release()
        self.report_status.append(status.Status if status else None)
        self.done.set()

    def close(self):
        self.server.shutdown()


def test_commit_report_on_the_same_association(series):
    refs = _uids(series)
    bad = refs[2][1]
    scp = PynetdicomCommitSCP(refuse={bad: FailureReason.NO_SUCH_OBJECT_INSTANCE})
    try:
        report = commit(f"PYSCP@127.0.0.1:{scp.port}", series, timeout=30)
    finally:
        scp.close()
    assert report.action_status == 0 and report.event_type == 2 and report.same_association is True
    assert len(report.results) == len(series)
    assert [r.sop_instance_uid for r in report.results] == [i for _, i in refs]
    assert {r.sop_instance_uid for r in report.failed} == {bad}
    assert report.failed[0].failure_reason == 0x0112 and report.failed[0].reason == "no such object instance"
    assert len(report.committed) == len(series) - 1
    sent = scp.requests[0]  # what the peer decoded: our N-ACTION data set, every instance in order
    assert sent.TransactionUID == report.transaction_uid
    assert [(x.ReferencedSOPClassUID, x.ReferencedSOPInstanceUID) for x in sent.ReferencedSOPSequence] == refs
    assert scp.report_status == [0]  # our answer to its N-EVENT-REPORT


def test_commit_report_on_a_new_association_to_our_listening_port(series):
    listen = free_port()
    pairs = _uids(series)[:4] + [("1.2.840.10008.5.1.4.1.1.4", "1.2.3.999")]
    scp = PynetdicomCommitSCP(refuse={"1.2.3.999": 0x0119}, report_to=("127.0.0.1", listen, "FASTDICOM"))
    try:
        report = commit(f"PYSCP@127.0.0.1:{scp.port}", pairs, timeout=30, listen=listen)
    finally:
        scp.close()
    assert report.event_type == 2 and report.same_association is False
    assert [r.committed for r in report.results] == [True] * 4 + [False]
    assert report.results[-1].failure_reason == FailureReason.CLASS_INSTANCE_CONFLICT
    assert scp.report_status == [0]


def test_commit_without_a_report_in_time_fails_every_instance(series):
    scp = PynetdicomCommitSCP(delay=30)  # reports far too late
    try:
        report = commit(f"PYSCP@127.0.0.1:{scp.port}", series[:3], timeout=1.5)
    finally:
        scp.close()
    assert report.action_status == 0 and not report.reported
    assert len(report.failed) == 3 and all("no report" in r.error for r in report.failed)


def test_commit_of_unreadable_paths_is_reported_without_asking(tmp_path):
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not dicom at all")
    report = commit("NOBODY@127.0.0.1:1", [str(junk)], timeout=1)  # nothing to ask: no association is tried
    assert len(report.results) == 1 and not report.results[0].committed
    assert report.results[0].error.startswith("unreadable")


def test_cli_commit_json(series):
    refs = _uids(series)
    scp = PynetdicomCommitSCP(refuse={refs[0][1]: 0x0110})
    try:
        run = subprocess.run(
            [sys.executable, "-m", "fastdicom", "commit", *series[:3], "--to", f"PYSCP@127.0.0.1:{scp.port}", "--json"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        table = subprocess.run(
            [sys.executable, "-m", "fastdicom", "commit", series[1], "--to", f"PYSCP@127.0.0.1:{scp.port}"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        scp.close()
    assert run.returncode == 1, run.stderr  # one failed
    out = json.loads(run.stdout)
    assert out["committed"] == 2 and out["failed"] == 1
    assert out["results"][0]["failure_reason"] == "0x0110" and out["results"][0]["reason"] == "processing failure"
    assert table.returncode == 0, table.stderr
    assert "committed" in table.stdout and refs[1][1][:20] in table.stdout
