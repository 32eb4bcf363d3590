"""The Query/Retrieve SCU (find, move, get) against real SCPs started here: DCMTK's dcmqrscp and Orthanc.

Every result is checked against what the peer holds: the files given to it
(SOP Instance UIDs, data set bytes), and for Orthanc its HTTP API.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import struct
import subprocess
import sys

import pytest

import fastdicom
from fastdicom import _backends
from fastdicom.net import QueryRetrieveError, StorageSCP, find, get, move
from fastdicom.services import query_retrieve_scu as qr

from .conftest import dcmtk, free_port
from .qr_peers import SECONDARY_CAPTURE, Dcmqrscp, OrthancPeer, qr_data

CT = "1.2.840.10008.5.1.4.1.1.2"


def _body(path) -> bytes:
    data = open(path, "rb").read()
    return data[_backends.resolve("parse")[1].open_dataset(memoryview(data), True).body_start :]


def _archived(folder) -> dict[str, str]:
    return {os.path.basename(p)[:-4]: p for p in glob.glob(os.path.join(str(folder), "*", "*", "*.dcm"))}


def _assert_same_objects(got: dict[str, str], uids, data) -> None:
    assert set(got) == set(uids)
    for uid in uids:
        assert _body(got[uid]) == _body(data.by_uid[uid]), uid


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return qr_data(str(tmp_path_factory.mktemp("qr-data")))


@pytest.fixture(scope="module")
def dest_port():
    """The port our own Storage SCP listens on as move destination FDDEST (known to the peers)."""
    return free_port()


@pytest.fixture(scope="module")
def dcmqrscp(tmp_path_factory, data, dest_port):
    if dcmtk("dcmqrscp") is None or dcmtk("storescu") is None:
        pytest.skip("DCMTK dcmqrscp/storescu not installed (ci/setup.sh installs them)")
    peer = Dcmqrscp(str(tmp_path_factory.mktemp("dcmqrscp")), {"FDDEST": dest_port})
    try:
        peer.fill(data.paths)
        yield peer
    finally:
        peer.stop()


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory, data, dest_port):
    if not os.path.exists(OrthancPeer.binary):
        pytest.skip("Orthanc not installed (ci/setup.sh installs the Debian package)")
    peer = OrthancPeer(str(tmp_path_factory.mktemp("orthanc")), {"FDDEST": dest_port, "FASTDICOM": dest_port})
    try:
        peer.upload(data.paths)
        stats = peer.rest("GET", "/statistics")
        assert stats["CountInstances"] == len(data.paths)
        yield peer
    finally:
        peer.stop()


@pytest.fixture(params=["dcmqrscp", "orthanc"])
def peer(request):
    return request.getfixturevalue(request.param)


# -- find ------------------------------------------------------------------------------------------


def test_find_study_level(peer, data):
    answers = find(
        peer.address,
        {"PatientID": None, "PatientName": None, "StudyInstanceUID": None, "StudyDate": "20261123"},
        level="STUDY",
    )
    got = {str(ds.StudyInstanceUID): ds for ds in answers}
    assert answers.status == 0 and answers.count == len(data.studies)
    assert set(got) == set(data.studies)
    for study, ds in got.items():
        assert ds.PatientID == data.patients[study]
        assert str(ds.PatientName) == data.names[data.patients[study]]  # UTF-8 decoded, whatever the peer sent
        assert ds.QueryRetrieveLevel == "STUDY"


def test_find_by_patient_and_levels(peer, data):
    (study,) = [s for s, p in data.patients.items() if p == "PID-QR-2"]
    studies = list(find(peer.address, {"PatientID": "PID-QR-2", "StudyInstanceUID": ""}, level="study"))
    assert [str(ds.StudyInstanceUID) for ds in studies] == [study]
    series = list(find(peer.address, {"StudyInstanceUID": study, "SeriesInstanceUID": None}, level="SERIES"))
    assert len(series) == 2
    images = []
    for s in series:
        images += list(
            find(
                peer.address,
                {"StudyInstanceUID": study, "SeriesInstanceUID": s.SeriesInstanceUID, "SOPInstanceUID": None},
                level="IMAGE",
            )
        )
    assert sorted(str(ds.SOPInstanceUID) for ds in images) == sorted(data.studies[study])


def test_find_with_a_dataset_identifier(peer, data):
    """The identifier as a Dataset (its level taken from it, the caller's object left unchanged)."""
    ident = fastdicom.Dataset()
    ident.QueryRetrieveLevel = "STUDY"
    ident.PatientID = "PID-QR-1"
    ident.StudyInstanceUID = ""
    (answer,) = find(peer.address, ident)
    assert data.patients[str(answer.StudyInstanceUID)] == "PID-QR-1"
    assert "SpecificCharacterSet" not in ident and len(ident) == 3


def test_find_patient_root(peer, data):
    answers = list(find(peer.address, {"PatientID": "PID-QR-*", "PatientName": None}, level="PATIENT", model="patient"))
    names = {str(ds.PatientID): str(ds.PatientName) for ds in answers}
    assert names == data.names


def test_find_wildcard_utf8_query(orthanc, data):
    """A query in UTF-8 (Specific Character Set ISO_IR 192 added for us) matches the UTF-8 name."""
    ident = qr.make_identifier({"PatientName": "Müller*", "PatientID": None}, "STUDY")
    assert ident.SpecificCharacterSet == "ISO_IR 192"
    answers = list(find(orthanc.address, ident))
    assert [str(ds.PatientID) for ds in answers] == ["PID-QR-1"]
    assert str(answers[0].PatientName) == "Müller^José"


def test_find_close_early_sends_cancel(peer, data):
    # IMAGE level in a series of several instances: the first answer leaves others pending.
    study = next(s for s, uids in data.studies.items() if len(uids) > 4)
    series = list(find(peer.address, {"StudyInstanceUID": study, "SeriesInstanceUID": None}, level="SERIES"))
    ident = {"StudyInstanceUID": study, "SeriesInstanceUID": series[0].SeriesInstanceUID, "SOPInstanceUID": None}
    with find(peer.address, ident, level="IMAGE") as answers:
        first = next(answers)
        assert first.SOPInstanceUID
    assert answers.cancelled
    # The final status is the cancel (0xFE00) or, when every answer was already on its way, success.
    assert answers.status in (0xFE00, 0x0000)
    assert not answers.channel.association.is_established  # released, not aborted mid-way
    # The peer keeps serving.
    assert len(list(find(peer.address, {"StudyInstanceUID": None}, level="STUDY"))) == len(data.studies)


def test_find_refused_level_is_a_typed_error(peer):
    with pytest.raises(ValueError, match="not in the study root model"):
        find(peer.address, {"PatientID": None}, level="PATIENT", model="study")
    with pytest.raises(ValueError, match="not one of"):
        find(peer.address, {"PatientID": None}, level="FRAME")
    with pytest.raises(ValueError, match="not an attribute"):
        find(peer.address, {"NoSuchKeyword": "1"})
    r = _cli("find", peer.address, "-k", "NoSuchKeyword=1")
    assert r.returncode == 2 and "not an attribute" in r.stderr and "Traceback" not in r.stderr


def test_find_failure_status_raises(dcmqrscp):
    """dcmqrscp refuses a SERIES-level query without the study's unique key (hierarchical): a failure status."""
    with pytest.raises(QueryRetrieveError) as info:
        list(find(dcmqrscp.address, {"SeriesInstanceUID": None, "Modality": "CT"}, level="SERIES"))
    assert info.value.status & 0xF000 in (0xA000, 0xC000)


# -- move ------------------------------------------------------------------------------------------


def test_move_to_our_scp_every_instance_accounted(peer, data, dest_port, tmp_path):
    study = next(iter(data.studies))
    with StorageSCP(str(tmp_path), port=dest_port, ae_title="FDDEST") as scp:
        result = move(peer.address, {"StudyInstanceUID": study}, "FDDEST", level="STUDY", receiver=scp)
    assert result.status == 0 and result.ok, result.as_json()
    assert result.completed == len(data.studies[study]) and result.failed == 0
    assert sorted(i.sop_instance for i in result.expected) == sorted(data.studies[study])
    assert result.received == set(data.studies[study]) and result.missing == []
    assert result.unattributed == set()  # every C-STORE named our C-MOVE as its originator
    _assert_same_objects(_archived(tmp_path), data.studies[study], data)


def test_move_reports_the_instance_that_did_not_arrive(dcmqrscp, data, dest_port, tmp_path):
    """One object is refused by our side (already stored, duplicates='reject'): listed, not received, named."""
    study = next(iter(data.studies))
    victim = data.studies[study][1]
    ds = fastdicom.read(data.by_uid[victim], stop_before_pixels=True)
    folder = tmp_path / study / str(ds.SeriesInstanceUID)
    folder.mkdir(parents=True)
    shutil.copy(data.by_uid[victim], folder / f"{victim}.dcm")
    with StorageSCP(str(tmp_path), port=dest_port, ae_title="FDDEST", duplicates="reject") as scp:
        result = move(dcmqrscp.address, {"StudyInstanceUID": study}, "FDDEST", level="STUDY", receiver=scp)
    assert result.missing == [victim]
    assert result.failed == 1 and result.status != 0 and not result.ok
    assert result.received == set(data.studies[study]) - {victim}


def test_move_unknown_destination(peer, data):
    study = next(iter(data.studies))
    result = move(peer.address, {"StudyInstanceUID": study}, "NOWHERE", level="STUDY")
    assert result.status is not None and result.status & 0xF000 in (0xA000, 0xC000)
    assert not result.ok


def test_move_series_level_orthanc_counts(orthanc, data, dest_port, tmp_path):
    """Orthanc's C-MOVE into our SCP at SERIES level (Patient Root): counts agree with its HTTP API."""
    study = next(s for s, uids in data.studies.items() if len(uids) == 5)
    series = list(find(orthanc.address, {"StudyInstanceUID": study, "SeriesInstanceUID": None}, level="SERIES"))
    pending = []
    with StorageSCP(str(tmp_path), port=dest_port, ae_title="FDDEST") as scp:
        for s in series:
            ident = {"PatientID": "PID-QR-2", "StudyInstanceUID": study, "SeriesInstanceUID": s.SeriesInstanceUID}
            r = move(
                orthanc.address,
                ident,
                "FDDEST",
                level="SERIES",
                model="patient",
                receiver=scp,
                on_pending=pending.append,
            )
            instances = orthanc.rest(
                "POST", "/tools/find", {"Level": "Instance", "Query": {"SeriesInstanceUID": str(s.SeriesInstanceUID)}}
            )
            assert r.ok and r.completed == len(instances) == len(r.received)
    _assert_same_objects(_archived(tmp_path), data.studies[study], data)


# -- get -------------------------------------------------------------------------------------------


def test_get_into_folder(peer, data, tmp_path):
    study = next(s for s, uids in data.studies.items() if len(uids) == 5)  # CT and Secondary Capture
    result = get(peer.address, {"StudyInstanceUID": study}, into=str(tmp_path / "got"), level="STUDY")
    assert result.ok, result.as_json()
    assert result.completed == 5 and result.received == set(data.studies[study])
    assert set(result.stored) == set(data.studies[study])
    _assert_same_objects(_archived(tmp_path / "got"), data.studies[study], data)
    assert os.listdir(tmp_path / "got" / ".incoming") == []  # nothing staged left behind
    if isinstance(peer, OrthancPeer):  # the contexts came from SOP Classes in Study, no per-instance class asked
        assert {c for i in result.expected for c in i.classes_in_study} == {CT, SECONDARY_CAPTURE}
        assert all(i.sop_class is None for i in result.expected)
    else:  # dcmqrscp answers neither: the common classes were proposed
        assert all(i.sop_class is None and not i.classes_in_study for i in result.expected)


def test_get_split_over_associations(orthanc, data, tmp_path):
    """One storage context per association: the two SOP classes (from the IMAGE-level listing) need two."""
    study = next(s for s, uids in data.studies.items() if len(uids) == 5)
    result = get(orthanc.address, {"StudyInstanceUID": study}, into=str(tmp_path), level="STUDY", max_contexts=1)
    classes = {i.sop_class for i in result.expected}
    assert classes == {CT, SECONDARY_CAPTURE}
    # The listing (SOP Classes in Study), again with each instance's class (needed to split), then one per class.
    assert result.associations == 2 + 2
    assert result.ok and result.received == set(data.studies[study]), result.as_json()
    _assert_same_objects(_archived(tmp_path), data.studies[study], data)


def test_get_without_the_class_fails_those_instances(orthanc, data, tmp_path):
    """Only CT offered: Orthanc cannot send the Secondary Captures, and says so. Orthanc 1.10.1 ends the whole
    C-GET at the first instance it has no context for (0xC000, failed 1, the rest never tried), answering with the
    identifier appended to the command PDV (see dimse.decode_command); what did arrive is intact CT."""
    study = next(s for s, uids in data.studies.items() if len(uids) == 5)
    result = get(orthanc.address, {"StudyInstanceUID": study}, into=str(tmp_path), level="STUDY", sop_classes=[CT])
    assert result.status is not None and result.status & 0xF000 in (0xA000, 0xB000, 0xC000)
    assert result.failed >= 1 and not result.ok
    assert len(result.received) < 5
    for uid, path in _archived(tmp_path).items():
        assert fastdicom.read(path, stop_before_pixels=True).SOPClassUID == CT
        assert _body(path) == _body(data.by_uid[uid])


def test_get_to_a_callback(peer, data):
    study = next(iter(data.studies))
    seen = {}

    def keep(ds, command):
        seen[str(ds.SOPInstanceUID)] = ds.PatientID
        return None

    result = get(peer.address, {"StudyInstanceUID": study}, into=keep, level="STUDY")
    assert result.ok and set(seen) == set(data.studies[study])
    assert set(seen.values()) == {data.patients[study]}


def test_get_callback_refusal_is_a_failed_suboperation(dcmqrscp, data):
    study = next(iter(data.studies))
    victim = data.studies[study][0]

    def refuse_one(ds, command):
        return 0xA700 if ds.SOPInstanceUID == victim else None

    result = get(dcmqrscp.address, {"StudyInstanceUID": study}, into=refuse_one, level="STUDY")
    assert result.failed == 1 and victim in result.refused and result.missing == [victim]
    assert not result.ok


# -- Orthanc's C-STORE into `fastdicom serve` --------------------------------------------------------


def test_orthanc_stores_into_fastdicom_serve(orthanc, data, dest_port, tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fastdicom",
            "serve",
            "--port",
            str(dest_port),
            "--host",
            "127.0.0.1",
            "--dir",
            str(tmp_path),
            "--ae",
            "FDDEST",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        from .conftest import wait_port

        wait_port(dest_port, 30)
        study = next(iter(data.studies))
        (sid,) = orthanc.rest("POST", "/tools/find", {"Level": "Study", "Query": {"StudyInstanceUID": study}})
        answer = orthanc.rest("POST", "/modalities/FDDEST/store", {"Resources": [sid], "Synchronous": True})
        assert answer["FailedInstancesCount"] == 0 and answer["InstancesCount"] == len(data.studies[study])
        _assert_same_objects(_archived(tmp_path), data.studies[study], data)
        # Orthanc's C-MOVE of the other study into the same `fastdicom serve` (no receiver of ours: counts only).
        other = next(s for s in data.studies if s != study)
        result = move(orthanc.address, {"StudyInstanceUID": other}, "FDDEST")
        assert result.ok and result.completed == len(data.studies[other]) and result.expected is None
        _assert_same_objects(_archived(tmp_path), data.studies[study] + data.studies[other], data)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# -- the command line ------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fastdicom", *args], capture_output=True, text=True, timeout=300)


def test_cli_find_json_and_table(peer, data):
    r = _cli("find", peer.address, "-k", "PatientID=PID-QR-2", "-L", "study", "--json")
    assert r.returncode == 0, r.stderr
    answers = [fastdicom.Dataset.from_json(obj) for obj in json.loads(r.stdout)]
    (study,) = [s for s, p in data.patients.items() if p == "PID-QR-2"]
    assert [str(ds.StudyInstanceUID) for ds in answers] == [study]
    r = _cli("find", peer.address, "-k", "PatientName=M*", "-k", "PatientID", "-L", "patient", "-P")
    assert r.returncode == 0, r.stderr
    assert "PID-QR-1" in r.stdout and "Müller^José" in r.stdout and "1 answers, final status 0x0000" in r.stdout


def test_cli_get_and_move(peer, data, dest_port, tmp_path):
    study = next(iter(data.studies))
    r = _cli("get", peer.address, "-k", f"StudyInstanceUID={study}", "-o", str(tmp_path / "got"), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["completed"] == len(data.studies[study])
    _assert_same_objects(_archived(tmp_path / "got"), data.studies[study], data)
    r = _cli(
        "move",
        peer.address,
        "-k",
        f"StudyInstanceUID={study}",
        "--dest",
        "FDDEST",
        "--store-port",
        str(dest_port),
        "-o",
        str(tmp_path / "moved"),
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "received" in r.stdout
    _assert_same_objects(_archived(tmp_path / "moved"), data.studies[study], data)
    r = _cli("move", peer.address, "-k", f"StudyInstanceUID={study}", "--dest", "NOWHERE")
    assert r.returncode == 1


# -- a peer that loses an object and says success (pynetdicom, in this process) --------------------


def test_move_names_what_a_lying_peer_lost(data, tmp_path):
    """A pynetdicom Q/R SCP lists every instance of the study, moves all but one, and answers success:
    the C-MOVE status says nothing is wrong, the listing and the arrivals say which one is missing."""
    pytest.importorskip("pynetdicom")
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import (
        CTImageStorage,
        StudyRootQueryRetrieveInformationModelFind,
        StudyRootQueryRetrieveInformationModelMove,
    )

    from fastdicom.interop import to_pydicom

    study = next(s for s, uids in data.studies.items() if len(uids) == 4)
    datasets = [to_pydicom(fastdicom.read(data.by_uid[u])) for u in data.studies[study]]
    lost = str(datasets[-1].SOPInstanceUID)
    dest_port = free_port()

    def on_find(event):
        q = event.identifier
        for ds in datasets:
            if q.QueryRetrieveLevel == "STUDY":
                yield 0xFF00, _pick(ds, ["StudyInstanceUID"], "STUDY")
                return
            if q.QueryRetrieveLevel == "SERIES":
                yield 0xFF00, _pick(ds, ["StudyInstanceUID", "SeriesInstanceUID"], "SERIES")
                return
            yield 0xFF00, _pick(ds, ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"], "IMAGE")

    def on_move(event):
        yield "127.0.0.1", dest_port
        yield len(datasets) - 1
        for ds in datasets[:-1]:
            yield 0xFF00, ds

    ae = AE(ae_title="LIAR")
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelMove)
    ae.add_requested_context(CTImageStorage)
    port = free_port()
    server = ae.start_server(
        ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_FIND, on_find), (evt.EVT_C_MOVE, on_move)]
    )
    try:
        with StorageSCP(str(tmp_path), port=dest_port, ae_title="FDDEST") as scp:
            result = move(
                f"LIAR@127.0.0.1:{port}", {"StudyInstanceUID": study}, "FDDEST", receiver=scp, arrival_timeout=5
            )
    finally:
        server.shutdown()
    assert result.status == 0 and result.failed == 0  # the peer's word
    assert len(result.expected) == 4 and result.missing == [lost] and not result.ok
    assert result.received == set(data.studies[study]) - {lost}
    # pynetdicom 3.0.4 names itself, not the C-MOVE's requestor, as Move Originator AE Title (PS3.7 Table 9.3-1 says
    # the requestor's): matched by our Message ID from that peer's own associations only.
    assert result.unattributed == result.received


def _pick(ds, keywords, level):
    from pydicom import Dataset as PydicomDataset

    out = PydicomDataset()
    out.QueryRetrieveLevel = level
    for k in keywords:
        setattr(out, k, getattr(ds, k))
    return out


def test_command_set_with_a_trailing_identifier():
    """Orthanc 1.10.1's C-GET failure answer carries the identifier inside the command PDV: the command ends
    where (0000,0000) says; what follows is dropped. A command set that lies about its length still fails."""
    from fastdicom.net import dimse

    cmd = dimse.encode_command({"CommandField": 0x8010, "MessageIDBeingRespondedTo": 1, "Status": 0xC000})
    trailer = struct.pack("<HHLL", 0x0008, 0x0000, 4, 12) + struct.pack("<HHL", 0x0008, 0x0058, 4) + b"1.2\0"
    got = dimse.decode_command(cmd + trailer)
    assert got["Status"] == 0xC000 and got["CommandField"] == 0x8010
    with pytest.raises(dimse.DIMSEError):
        dimse.decode_command(cmd[:-2])


# -- a hostile Q/R SCP (our own acceptor on a raw socket): typed errors, never a hang ----------------


def _hostile_scp(mode: str):
    """Accept one association, read the C-FIND/C-GET request, answer it badly (``mode``); return the port."""
    import socket
    import threading

    from fastdicom.net import Association
    from fastdicom.net.dimse import DimseChannel
    from fastdicom.net.negotiation import AcceptPolicy, negotiate

    class Anything:
        def transfer_syntaxes(self, abstract_syntax):
            return ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]

        def requestor_roles(self, proposed):
            return proposed

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        sock, _ = listener.accept()
        listener.close()
        assoc = Association.accept(sock, lambda rq: negotiate(rq, AcceptPolicy(ae_title="EVIL"), Anything()))
        channel = DimseChannel(assoc)
        try:
            rq = channel.receive_message(timeout=30)
            cid, mid = rq.context_id, rq.command["MessageID"]
            answer = {"CommandField": rq.command["CommandField"] | 0x8000, "MessageIDBeingRespondedTo": mid}
            if mode == "garbage":  # a pending answer whose identifier lies about its length
                channel.send_message(cid, {**answer, "Status": 0xFF00}, b"\x10\x00\x20\x00PN\xff\x7fAB")
            elif mode == "wrong-id":
                channel.send_message(cid, {**answer, "MessageIDBeingRespondedTo": mid + 7, "Status": 0})
            elif mode == "store-on-get-context":  # a C-STORE sent on the C-GET context itself
                cmd = {
                    "CommandField": 0x0001,
                    "MessageID": 9,
                    "AffectedSOPClassUID": CT,
                    "AffectedSOPInstanceUID": "1.2.3",
                    "Priority": 0,
                }
                channel.send_message(cid, cmd, b"\x08\x00\x18\x00UI\x06\x001.2.3\x00")
                channel.receive_message(timeout=30)  # our refusal
                channel.send_message(cid, {**answer, "Status": 0xA702, "NumberOfFailedSuboperations": 1})
            channel.receive_message(timeout=30)  # "silent" (and the rest): wait for whatever comes
        except Exception:  # noqa: BLE001 - the peer under test ends it
            pass
        finally:
            assoc.close()

    threading.Thread(target=serve, daemon=True).start()
    return port


@pytest.mark.parametrize("mode", ["garbage", "wrong-id", "silent"])
def test_find_against_a_hostile_peer(mode):
    import time

    from fastdicom.errors import FastDicomError

    port = _hostile_scp(mode)
    t0 = time.monotonic()
    with pytest.raises(FastDicomError):
        list(find(f"EVIL@127.0.0.1:{port}", {"PatientID": None}, timeout=2))
    assert time.monotonic() - t0 < 20


def test_get_refuses_a_store_on_the_wrong_context(tmp_path):
    port = _hostile_scp("store-on-get-context")
    result = get(f"EVIL@127.0.0.1:{port}", {"StudyInstanceUID": "1.2"}, into=str(tmp_path), sop_classes=[CT], timeout=5)
    assert result.refused == {"1.2.3": "SOP Class differs from the presentation context's"}
    assert result.status == 0xA702 and not result.ok and _archived(tmp_path) == {}


def test_find_japanese_iso_2022(tmp_path):
    """A patient stored in ISO 2022 IR 87: dcmqrscp answers its bytes with their Specific Character Set and we
    decode all three component groups; a query in that character set (escape sequences) matches it."""
    if dcmtk("dcmqrscp") is None:
        pytest.skip("DCMTK dcmqrscp not installed")
    from fastdicom import synth

    name = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    study, series, frame = synth.new_uid(), synth.new_uid(), synth.new_uid()
    ds = synth.ct_slice(0, study_uid=study, series_uid=series, frame_uid=frame, rows=16, columns=16)
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    ds.PatientName, ds.PatientID = name, "PID-JP"
    path = str(tmp_path / "jp.dcm")
    fastdicom.write(path, ds)
    assert open(path, "rb").read().count(b"\x1b$B") == 4  # stored as ISO 2022 escapes, not UTF-8
    peer = Dcmqrscp(str(tmp_path / "dcmqrscp"), {})
    try:
        peer.fill([path])
        (answer,) = find(peer.address, {"PatientID": "PID-JP", "PatientName": None}, level="STUDY")
        assert str(answer.PatientName) == name
        assert list(answer.SpecificCharacterSet) == ["", "ISO 2022 IR 87"]
        ident = qr.make_identifier({"PatientName": name, "PatientID": None}, "STUDY")
        ident.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
        assert [str(a.PatientID) for a in find(peer.address, ident)] == ["PID-JP"]
    finally:
        peer.stop()


def test_get_cancel(peer, data, tmp_path):
    """C-CANCEL after the first object: the peer stops (0xFE00) or had sent all already; every object that did
    arrive is stored intact, and the ones that did not are named missing."""
    import threading

    study = next(s for s, uids in data.studies.items() if len(uids) == 5)
    stop = threading.Event()
    result = get(
        peer.address,
        {"StudyInstanceUID": study},
        into=str(tmp_path),
        level="STUDY",
        cancel=stop,
        on_pending=lambda command: stop.set(),
    )
    assert stop.is_set()
    assert result.status in (0xFE00, 0x0000), result.as_json()
    if result.status == 0xFE00:
        assert not result.ok and result.missing and len(result.received) < 5
    got = _archived(tmp_path)
    assert set(got) == result.received and set(result.missing) == set(data.studies[study]) - result.received
    _assert_same_objects(got, result.received, data)


# -- the same queries to dcmqrscp and Orthanc, holding the same files --------------------------------

DIFFERENTIAL = [
    # (clause of PS3.4 C.2.2.2, level, keys, what the answers must be: {study: ...} by the data's patient ID)
    ("C.2.2.2.1 single value", "STUDY", {"PatientID": "PID-QR-2"}, {"PID-QR-2"}),
    ("C.2.2.2.3 universal", "STUDY", {"PatientID": ""}, {"PID-QR-1", "PID-QR-2"}),
    ("C.2.2.2.4 wild card *", "STUDY", {"PatientID": "PID-QR-*"}, {"PID-QR-1", "PID-QR-2"}),
    ("C.2.2.2.4 wild card ?", "STUDY", {"PatientID": "PID-QR-?"}, {"PID-QR-1", "PID-QR-2"}),
    ("C.2.2.2.4 wild card in PN", "STUDY", {"PatientName": "Doe*"}, {"PID-QR-2"}),
    ("C.2.2.2.5 range, both ends", "STUDY", {"StudyDate": "20261101-20261130"}, {"PID-QR-1", "PID-QR-2"}),
    ("C.2.2.2.5 range, open end", "STUDY", {"StudyDate": "20270101-"}, set()),
    ("C.2.2.2.5 range, open start", "STUDY", {"StudyDate": "-20261123"}, {"PID-QR-1", "PID-QR-2"}),
]


@pytest.mark.parametrize("clause,level,keys,expected", DIFFERENTIAL, ids=[d[0] for d in DIFFERENTIAL])
def test_same_answers_from_dcmqrscp_and_orthanc(dcmqrscp, orthanc, data, clause, level, keys, expected):
    got = {}
    for name, peer in (("dcmqrscp", dcmqrscp), ("orthanc", orthanc)):
        answers = find(
            peer.address, {**keys, "StudyInstanceUID": None, "PatientID": keys.get("PatientID")}, level=level
        )
        got[name] = {data.patients[str(ds.StudyInstanceUID)] for ds in answers}
    assert got["dcmqrscp"] == got["orthanc"] == expected, clause


def test_person_name_case_differs(dcmqrscp, orthanc, data):
    """``doe*``: Orthanc matches person names ignoring case (its default, CaseSensitivePN false, which PS3.4
    C.2.2.2.1 allows for PN), dcmqrscp matches them literally."""
    ident = {"PatientName": "doe*", "StudyInstanceUID": None}
    assert [str(ds.PatientID) for ds in find(orthanc.address, {**ident, "PatientID": None})] == ["PID-QR-2"]
    assert list(find(dcmqrscp.address, {**ident, "PatientID": None})) == []
