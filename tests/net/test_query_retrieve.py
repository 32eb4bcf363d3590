"""The Q/R SCP of ``fastdicom serve`` (PacsServer) against DCMTK findscu/movescu/getscu and pynetdicom SCUs.

Every peer runs on loopback, started here; DCMTK tools with TCP_NODELAY=1.
Results are checked against what was stored (read back with fastdicom and
pydicom), statuses against PS3.4 C.4.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time

import pytest

from fastdicom import Dataset, read, synth
from fastdicom.config import Peer, ServerConfig, ServerLimits
from fastdicom.dataset.dataset import Element
from fastdicom.net import dimse, pdu
from fastdicom.net.association import Association, AssociationRejected
from fastdicom.net.dimse import DimseChannel
from fastdicom.services import store
from fastdicom.services.query_retrieve import FIND, GET, MOVE, decode_identifier, encode_answer
from fastdicom.services.verification import VERIFICATION

from .conftest import free_port, need
from .test_scp import pki as _pki

#: The CA, server and client certificates of the TLS tests (the fixture of test_scp.py).
pki = _pki

pynetdicom = pytest.importorskip("pynetdicom")

STUDY_FIND = next(u for u, m in FIND.items() if m == "study")
PATIENT_FIND = next(u for u, m in FIND.items() if m == "patient")
STUDY_MOVE = next(u for u, m in MOVE.items() if m == "study")
STUDY_GET = next(u for u, m in GET.items() if m == "study")
IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
ENV = dict(os.environ, TCP_NODELAY="1")
JAPANESE = "Yamada^Tarou=山田^太郎=やまだ^たろう"


def _pacs(folder, **config):
    from fastdicom.services.pacs import PacsServer

    cfg = ServerConfig(port=0, host="127.0.0.1", **config)
    return PacsServer(str(folder), config=cfg).start()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Twelve CT slices of one series, and one Japanese-named secondary capture of another patient."""
    folder = tmp_path_factory.mktemp("qr-src")
    paths = synth.write_ct_series(str(folder / "ct"), 12, rows=16, columns=16)
    ds = read(paths[0])
    sc = Dataset()
    sc.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    sc.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture Image Storage
    sc.SOPInstanceUID = synth.new_uid()
    sc.StudyInstanceUID = synth.new_uid()
    sc.SeriesInstanceUID = synth.new_uid()
    sc.PatientName = JAPANESE
    sc.PatientID = "JP0001"
    sc.StudyDate = "20240115"
    sc.StudyTime = "101500"
    sc.Modality = "OT"
    sc.AccessionNumber = "ACC-JP"
    sc.StudyID = "1"
    sc.SeriesNumber = 1
    sc.InstanceNumber = 1
    jp = str(folder / "jp.dcm")
    sc.save(jp)
    return {"ct": paths, "study": ds.StudyInstanceUID, "series": ds.SeriesInstanceUID, "jp": jp, "patient": ds}


@pytest.fixture(scope="module")
def move_port():
    return free_port()


@pytest.fixture(scope="module")
def server(tmp_path_factory, data, move_port):
    """One PACS for the module, filled through C-STORE; MOVESCU is a destination, NOROLE may only store."""
    peers = {
        "MOVESCU": Peer("MOVESCU", "127.0.0.1", move_port),
        "NOROLE": Peer("NOROLE", may=frozenset({"store"})),
    }
    srv = _pacs(tmp_path_factory.mktemp("qr-archive"), peers=peers, allow_any=True)
    report = store([*data["ct"], data["jp"]], f"FASTDICOM@127.0.0.1:{srv.port}")
    assert not report.failed, report.summary()
    yield srv
    srv.stop()


# -- a client of our own protocol layer, for what the SCU tools cannot send ---------------------------


