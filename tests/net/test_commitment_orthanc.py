"""Storage Commitment with Orthanc (Debian package), both directions; Orthanc reports on a new association."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request

import pytest

import fastdicom
from fastdicom.net import commit, store

from .conftest import free_port, wait_port

ORTHANC = shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if os.path.exists("/usr/sbin/Orthanc") else None)
pytestmark = pytest.mark.skipif(ORTHANC is None, reason="Orthanc not installed (ci/setup.sh installs it)")


class Orthanc:
    """Orthanc on loopback ports in a temporary folder, with TCP_NODELAY=1 (see ../shared/reference/orthanc.md)."""

    def __init__(self, folder):
        self.dicom_port, self.http_port = free_port(), free_port()
        config = {
            "Name": "fastdicom-test",
            "StorageDirectory": str(folder / "storage"),
            "IndexDirectory": str(folder / "index"),
            "TemporaryDirectory": str(folder / "tmp"),
            "Plugins": [],
            "DicomAet": "ORTHANC",
            "DicomPort": self.dicom_port,
            "HttpPort": self.http_port,
            "DicomCheckCalledAet": False,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomAlwaysAllowStore": True,
            "DicomCheckModalityHost": False,
            "DicomModalities": {},
            "SaveJobs": False,
        }
        path = folder / "orthanc.json"
        path.write_text(json.dumps(config))
        self.log = open(folder / "orthanc.log", "wb")
        env = {**os.environ, "TCP_NODELAY": "1"}
        self.proc = subprocess.Popen([ORTHANC, str(path)], stdout=self.log, stderr=subprocess.STDOUT, env=env)
        wait_port(self.http_port, 60)
        wait_port(self.dicom_port, 60)

    def rest(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        rq = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", data=data, method=method)
        with urllib.request.urlopen(rq, timeout=120) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    def modality(self, name, port):
        self.rest("PUT", f"/modalities/{name}", {"AET": name, "Host": "127.0.0.1", "Port": port})

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    o = Orthanc(tmp_path_factory.mktemp("orthanc"))
    yield o
    o.close()


def test_fastdicom_commit_to_orthanc_reports_on_a_new_association(orthanc, series):
    address = f"ORTHANC@127.0.0.1:{orthanc.dicom_port}"
    sent = store(series[:4], address, associations=1, progress=False)
    assert not sent.failed
    listen = free_port()
    orthanc.modality("FDSCU", listen)  # where Orthanc reports to
    ct = fastdicom.read(series[0], stop_before_pixels=True).SOPClassUID
    mr = "1.2.840.10008.5.1.4.1.1.4"
    other = fastdicom.read(series[1], stop_before_pixels=True).SOPInstanceUID
    items = [*series[:4], (ct, "1.2.3.4.5.404"), (mr, other)]
    report = commit(address, items, listen=listen, calling_ae="FDSCU", timeout=60)
    assert report.action_status == 0 and report.reported and report.same_association is False
    assert [r.committed for r in report.results] == [True] * 4 + [False, False]
    assert report.results[4].failure_reason == 0x0112  # not in Orthanc
    # Orthanc checks presence and SOP class: the MR class named for a CT instance is a conflict (0x0119)
    assert report.results[5].failure_reason == 0x0119
    assert report.event_type == 2


def test_orthanc_commit_to_fastdicom_serve(orthanc, series, tmp_path):
    from fastdicom.archive import Archive
    from fastdicom.net import StorageSCP
    from fastdicom.services.commitment import CommitmentService

    archive = Archive(str(tmp_path / "archive"))
    service = CommitmentService(archive, peers={"ORTHANC": ("127.0.0.1", orthanc.dicom_port)}, ae_title="FDSCP")
    with StorageSCP(archive=archive, ae_title="FDSCP", port=0, services=[service]) as scp:
        sent = store(series[:5], f"FDSCP@127.0.0.1:{scp.port}", associations=1, progress=False)
        assert not sent.failed
        orthanc.modality("FDSCP", scp.port)
        pairs = []
        for p in series[:5]:
            ds = fastdicom.read(p, stop_before_pixels=True)
            pairs.append({"SOPClassUID": ds.SOPClassUID, "SOPInstanceUID": ds.SOPInstanceUID})
        pairs.append({"SOPClassUID": pairs[0]["SOPClassUID"], "SOPInstanceUID": "1.2.3.4.5.404"})
        answer = orthanc.rest("POST", "/modalities/FDSCP/storage-commitment", {"DicomInstances": pairs})
        deadline = time.time() + 60
        while time.time() < deadline:
            report = orthanc.rest("GET", answer["Path"])
            if report.get("Status") != "Pending":
                break
            time.sleep(0.1)
        assert service.wait_idle(30)
    archive.close()
    # Orthanc released after the N-ACTION-RSP: the report went on a new association to Orthanc's port
    assert service.stats["reported_new"] == 1
    assert report["Status"] == "Failure", report
    assert {s["SOPInstanceUID"] for s in report["Success"]} == {p["SOPInstanceUID"] for p in pairs[:5]}
    assert [(f["SOPInstanceUID"], f["FailureReason"]) for f in report["Failures"]] == [("1.2.3.4.5.404", 0x0112)]
