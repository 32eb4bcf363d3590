"""Differential C-FIND: the same queries against ``fastdicom serve`` and DCMTK dcmqrscp holding the same studies.

Where they differ the test says who follows PS3.4 and why (dcmqrscp is the reference for what it implements).
"""

from __future__ import annotations

import os
import subprocess

import pytest

from fastdicom import Dataset
from fastdicom.config import ServerConfig
from fastdicom.synth import new_uid

from .conftest import free_port, need, wait_port
from .test_query_retrieve import Raw, _answers, _ident

ENV = dict(os.environ, TCP_NODELAY="1")
NAMES = ["Doe^John", "Doe^Jane", "Smith^Anna", "Smyth^Bob", "O'Neil^Cara", "Doe^Johnny"]


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """Twelve studies (names, IDs, dates, accession numbers varied) in dcmqrscp and in fastdicom serve."""
    from fastdicom.archive import Archive
    from fastdicom.services.pacs import PacsServer

    work = tmp_path_factory.mktemp("qr-diff")
    files, studies = [], []
    for i in range(12):
        ds = Dataset()
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
        ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = new_uid(), new_uid(), new_uid()
        ds.PatientName, ds.PatientID = NAMES[i % len(NAMES)], f"ID{i % 6:03d}"
        ds.StudyDate, ds.StudyTime = f"202401{i + 1:02d}", f"{8 + i:02d}3000"
        ds.AccessionNumber, ds.StudyID, ds.Modality = f"ACC{i:03d}", str(i), "OT"
        ds.SeriesNumber, ds.InstanceNumber = 1, 1
        p = str(work / f"f{i}.dcm")
        ds.save(p)
        files.append(p)
        studies.append(ds)
    area = work / "dcmqr"
    area.mkdir()
    port = free_port()
    cfg = work / "dcmqrscp.cfg"
    cfg.write_text(
        f"NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 16\nHostTable BEGIN\nHostTable END\n"
        f"VendorTable BEGIN\nVendorTable END\nAETable BEGIN\nDCMQRSCP {area} RW (100, 1024mb) ANY\nAETable END\n"
    )
    subprocess.run([need("dcmqridx"), str(area), *files], check=True, env=ENV, timeout=120, capture_output=True)
    proc = subprocess.Popen([need("dcmqrscp"), "-c", str(cfg)], env=ENV)
    archive = Archive(str(work / "fd"))
    archive.add(files)
    srv = PacsServer(config=ServerConfig(port=0, host="127.0.0.1"), archive=archive).start()
    try:
        wait_port(port)
        yield {"dcmqrscp": port, "fastdicom": srv.port, "studies": studies}
    finally:
        srv.stop()
        proc.terminate()
        proc.wait(30)


def _studies(port: int, called: str, **keys) -> set[str]:
    raw = Raw(port, called_ae=called)
    try:
        msgs = raw.find(_ident("STUDY", **{"StudyInstanceUID": "", "PatientName": "", **keys}))
        assert msgs[-1].command["Status"] == 0, msgs[-1].command
        return {a.StudyInstanceUID for a in _answers(msgs)}
    finally:
        raw.close()


QUERIES = [
    ("single value (C.2.2.2.1)", {"PatientID": "ID001"}),
    ("universal (C.2.2.2.3)", {"PatientID": ""}),
    ("wild card * (C.2.2.2.4)", {"PatientName": "Doe*"}),
    ("wild card ? (C.2.2.2.4)", {"PatientName": "Sm?th*"}),
    ("date range (C.2.2.2.5)", {"StudyDate": "20240103-20240107"}),
    ("open date range (C.2.2.2.5)", {"StudyDate": "-20240104"}),
    ("date and accession number together", {"StudyDate": "20240101-20240112", "AccessionNumber": "ACC00*"}),
]


@pytest.mark.parametrize(("rule", "keys"), QUERIES, ids=[q[0] for q in QUERIES])
def test_same_answers_as_dcmqrscp(both, rule, keys):
    expected = _studies(both["dcmqrscp"], "DCMQRSCP", **keys)
    assert expected, f"{rule}: the query should match something"
    assert _studies(both["fastdicom"], "FASTDICOM", **keys) == expected


def test_list_of_uids(both):
    """List of UID Matching (C.2.2.2.2): dcmqrscp and we answer the listed studies."""
    uids = [s.StudyInstanceUID for s in both["studies"][2:5]]
    for port, called in ((both["dcmqrscp"], "DCMQRSCP"), (both["fastdicom"], "FASTDICOM")):
        raw = Raw(port, called_ae=called)
        q = _ident("STUDY", PatientName="")
        q.StudyInstanceUID = uids
        got = {a.StudyInstanceUID for a in _answers(raw.find(q))}
        raw.close()
        assert got == set(uids), called


def test_person_name_case(both):
    """PS3.4 C.2.2.2.1 lets PN matching ignore case. dcmqrscp matches literally; fastdicom serve, by default,
    without regard to case (as Orthanc); ``[matching] pn_case_insensitive = false`` makes it literal."""
    literal = _studies(both["dcmqrscp"], "DCMQRSCP", PatientName="doe*")
    ours = _studies(both["fastdicom"], "FASTDICOM", PatientName="doe*")
    assert literal == set() and ours == _studies(both["dcmqrscp"], "DCMQRSCP", PatientName="Doe*")