class Raw:
    """An association proposing the Study Root classes (and Verification), answering in order."""

    def __init__(
        self,
        port: int,
        syntax: str = IMPLICIT,
        calling_ae: str = "RAW",
        extended: dict | None = None,
        called_ae: str = "FASTDICOM",
    ):
        contexts = [
            pdu.PresentationContext(1, STUDY_FIND, [syntax]),
            pdu.PresentationContext(3, STUDY_MOVE, [syntax]),
            pdu.PresentationContext(5, VERIFICATION, [IMPLICIT]),
            pdu.PresentationContext(7, PATIENT_FIND, [syntax]),
        ]
        self.syntax = syntax
        self.assoc = Association.request(
            "127.0.0.1",
            port,
            calling_ae=calling_ae,
            called_ae=called_ae,
            contexts=contexts,
            network_timeout=120,
            sop_class_extended=extended or {},
        )
        self.channel = DimseChannel(self.assoc)

    def send(self, ctx: int, field_: int, sop_class: str, data: bytes | None, **extra) -> int:
        mid = self.channel.next_message_id()
        cmd = {"CommandField": field_, "MessageID": mid, "Priority": 0, "AffectedSOPClassUID": sop_class, **extra}
        self.channel.send_message(ctx, cmd, data)
        return mid

    def responses(self) -> list:
        out = []
        while True:
            msg = self.channel.receive_message(timeout=120)
            out.append(msg)
            if msg.command.get("Status") not in (0xFF00, 0xFF01):
                return out

    def find(self, identifier: Dataset | bytes, ctx: int = 1, sop_class: str = STUDY_FIND) -> list:
        data = identifier if isinstance(identifier, bytes) else encode_answer(identifier, None, self.syntax)
        self.send(ctx, dimse.C_FIND_RQ, sop_class, data)
        return self.responses()

    def echo(self) -> int:
        self.send(5, dimse.C_ECHO_RQ, VERIFICATION, None)
        return int(self.channel.receive_message(timeout=60).command["Status"])

    def close(self) -> None:
        self.assoc.release()


def _ident(level: str, **keys) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for k, v in keys.items():
        setattr(ds, k, v)
    return ds


def _answers(msgs, syntax=IMPLICIT):
    return [decode_identifier(m.data, syntax, 10**6) for m in msgs if m.command["Status"] in (0xFF00, 0xFF01)]


# -- C-FIND ---------------------------------------------------------------------------------------------


def _dcmtk(tool: str, port: int, *args: str) -> subprocess.CompletedProcess:
    """Run DCMTK's ``tool`` (verbose) against our server; its log is on stderr."""
    return subprocess.run(
        [need(tool), "-v", *args, "127.0.0.1", str(port)], capture_output=True, text=True, env=ENV, timeout=180
    )


def _findscu(port: int, *args: str) -> subprocess.CompletedProcess:
    return _dcmtk("findscu", port, *args)


