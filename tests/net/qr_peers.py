"""Query/Retrieve peers started by the tests on loopback: DCMTK's dcmqrscp and Orthanc (TCP_NODELAY=1 for both).

:func:`qr_data` writes a small archive to serve: two patients, three series,
two SOP classes (CT and Secondary Capture), one patient name in UTF-8.
:class:`Dcmqrscp` and :class:`OrthancPeer` start a server holding those files
(dcmqrscp filled through ``/usr/bin/storescu``, Orthanc through its HTTP
API) and stop it by its PID.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from dataclasses import dataclass, field

import fastdicom
from fastdicom import synth
from fastdicom.dictionary import uid as _uid

from .conftest import dcmtk, free_port, wait_port

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
ENV = {**os.environ, "TCP_NODELAY": "1"}


@dataclass
class QRData:
    """The files of the test archive and what they hold."""

    paths: list[str] = field(default_factory=list)
    #: SOP Instance UID -> path
    by_uid: dict[str, str] = field(default_factory=dict)
    #: Study Instance UID -> SOP Instance UIDs
    studies: dict[str, list[str]] = field(default_factory=dict)
    #: Study Instance UID -> Patient ID
    patients: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)


def _series(folder: str, data: QRData, *, patient: str, name: str, study: str, n: int, sop_class: str) -> None:
    series, frame = synth.new_uid(), synth.new_uid()
    for i in range(n):
        ds = synth.ct_slice(i, study_uid=study, series_uid=series, frame_uid=frame, rows=16, columns=16)
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.PatientID = patient
        ds.PatientName = name
        ds.SOPClassUID = sop_class
        if sop_class == SECONDARY_CAPTURE:
            ds.Modality = "OT"
        path = os.path.join(folder, f"{ds.SOPInstanceUID}.dcm")
        fastdicom.write(path, ds, transfer_syntax=_uid.ExplicitVRLittleEndian)
        data.paths.append(path)
        data.by_uid[str(ds.SOPInstanceUID)] = path
        data.studies.setdefault(study, []).append(str(ds.SOPInstanceUID))
        data.patients[study] = patient
        data.names[patient] = name


def qr_data(folder: str) -> QRData:
    """Study 1: PID-QR-1 ``Müller^José``, 4 CT. Study 2: PID-QR-2 ``Doe^Jane``, 3 CT + 2 Secondary Capture."""
    os.makedirs(folder, exist_ok=True)
    data = QRData()
    s1, s2 = synth.new_uid(), synth.new_uid()
    _series(folder, data, patient="PID-QR-1", name="Müller^José", study=s1, n=4, sop_class=synth.CT_IMAGE_STORAGE)
    _series(folder, data, patient="PID-QR-2", name="Doe^Jane", study=s2, n=3, sop_class=synth.CT_IMAGE_STORAGE)
    _series(folder, data, patient="PID-QR-2", name="Doe^Jane", study=s2, n=2, sop_class=SECONDARY_CAPTURE)
    return data


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


class Dcmqrscp:
    """``/usr/bin/dcmqrscp`` with a generated configuration: AE ``QRSCP`` over ``storage``, move destinations
    ``{AE: port}`` on 127.0.0.1."""

    def __init__(self, work: str, destinations: dict[str, int]) -> None:
        self.binary = dcmtk("dcmqrscp")
        self.work = work
        self.storage = os.path.join(work, "storage")
        os.makedirs(self.storage, exist_ok=True)
        self.port = free_port()
        hosts = "\n".join(f"dest{k} = ({ae}, 127.0.0.1, {p})" for k, (ae, p) in enumerate(destinations.items()))
        self.config = os.path.join(work, "dcmqrscp.cfg")
        with open(self.config, "w") as f:
            f.write(
                f"NetworkTCPPort = {self.port}\nMaxPDUSize = 131072\nMaxAssociations = 16\n"
                f"HostTable BEGIN\n{hosts}\nHostTable END\nVendorTable BEGIN\nVendorTable END\n"
                f"AETable BEGIN\nQRSCP {self.storage} RW (20, 1024mb) ANY\nAETable END\n"
            )
        self.log = open(os.path.join(work, "dcmqrscp.log"), "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(self.binary), "-c", self.config, str(self.port)], stdout=self.log, stderr=subprocess.STDOUT, env=ENV
        )
        wait_port(self.port, 20)

    @property
    def address(self) -> str:
        return f"QRSCP@127.0.0.1:{self.port}"

    def fill(self, paths: list[str]) -> None:
        storescu = dcmtk("storescu")
        r = subprocess.run(
            [str(storescu), "-aec", "QRSCP", "-aet", "FILLER", "127.0.0.1", str(self.port), *paths],
            capture_output=True,
            text=True,
            timeout=120,
            env=ENV,
        )
        assert r.returncode == 0, r.stdout + r.stderr

    def stop(self) -> None:
        _stop(self.proc)
        self.log.close()


class OrthancPeer:
    """``/usr/sbin/Orthanc`` with a generated JSON configuration in ``work``, on free loopback ports;
    ``modalities``: AE -> port on 127.0.0.1 (allowed to find, move, get, store)."""

    binary = shutil.which("Orthanc") or "/usr/sbin/Orthanc"

    def __init__(self, work: str, modalities: dict[str, int], aet: str = "ORTHANC") -> None:
        self.work = work
        self.aet = aet
        self.port, self.http = free_port(), free_port()
        allow = {"AllowFind": True, "AllowMove": True, "AllowGet": True, "AllowStore": True, "AllowEcho": True}
        config = {
            "Name": "fastdicom-tests",
            "StorageDirectory": os.path.join(work, "storage"),
            "IndexDirectory": os.path.join(work, "index"),
            "TemporaryDirectory": os.path.join(work, "tmp"),
            "Plugins": [],
            "DicomAet": aet,
            "DicomPort": self.port,
            "HttpPort": self.http,
            "DicomCheckCalledAet": False,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomAlwaysAllowStore": True,
            "DicomCheckModalityHost": False,
            "DicomModalities": {
                ae: {"AET": ae, "Host": "127.0.0.1", "Port": p, **allow} for ae, p in modalities.items()
            },
            "MaximumPduLength": 131072,
            "SaveJobs": False,
        }
        self.config = os.path.join(work, "orthanc.json")
        with open(self.config, "w") as f:
            json.dump(config, f, indent=1)
        self.log = open(os.path.join(work, "orthanc.log"), "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([self.binary, self.config], stdout=self.log, stderr=subprocess.STDOUT, env=ENV)
        wait_port(self.http, 60)
        wait_port(self.port, 60)

    @property
    def address(self) -> str:
        return f"{self.aet}@127.0.0.1:{self.port}"

    def rest(self, method: str, path: str, body: bytes | dict | None = None, timeout: float = 120) -> object:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        req = urllib.request.Request(f"http://127.0.0.1:{self.http}{path}", data=data, method=method)
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    def upload(self, paths: list[str]) -> None:
        for p in paths:
            with open(p, "rb") as f:
                self.rest("POST", "/instances", f.read())

    def stop(self) -> None:
        _stop(self.proc)
        self.log.close()