def test_findscu_study_root_levels(server, data):
    """findscu -S at STUDY, SERIES and IMAGE level: one study, one series, twelve images (PS3.4 C.4.1)."""
    r = _findscu(
        server.port,
        "-S",
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={data['study']}",
        "-k",
        "PatientName",
        "-k",
        "PatientID",
        "-k",
        "StudyDate",
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("(Pending)") == 1 and "Final Find Response (Success)" in r.stderr, r.stderr
    assert str(data["patient"].PatientName) in r.stderr and data["patient"].PatientID in r.stderr
    r = _findscu(
        server.port,
        "-S",
        "-k",
        "QueryRetrieveLevel=SERIES",
        "-k",
        f"StudyInstanceUID={data['study']}",
        "-k",
        "SeriesInstanceUID",
        "-k",
        "Modality",
    )
    assert r.returncode == 0 and data["series"] in r.stderr, r.stderr
    r = _findscu(
        server.port,
        "-S",
        "-k",
        "QueryRetrieveLevel=IMAGE",
        "-k",
        f"StudyInstanceUID={data['study']}",
        "-k",
        f"SeriesInstanceUID={data['series']}",
        "-k",
        "SOPInstanceUID",
    )
    assert r.returncode == 0
    assert r.stderr.count("(Pending)") == 12, r.stderr[-2000:]
    for p in data["ct"]:
        assert read(p).SOPInstanceUID in r.stderr


def test_findscu_patient_root_and_retrieve_ae(server, data):
    r = _findscu(server.port, "-P", "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID=PID*", "-k", "PatientName")
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("(Pending)") == 1 and "RetrieveAETitle" in r.stderr and "FASTDICOM" in r.stderr


def test_pynetdicom_find_counts_and_wildcards(server, data):
    from pynetdicom import AE
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate("127.0.0.1", server.port, ae_title="FASTDICOM")
    assert assoc.is_established
    try:
        from pydicom import Dataset as PDataset

        q = PDataset()
        q.QueryRetrieveLevel = "STUDY"
        q.PatientName = "*"
        q.StudyInstanceUID = ""
        q.ModalitiesInStudy = ""
        got = list(assoc.send_c_find(q, StudyRootQueryRetrieveInformationModelFind))
        assert got[-1][0].Status == 0x0000
        studies = {i.StudyInstanceUID for s, i in got[:-1]}
        assert studies == {data["study"], read(data["jp"]).StudyInstanceUID}
        q.PatientName = "doe*"  # PN matching ignores case by default (the configuration can make it literal)
        got = [i for s, i in assoc.send_c_find(q, StudyRootQueryRetrieveInformationModelFind) if i is not None]
        assert [i.StudyInstanceUID for i in got] == [data["study"]]
    finally:
        assoc.release()


def test_japanese_iso2022_query_round_trips(server, data):
    """An ISO 2022 IR 87 query is decoded; the answer comes back in the query's set, every component intact."""
    raw = Raw(server.port)
    try:
        q = _ident("STUDY", StudyInstanceUID="", PatientName="*山田*")
        q.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
        msgs = raw.find(encode_answer(q, ["", "ISO 2022 IR 87"], IMPLICIT))
        assert msgs[-1].command["Status"] == 0
        (ans,) = _answers(msgs)
        assert str(ans.PatientName) == JAPANESE
        assert ans.SpecificCharacterSet == ["", "ISO 2022 IR 87"]
        assert b"\x1b$B" in msgs[0].data  # JIS X 0208 designated in the answer's bytes
    finally:
        raw.close()


def test_utf8_query_and_ascii_query_of_a_japanese_name(server, data):
    """UTF-8 query: UTF-8 answer. A query without Specific Character Set: the answer cannot be in the default
    repertoire, so it is UTF-8 and says ISO_IR 192 (never '?' or a stripped name)."""
    raw = Raw(server.port)
    try:
        q = _ident("STUDY", StudyInstanceUID="", PatientName="*やまだ*")
        q.SpecificCharacterSet = "ISO_IR 192"
        (ans,) = _answers(raw.find(encode_answer(q, ["ISO_IR 192"], IMPLICIT)))
        assert str(ans.PatientName) == JAPANESE and ans.SpecificCharacterSet == "ISO_IR 192"
        (ans,) = _answers(raw.find(_ident("STUDY", StudyInstanceUID="", PatientName="Yamada*")))
        assert str(ans.PatientName) == JAPANESE and ans.SpecificCharacterSet == "ISO_IR 192"
    finally:
        raw.close()


def test_find_cancel(tmp_path):
    """C-CANCEL sent right behind a C-FIND of 300 matches: the SCP stops within one answer, ends with 0xFE00."""
    paths = synth.write_ct_series(str(tmp_path / "src"), 300, rows=8, columns=8)
    study = read(paths[0]).StudyInstanceUID
    srv = _pacs(tmp_path / "archive")
    try:
        assert not store(paths, f"FASTDICOM@127.0.0.1:{srv.port}").failed
        raw = Raw(srv.port)
        q = encode_answer(_ident("IMAGE", StudyInstanceUID=study, SOPInstanceUID=""), None, IMPLICIT)
        mid = raw.send(1, dimse.C_FIND_RQ, STUDY_FIND, q)
        raw.channel.send_message(1, {"CommandField": dimse.C_CANCEL_RQ, "MessageIDBeingRespondedTo": mid})
        msgs = raw.responses()
        assert msgs[-1].command["Status"] == 0xFE00
        assert len(msgs) - 1 < 300
        assert len(_answers(raw.find(q))) == 300  # the same query, not cancelled, answers every match
        assert raw.echo() == 0
        raw.close()
    finally:
        srv.stop()


def test_match_limit_refuses_with_a700(tmp_path, data):
    srv = _pacs(tmp_path, limits=ServerLimits(match_limit=5))
    try:
        store(data["ct"], f"FASTDICOM@127.0.0.1:{srv.port}")
        raw = Raw(srv.port)
        msgs = raw.find(_ident("IMAGE", StudyInstanceUID=data["study"], SOPInstanceUID=""))
        assert [m.command["Status"] for m in msgs] == [0xA700]  # nothing answered before the refusal
        assert "5" in msgs[0].command["ErrorComment"]
        assert len(_answers(raw.find(_ident("SERIES", StudyInstanceUID=data["study"], SeriesInstanceUID="")))) == 1
        raw.close()
    finally:
        srv.stop()


def test_bad_identifiers_get_a_status_and_the_server_goes_on(server, data):
    raw = Raw(server.port)
    try:
        # Unknown level, and PATIENT level in Study Root: 0xA900, the level named.
        msgs = raw.find(_ident("FOO", PatientID=""))
        assert msgs[-1].command["Status"] == 0xA900 and msgs[-1].command["OffendingElement"] == 0x00080052
        assert raw.find(_ident("PATIENT", PatientID=""))[-1].command["Status"] == 0xA900
        assert raw.find(_ident("STUDY", StudyInstanceUID="").__class__())[-1].command["Status"] == 0xA900  # no level
        # Bytes that are no data set: 0xC000.
        assert raw.find(b"\x10\x00\x10\x00\xff\xff\xff\x7fjunk")[-1].command["Status"] == 0xC000
        # A malformed range: 0xC000 with the offending element.
        msgs = raw.find(_ident("STUDY", StudyDate="2024-01-01-"))
        assert msgs[-1].command["Status"] == 0xC000
        # A 10 MB value: refused, not matched.
        big = _ident("STUDY", StudyInstanceUID="")
        big.PatientName = "A" * (10 << 20)
        assert raw.find(big)[-1].command["Status"] == 0xC000
        assert raw.echo() == 0
    finally:
        raw.close()


def test_100000_uid_list(server, data):
    """A List of UID Matching with 100,000 UIDs (12 of them stored) is served; 100,001 is refused (0xA700)."""
    uids = [read(p).SOPInstanceUID for p in data["ct"]]
    fillers = [f"1.2.826.0.1.3680043.10.{k}" for k in range(100_000 - len(uids))]
    raw = Raw(server.port)
    try:
        q = _ident("IMAGE", StudyInstanceUID=data["study"], SeriesInstanceUID=data["series"])
        q.SOPInstanceUID = fillers + uids
        got = _answers(raw.find(q))
        assert sorted(a.SOPInstanceUID for a in got) == sorted(uids)
        q.SOPInstanceUID = [*fillers, *uids, "1.2.3.4"]
        msgs = raw.find(q)
        assert [m.command["Status"] for m in msgs] == [0xA700] and "100000" in msgs[0].command["ErrorComment"]
        assert raw.echo() == 0
    finally:
        raw.close()


def test_config_policy(tmp_path, data):
    """With peers named, an unnamed calling AE is rejected at association; a peer without the query right gets
    0x0124 (not authorized)."""
    srv = _pacs(tmp_path, peers={"ONLY": Peer("ONLY", may=frozenset({"store"}))})
    try:
        with pytest.raises(AssociationRejected):
            Raw(srv.port, calling_ae="STRANGER")
        raw = Raw(srv.port, calling_ae="ONLY")
        assert raw.find(_ident("STUDY", StudyInstanceUID=""))[-1].command["Status"] == 0x0124
        raw.close()
    finally:
        srv.stop()


# -- C-MOVE ---------------------------------------------------------------------------------------------


def _receiver(port: int, seen: list, delay: float = 0.0, vanish_after: int | None = None):
    """A pynetdicom Storage SCP that records each C-STORE's Move Originator AE Title and Message ID; with
    ``vanish_after``, it stops listening and aborts every association from that object on."""
    from pynetdicom import AE, AllStoragePresentationContexts, evt

    ae = AE(ae_title="MOVESCU")
    ae.supported_contexts = AllStoragePresentationContexts
    holder: dict = {}
    lock = threading.Lock()

    def on_store(event):
        rq = event.request
        with lock:
            if vanish_after is not None and len(seen) >= vanish_after:
                if not holder.get("gone"):
                    holder["gone"] = True
                    holder["server"].server_close()  # nobody listens any more: no new association either
                event.assoc.abort()
                return 0xA700
            seen.append(
                (rq.AffectedSOPInstanceUID, rq.MoveOriginatorApplicationEntityTitle, rq.MoveOriginatorMessageID)
            )
        if delay:
            time.sleep(delay)
        return 0x0000

    holder["server"] = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    return holder["server"]


def test_movescu_to_configured_destination(server, data, move_port, tmp_path):
    """DCMTK movescu with its own receiving port (+P): every object arrives, final 0x0000."""
    r = _dcmtk(
        "movescu",
        server.port,
        *("-S", "-aet", "MOVESCU", "-aem", "MOVESCU", "+P", str(move_port), "-od", str(tmp_path)),
        *("-k", "QueryRetrieveLevel=SERIES", "-k", f"StudyInstanceUID={data['study']}"),
        *("-k", f"SeriesInstanceUID={data['series']}"),
    )
    assert r.returncode == 0, r.stderr[-2000:]
    got = sorted(read(str(tmp_path / f)).SOPInstanceUID for f in os.listdir(tmp_path))
    assert got == sorted(read(p).SOPInstanceUID for p in data["ct"])


def test_move_originator_and_unknown_destination(server, data, move_port):
    from pydicom import Dataset as PDataset
    from pynetdicom import AE
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove

    seen: list = []
    receiver = _receiver(move_port, seen)
    try:
        ae = AE(ae_title="PYMOVE")
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
        assoc = ae.associate("127.0.0.1", server.port, ae_title="FASTDICOM")
        q = PDataset()
        q.QueryRetrieveLevel = "STUDY"
        q.StudyInstanceUID = data["study"]
        rsp = list(assoc.send_c_move(q, "MOVESCU", StudyRootQueryRetrieveInformationModelMove, msg_id=77))
        final = rsp[-1][0]
        assert final.Status == 0x0000 and final.NumberOfCompletedSuboperations == 12
        assert final.NumberOfFailedSuboperations == 0
        assert len(seen) == 12 and {(o, m) for _, o, m in seen} == {("PYMOVE", 77)}
        rsp = list(assoc.send_c_move(q, "NOBODY", StudyRootQueryRetrieveInformationModelMove))
        assert [s.Status for s, _ in rsp] == [0xA801]
        assoc.release()
    finally:
        receiver.shutdown()


def test_move_cancel(server, data, move_port):
    """A slow destination; C-CANCEL after the first pending: final 0xFE00, not everything sent."""
    seen: list = []
    receiver = _receiver(move_port, seen, delay=1.0)
    raw = Raw(server.port)
    try:
        q = encode_answer(_ident("STUDY", StudyInstanceUID=data["study"]), None, IMPLICIT)
        mid = raw.send(3, dimse.C_MOVE_RQ, STUDY_MOVE, q, MoveDestination="MOVESCU")
        time.sleep(0.5)
        raw.channel.send_message(3, {"CommandField": dimse.C_CANCEL_RQ, "MessageIDBeingRespondedTo": mid})
        msgs = raw.responses()
        final = msgs[-1].command
        assert final["Status"] == 0xFE00, final
        assert final["NumberOfRemainingSuboperations"] > 0
        assert final["NumberOfCompletedSuboperations"] + final["NumberOfRemainingSuboperations"] == 12
        assert raw.echo() == 0
    finally:
        raw.close()
        receiver.shutdown()


def test_destination_vanishing_mid_move(server, data, move_port):
    """The destination stops after 3 objects: the move reports the failures (0xB000, Failed SOP Instance UID
    List), and the server keeps serving."""
    seen: list = []
    receiver = _receiver(move_port, seen, vanish_after=3)
    raw = Raw(server.port)
    try:
        q = encode_answer(_ident("STUDY", StudyInstanceUID=data["study"]), None, IMPLICIT)
        raw.send(3, dimse.C_MOVE_RQ, STUDY_MOVE, q, MoveDestination="MOVESCU")
        msgs = raw.responses()
        final = msgs[-1].command
        assert final["Status"] in (0xB000, 0xA702), final
        completed, failed = final["NumberOfCompletedSuboperations"], final["NumberOfFailedSuboperations"]
        assert completed >= 1 and failed >= 1 and completed + failed == 12
        failed_list = decode_identifier(msgs[-1].data, IMPLICIT, 10**6).FailedSOPInstanceUIDList
        failed_list = failed_list if isinstance(failed_list, list) else [failed_list]
        assert len(failed_list) == failed
        assert set(failed_list).isdisjoint(u for u, _, _ in seen) and len(seen) == completed == 3
        assert raw.echo() == 0
    finally:
        raw.close()
        receiver.shutdown()


# -- C-GET ---------------------------------------------------------------------------------------------


def test_getscu(server, data, tmp_path):
    r = _dcmtk(
        "getscu",
        server.port,
        *("-S", "-od", str(tmp_path), "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={data['study']}"),
    )
    assert r.returncode == 0, r.stderr[-2000:]
    got = {read(str(tmp_path / f)).SOPInstanceUID: str(tmp_path / f) for f in os.listdir(tmp_path)}
    assert sorted(got) == sorted(read(p).SOPInstanceUID for p in data["ct"])
    one = read(data["ct"][0])
    assert bytes(read(got[one.SOPInstanceUID]).PixelData) == bytes(one.PixelData)


def test_pynetdicom_get_without_scp_role_for_a_class(server, data):
    """C-GET of both studies, the SCP role given for CT only: the secondary capture is a failed sub-operation
    (0xB000, its UID in the Failed SOP Instance UID List); CT objects arrive."""
    from pydicom import Dataset as PDataset
    from pynetdicom import AE, build_role, evt
    from pynetdicom.sop_class import (
        CTImageStorage,
        SecondaryCaptureImageStorage,
        StudyRootQueryRetrieveInformationModelGet,
    )

    got: list = []

    def on_store(event):
        got.append(event.request.AffectedSOPInstanceUID)
        return 0x0000

    ae = AE(ae_title="PYGET")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(CTImageStorage)
    ae.add_requested_context(SecondaryCaptureImageStorage)
    assoc = ae.associate(
        "127.0.0.1",
        server.port,
        ae_title="FASTDICOM",
        ext_neg=[build_role(CTImageStorage, scp_role=True)],
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    assert assoc.is_established
    try:
        jp_uid = read(data["jp"]).SOPInstanceUID
        q = PDataset()
        q.QueryRetrieveLevel = "PATIENT"
        for level_q in ("STUDY",):
            q.QueryRetrieveLevel = level_q
            q.StudyInstanceUID = [data["study"], read(data["jp"]).StudyInstanceUID]
            rsp = list(assoc.send_c_get(q, StudyRootQueryRetrieveInformationModelGet))
            final, ident = rsp[-1]
            assert final.Status == 0xB000
            assert final.NumberOfCompletedSuboperations == 12 and final.NumberOfFailedSuboperations == 1
            assert ident.FailedSOPInstanceUIDList == jp_uid
        assert sorted(got) == sorted(read(p).SOPInstanceUID for p in data["ct"])
    finally:
        assoc.release()


def test_get_with_no_role_at_all_fails_every_suboperation(server, data):
    from pydicom import Dataset as PDataset
    from pynetdicom import AE
    from pynetdicom.sop_class import CTImageStorage, StudyRootQueryRetrieveInformationModelGet

    ae = AE(ae_title="PYGET")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", server.port, ae_title="FASTDICOM")
    try:
        q = PDataset()
        q.QueryRetrieveLevel = "SERIES"
        q.StudyInstanceUID = data["study"]
        q.SeriesInstanceUID = data["series"]
        final = list(assoc.send_c_get(q, StudyRootQueryRetrieveInformationModelGet))[-1][0]
        assert final.Status == 0xA702 and final.NumberOfFailedSuboperations == 12
    finally:
        assoc.release()


def test_counters_above_65535_are_clamped():
    """US counters: a count above 65,535 is sent as 65,535, and the final response says so in Error Comment."""
    from fastdicom.services.base import Request
    from fastdicom.services.query_retrieve import _Progress, clamp
    from fastdicom.services.store import InstanceResult

    assert clamp(70_000) == 65535 and clamp(-1) == 0 and clamp(12) == 12
    p = _Progress(70_000)
    for k in range(10):
        p.settle(InstanceResult("x", sop_instance_uid=f"1.2.{k}", status=0))
    r = Request(1, {"CommandField": dimse.C_MOVE_RQ, "MessageID": 1}, STUDY_MOVE, IMPLICIT, None)  # type: ignore[arg-type]
    assert p.pending(r)["NumberOfRemainingSuboperations"] == 65535
    cmd, _ = p.final(r, cancelled=False)
    assert cmd["NumberOfCompletedSuboperations"] == 10 and "65535" in cmd["ErrorComment"]


def test_identifier_elements_round_trip():
    q = _ident("STUDY", PatientName="Doe^J*")
    q[0x00100020] = Element(0x00100020, "LO", "")
    ds = decode_identifier(encode_answer(q, None, EXPLICIT), EXPLICIT, 10)
    assert ds.PatientName == "Doe^J*" and ds.QueryRetrieveLevel == "STUDY" and "PatientID" in ds


def test_relational_query_only_when_negotiated(server, data):
    """A STUDY-level query with an IMAGE-level key: refused (0xC000) in a hierarchical query (PS3.4
    C.4.1.2.2.1); answered when SOP Class Extended Negotiation agreed relational queries (C.4.1.2.2.2)."""
    sop = read(data["ct"][3]).SOPInstanceUID
    q = _ident("STUDY", StudyInstanceUID="", SOPInstanceUID=sop)
    raw = Raw(server.port)
    try:
        assert raw.find(q)[-1].command["Status"] == 0xC000
        assert raw.echo() == 0
    finally:
        raw.close()
    raw = Raw(server.port, extended={STUDY_FIND: b"\x01"})
    try:
        assert raw.assoc.agreement.sop_class_extended.get(STUDY_FIND, b"")[:1] == b"\x01"  # we accepted
        (ans,) = _answers(raw.find(q))
        assert ans.StudyInstanceUID == data["study"]
    finally:
        raw.close()


def test_private_keys_are_returned_empty_with_ff01(server, data):
    """A private key cannot be matched (its VR is not ours to know): pending 0xFF01, the key returned empty."""
    raw = Raw(server.port)
    try:
        q = _ident("STUDY", StudyInstanceUID=data["study"])
        q[0x00090010] = Element(0x00090010, "LO", "ACME")
        q[0x00091001] = Element(0x00091001, "LO", "x")
        msgs = raw.find(q)
        assert [m.command["Status"] for m in msgs] == [0xFF01, 0x0000]
        (ans,) = _answers(msgs)
        assert 0x00091001 in ans and not ans[0x00091001].value
    finally:
        raw.close()


def test_fastdicom_serve_cli_with_a_config(tmp_path, data):
    """``fastdicom serve DIR --config F.toml``: the named peer stores and queries; a stranger is rejected."""
    import sys

    from .conftest import wait_port

    port = free_port()
    cfg = tmp_path / "pacs.toml"
    cfg.write_text(f'[local]\nae_title = "MYPACS"\nport = {port}\nhost = "127.0.0.1"\n\n[peers.FRIEND]\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastdicom", "serve", str(tmp_path / "arch"), "--config", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_port(port, 60)
        report = store(data["ct"][:2], f"MYPACS@127.0.0.1:{port}", calling_ae="FRIEND")
        assert not report.failed, report.summary()
        assert store(data["ct"][:1], f"MYPACS@127.0.0.1:{port}", calling_ae="STRANGER", retries=0).failed
        raw = Raw(port, calling_ae="FRIEND")
        got = _answers(raw.find(_ident("IMAGE", StudyInstanceUID=data["study"], SOPInstanceUID="")))
        assert len(got) == 2
        raw.close()
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=60)
    assert "MYPACS listening" in out and re.search(r"stored\s+2\b", out), (out, err)


def test_storage_commitment_on_the_same_port(server, data):
    """The PACS serves Storage Commitment beside Q/R (services/commitment.py): stored instances are committed,
    a missing one fails with 0x0112 (no such object instance)."""
    from fastdicom.net import commit

    pairs = [(str(read(p).SOPClassUID), str(read(p).SOPInstanceUID)) for p in data["ct"][:3]]
    pairs.append((pairs[0][0], "1.2.826.0.1.3680043.10.999999"))
    report = commit(f"FASTDICOM@127.0.0.1:{server.port}", pairs, timeout=60, calling_ae="PYMOVE")
    assert report.event_type == 2
    assert [r.committed for r in report.results] == [True, True, True, False]
    assert report.results[-1].failure_reason == 0x0112


def test_get_over_tls(tmp_path, data, pki):
    """C-GET on a TLS association (one thread per SSL socket: the sub-operations' answers are read by the thread
    serving it): pynetdicom over TLS receives the series."""
    import ssl

    from pydicom import Dataset as PDataset
    from pynetdicom import AE, build_role, evt
    from pynetdicom.sop_class import CTImageStorage, StudyRootQueryRetrieveInformationModelGet

    from fastdicom.net.tls import server_context
    from fastdicom.services.pacs import PacsServer

    tls = server_context(str(pki / "server.pem"), str(pki / "server.key"))
    srv = PacsServer(str(tmp_path / "a"), config=ServerConfig(port=0, host="127.0.0.1"), tls=tls).start()
    try:
        client = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        assert not store(data["ct"], f"FASTDICOM@127.0.0.1:{srv.port}", tls=client).failed
        got: list = []
        ae = AE(ae_title="PYGET")
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
        ae.add_requested_context(CTImageStorage)
        assoc = ae.associate(
            "127.0.0.1", srv.port, ae_title="FASTDICOM", tls_args=(client, "localhost"),
            ext_neg=[build_role(CTImageStorage, scp_role=True)],
            evt_handlers=[(evt.EVT_C_STORE, lambda e: got.append(e.request.AffectedSOPInstanceUID) or 0)],
        )  # fmt: skip
        assert assoc.is_established
        q = PDataset()
        q.QueryRetrieveLevel = "STUDY"
        q.StudyInstanceUID = data["study"]
        final = list(assoc.send_c_get(q, StudyRootQueryRetrieveInformationModelGet))[-1][0]
        assoc.release()
        assert final.Status == 0 and final.NumberOfCompletedSuboperations == 12
        assert sorted(got) == sorted(read(p).SOPInstanceUID for p in data["ct"])
    finally:
        srv.stop()


@pytest.mark.skipif(not os.path.exists("/usr/sbin/Orthanc"), reason="Orthanc not installed (ci/setup.sh installs it)")
def test_orthanc_queries_moves_from_and_stores_into_fastdicom_serve(tmp_path, data):
    """Orthanc (REST) as the SCU: C-FIND against fastdicom serve, C-MOVE of the study into Orthanc (Orthanc is a
    configured destination), then Orthanc's C-STORE of it into a second fastdicom serve."""
    from .test_commitment_orthanc import Orthanc

    (tmp_path / "orthanc").mkdir()
    orthanc = Orthanc(tmp_path / "orthanc")
    dest = {"ORTHANC": Peer("ORTHANC", "127.0.0.1", orthanc.dicom_port)}
    srv = _pacs(tmp_path / "a", peers=dest, allow_any=True)
    other = _pacs(tmp_path / "b")
    try:
        assert not store([*data["ct"], data["jp"]], f"FASTDICOM@127.0.0.1:{srv.port}").failed
        orthanc.modality("FDSCP", srv.port)
        q = orthanc.rest(
            "POST", "/modalities/FDSCP/query",
            {"Level": "Study", "Query": {"PatientID": "PID*", "StudyInstanceUID": "", "PatientName": ""}},
        )  # fmt: skip
        answers = orthanc.rest("GET", f"{q['Path']}/answers")
        assert len(answers) == 1
        content = orthanc.rest("GET", f"{q['Path']}/answers/0/content?simplify")
        assert content["StudyInstanceUID"] == data["study"] and content["PatientName"] == "Doe^Jane"
        orthanc.rest("POST", f"{q['Path']}/retrieve", {"TargetAet": "ORTHANC", "Synchronous": True})
        instances = orthanc.rest("GET", "/instances")
        assert len(instances) == 12
        # Orthanc's C-STORE into the second server, then our C-FIND there finds every instance.
        orthanc.modality("FDSCP2", other.port)
        orthanc.rest("POST", "/modalities/FDSCP2/store", {"Resources": instances, "Synchronous": True})
        raw = Raw(other.port)
        got = _answers(raw.find(_ident("IMAGE", StudyInstanceUID=data["study"], SOPInstanceUID="")))
        raw.close()
        assert sorted(a.SOPInstanceUID for a in got) == sorted(read(p).SOPInstanceUID for p in data["ct"])
    finally:
        srv.stop()
        other.stop()
        orthanc.close()


def test_move_pending_counts_at_the_interval(tmp_path, data, move_port):
    """pending_interval 0.1 s, a destination taking 0.2 s per object: pending answers carry remaining, completed,
    failed and warning counts that add up to the total and only grow; the final one omits remaining."""
    seen: list = []
    receiver = _receiver(move_port, seen, delay=0.2)
    dest = {"MOVESCU": Peer("MOVESCU", "127.0.0.1", move_port)}
    srv = _pacs(tmp_path, peers=dest, allow_any=True, limits=ServerLimits(pending_interval=0.1, move_associations=1))
    try:
        assert not store(data["ct"], f"FASTDICOM@127.0.0.1:{srv.port}").failed
        raw = Raw(srv.port)
        q = encode_answer(
            _ident("SERIES", StudyInstanceUID=data["study"], SeriesInstanceUID=data["series"]), None, IMPLICIT
        )
        raw.send(3, dimse.C_MOVE_RQ, STUDY_MOVE, q, MoveDestination="MOVESCU")
        msgs = raw.responses()
        raw.close()
        pending = [m.command for m in msgs[:-1]]
        assert len(pending) >= 5 and all(c["Status"] == 0xFF00 for c in pending)
        keys = ("NumberOfRemainingSuboperations", "NumberOfCompletedSuboperations", "NumberOfFailedSuboperations",
                "NumberOfWarningSuboperations")  # fmt: skip
        assert all(sum(c[k] for k in keys) == 12 for c in pending)
        done = [c["NumberOfCompletedSuboperations"] for c in pending]
        assert done == sorted(done) and done[0] < 12
        final = msgs[-1].command
        assert final["Status"] == 0 and final["NumberOfCompletedSuboperations"] == 12
        assert "NumberOfRemainingSuboperations" not in final
    finally:
        srv.stop()
        receiver.shutdown()
