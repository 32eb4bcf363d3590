"""The Storage SCP against hostile, slow, broken and greedy peers; durability; duplicates."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import psutil
import pytest

import fastdicom
from fastdicom import synth
from fastdicom.net import Association, AssociationRejected, NetworkError, StorageSCP, dimse, echo, pdu, store
from fastdicom.net.dimse import DimseChannel, Status
from fastdicom.services.storage import StoreStatus
from fastdicom.services.verification import VERIFICATION as VERIFICATION_SOP_CLASS

from .conftest import free_port

CT = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"


def _assoc(port, calling="SCU", contexts=None, **options):
    """A DIMSE channel on an association to our SCP on loopback (CT and Verification unless ``contexts``)."""
    contexts = contexts or [
        pdu.PresentationContext(1, CT, [EXPLICIT]),
        pdu.PresentationContext(3, VERIFICATION_SOP_CLASS, [EXPLICIT]),
    ]
    options.setdefault("network_timeout", 10)
    return DimseChannel(
        Association.request("127.0.0.1", port, calling_ae=calling, called_ae="FASTDICOM", contexts=contexts, **options)
    )


def _files(archive):
    """Every file of the archive but its index (``.fastdicom``)."""
    out = []
    for root, dirs, files in os.walk(archive):
        dirs[:] = [d for d in dirs if d != ".fastdicom"]
        out += [os.path.join(root, f) for f in files]
    return out


def test_association_limit_answers_transient_rejection(tmp_path):
    with StorageSCP(str(tmp_path), port=0, max_associations=1) as scp:
        first = _assoc(scp.port)
        with pytest.raises(AssociationRejected) as info:
            _assoc(scp.port)
        assert info.value.transient and info.value.source == pdu.RejectSource.SERVICE_PROVIDER_PRESENTATION
        first.release()
        time.sleep(0.2)
        assert echo(f"FASTDICOM@127.0.0.1:{scp.port}") == 0  # the slot is free again


def test_calling_ae_allow_list(tmp_path):
    with StorageSCP(str(tmp_path), port=0, allowed_aes=["GOOD"]) as scp:
        with pytest.raises(AssociationRejected) as info:
            _assoc(scp.port, calling="EVIL")
        assert not info.value.transient and info.value.reason == 3
        _assoc(scp.port, calling="GOOD").release()


def test_unsupported_abstract_syntax_is_refused_per_context(tmp_path):
    with StorageSCP(str(tmp_path), port=0) as scp:
        a = _assoc(
            scp.port,
            contexts=[
                pdu.PresentationContext(1, "1.2.840.10008.5.1.4.1.2.1.1", [EXPLICIT]),
                pdu.PresentationContext(3, CT, ["1.2.3.4.5.6.7"]),
                pdu.PresentationContext(5, CT, ["1.2.3.4.5.6.7", EXPLICIT]),
            ],
        )
        results = {pc.id: pc.result for pc in a.association.negotiated.results}
        assert results == {
            1: pdu.ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED,
            3: pdu.ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED,
            5: 0,
        }
        assert a.association.negotiated.contexts[5].transfer_syntax == EXPLICIT
        a.release()


def _raw_connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s


def _read_pdu(s):
    hdr = b""
    while len(hdr) < 6:
        chunk = s.recv(6 - len(hdr))
        if not chunk:
            return None, None
        hdr += chunk
    kind, _, n = struct.unpack(">BBL", hdr)
    body = b""
    while len(body) < n:
        chunk = s.recv(n - len(body))
        if not chunk:
            break
        body += chunk
    return kind, body


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x09\x00\x00\x00\x00\x04abcd",  # unknown PDU type
        b"\x01\x00\x00\x00\x00\x10" + b"\x00" * 16,  # A-ASSOCIATE-RQ too short
        b"\x01\x00\xff\xff\xff\xff",  # a 4 GiB A-ASSOCIATE-RQ: refused before any allocation
        b"\x04\x00\x00\x00\x00\x08" + b"\x00" * 8,  # P-DATA before association
    ],
)
def test_malformed_first_pdu_gets_an_abort_and_the_server_lives(tmp_path, garbage):
    """In Sta2 (connection open, no A-ASSOCIATE-RQ yet) an invalid PDU (Evt19) or a P-DATA-TF (Evt10) is
    answered by AA-1 (PS3.8 Table 9-10): an A-ABORT PDU is sent, the connection is not just closed."""
    with StorageSCP(str(tmp_path), port=0) as scp:
        s = _raw_connect(scp.port)
        s.sendall(garbage)
        kind, body = _read_pdu(s)
        s.close()
        assert kind == pdu.PduType.A_ABORT, "the connection closed without an A-ABORT"
        assert len(body) == 4 and body[2] == pdu.AbortSource.SERVICE_PROVIDER
        assert echo(f"FASTDICOM@127.0.0.1:{scp.port}") == 0


def test_garbage_after_association_gets_provider_abort(tmp_path):
    with StorageSCP(str(tmp_path), port=0) as scp:
        a = _assoc(scp.port)
        a.association.sock.sendall(
            b"\x04\x00\x00\x00\x00\x06\x00\x00\x00\x02\x63\x03"
        )  # PDV on context 99 (never negotiated)
        kind, body = _read_pdu(a.association.sock)
        assert kind == pdu.PduType.A_ABORT and body[2] == pdu.AbortSource.SERVICE_PROVIDER
        a.association.close()


def test_artim_closes_a_silent_connection(tmp_path):
    with StorageSCP(str(tmp_path), port=0, artim_timeout=0.5) as scp:
        s = _raw_connect(scp.port)
        t0 = time.time()
        assert s.recv(10) == b""  # closed by the SCP
        assert time.time() - t0 < 5
        s.close()


def _store_command(uid, sop_class=CT):
    return {
        "CommandField": dimse.C_STORE_RQ,
        "MessageID": 1,
        "Priority": 0,
        "AffectedSOPClassUID": sop_class,
        "AffectedSOPInstanceUID": uid,
    }


def _ct_bytes(**changes):
    ds = synth.ct_slice(0, study_uid="1.2.3", series_uid="1.2.3.4", frame_uid="1.2.3.5", rows=16, columns=16)
    for k, v in changes.items():
        setattr(ds, k, v)
    from fastdicom.dataset.write import encode_dataset

    return ds, b"".join(bytes(c) for c in encode_dataset(ds, True, True))


def test_interrupted_transfer_leaves_nothing(tmp_path):
    ds, body = _ct_bytes()
    with StorageSCP(str(tmp_path), port=0) as scp:
        a = _assoc(scp.port)
        a.association.send_pdata(
            1, dimse.encode_command({**_store_command(ds.SOPInstanceUID), "CommandDataSetType": 0}), True
        )
        half = body[: len(body) // 2 & ~1]
        a.association.sock.sendall(pdu.pdata_header(1, 0, len(half)) + half)  # not the last fragment
        time.sleep(0.3)
        a.association.sock.close()
        time.sleep(0.5)
    assert _files(str(tmp_path)) == []


@pytest.mark.parametrize(
    "field,value", [("SOPInstanceUID", "../../../etc/evil"), ("StudyInstanceUID", "../x"), ("SeriesInstanceUID", "")]
)
def test_hostile_uids_never_become_paths(tmp_path, field, value):
    ds, body = _ct_bytes(**{field: value})
    with StorageSCP(str(tmp_path / "archive"), port=0) as scp:
        a = _assoc(scp.port)
        a.send_message(1, _store_command(ds.SOPInstanceUID if field != "SOPInstanceUID" else value), body)
        rsp = a.receive_message()
        a.release()
    assert dimse.status_category(rsp.command["Status"]) == "failure"
    assert [p for p in _files(str(tmp_path)) if p.endswith(".dcm")] == []
    assert not os.path.exists(tmp_path / "etc")


def test_command_and_data_set_must_agree(tmp_path):
    ds, body = _ct_bytes()
    with StorageSCP(str(tmp_path), port=0) as scp:
        a = _assoc(scp.port)
        a.send_message(1, _store_command("1.2.3.999"), body)
        assert a.receive_message().command["Status"] == StoreStatus.DATA_SET_DOES_NOT_MATCH_SOP_CLASS
        a.release()
    assert [p for p in _files(str(tmp_path)) if p.endswith(".dcm")] == []


@pytest.mark.parametrize(
    "policy,second_status,kept", [("overwrite", 0, "new"), ("keep", 0, "old"), ("reject", 0x0111, "old")]
)
def test_duplicate_policies(tmp_path, policy, second_status, kept):
    ds, body = _ct_bytes(PatientID="OLD")
    _, body2 = _ct_bytes(PatientID="NEW", SOPInstanceUID=ds.SOPInstanceUID)
    with StorageSCP(str(tmp_path), port=0, duplicates=policy) as scp:
        a = _assoc(scp.port)
        a.send_message(1, _store_command(ds.SOPInstanceUID), body)
        assert a.receive_message().command["Status"] == 0
        a.send_message(1, _store_command(ds.SOPInstanceUID), body2)
        assert a.receive_message().command["Status"] == second_status
        a.release()
    [path] = [p for p in _files(str(tmp_path)) if p.endswith(".dcm")]
    assert fastdicom.read(path).PatientID == kept.upper()


def test_hooks_run_off_the_data_path(tmp_path, series):
    seen = []
    done = threading.Event()

    def on_store(path, command, info):
        time.sleep(0.2)  # a slow hook must not slow the C-STORE responses
        seen.append((path, info.calling_ae))
        if len(seen) == len(series):
            done.set()

    with StorageSCP(
        str(tmp_path), port=0, on_store=on_store, on_association=lambda info: seen.append(("assoc", info.calling_ae))
    ) as scp:
        t0 = time.time()
        report = store(series, f"X@127.0.0.1:{scp.port}", associations=1, calling_ae="HOOKED", progress=False)
        elapsed = time.time() - t0
        assert done.wait(10)
    assert not report.failed and elapsed < 0.2 * len(series)
    assert ("assoc", "HOOKED") in seen and all(os.path.exists(p) for p, _ in seen if p != "assoc")


def test_sink_mode_discards(series):
    with StorageSCP(port=0, sink=True) as scp:
        report = store(series, f"X@127.0.0.1:{scp.port}", progress=False)
    assert not report.failed and scp.stats["stored"] == len(series) and scp.stats["bytes"] == report.bytes


def test_memory_stays_flat_for_a_large_object(tmp_path):
    """A 256 MB object streams through an SCP in another process whose resident memory barely moves."""
    frames, rows = 64, 1024
    px = np.zeros((frames, rows, rows), dtype="<i2")
    ds = synth.enhanced_ct(frames, rows=rows, columns=rows, pixels=px)
    src = tmp_path / "big.dcm"
    fastdicom.write(src, ds)
    archive = tmp_path / "archive"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastdicom", "serve", "--port", str(port), "--dir", str(archive), "--host", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        proc.stdout.readline()  # "listening"
        p = psutil.Process(proc.pid)
        base = p.memory_info().rss
        peak = [base]
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                try:
                    peak[0] = max(peak[0], p.memory_info().rss)
                except psutil.Error:
                    return
                time.sleep(0.01)

        t = threading.Thread(target=watch)
        t.start()
        report = store([src], f"FASTDICOM@127.0.0.1:{port}", progress=False)
        stop.set()
        t.join()
    finally:
        proc.terminate()
        proc.wait(10)
    assert not report.failed
    growth = (peak[0] - base) / 2**20
    print(f"SCP RSS growth {growth:.1f} MB")
    assert growth < 48, f"SCP resident memory grew {growth:.0f} MB for a {os.path.getsize(src) / 2**20:.0f} MB object"
    [stored] = [f for f in _files(str(archive)) if f.endswith(".dcm")]
    assert os.path.getsize(stored) > frames * rows * rows * 2


def test_scp_killed_mid_transfer_then_send_repeated(tmp_path):
    """SIGKILL the SCP while a series streams in; restart it; send again: each object stored once, intact."""
    import signal

    from fastdicom import _backends

    paths = synth.write_ct_series(str(tmp_path / "src"), 40, rows=512, columns=512)
    archive = tmp_path / "archive"
    port = free_port()

    def serve():
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fastdicom",
                "serve",
                "--port",
                str(port),
                "--dir",
                str(archive),
                "--host",
                "127.0.0.1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        proc.stdout.readline()
        return proc

    proc = serve()
    result = {}
    t = threading.Thread(
        target=lambda: result.setdefault(
            "r", store(paths, f"X@127.0.0.1:{port}", associations=2, retries=0, progress=False)
        )
    )
    t.start()
    deadline = time.time() + 30
    while time.time() < deadline and len([f for f in _files(str(archive)) if f.endswith(".dcm")]) < 5:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    t.join(60)
    first = result["r"]
    assert first.failed  # the kill cut the transfer short, and the report says so per instance
    assert all(r.error or r.status for r in first.failed)

    proc = serve()  # the restart sweeps what the killed server left in .incoming
    try:
        again = store(paths, f"X@127.0.0.1:{port}", associations=2, progress=False)
    finally:
        proc.terminate()
        proc.wait(10)
    assert not again.failed
    stored = [f for f in _files(str(archive)) if f.endswith(".dcm")]
    assert len(stored) == len(paths) == len({os.path.basename(f) for f in stored})
    assert not [f for f in _files(str(archive)) if f.endswith(".part")]

    def body(path):
        data = open(path, "rb").read()
        return data[_backends.resolve("parse")[1].open_dataset(memoryview(data), True).body_start :]

    by_uid = {fastdicom.read(p, stop_before_pixels=True).SOPInstanceUID: p for p in paths}
    for f in stored:
        assert body(f) == body(by_uid[os.path.basename(f)[:-4]])


def test_user_identity_requested_and_answered(tmp_path):
    seen = []

    def authenticate(identity, calling_ae):
        seen.append((identity.type, identity.primary, identity.secondary, calling_ae))
        return identity.primary == b"alice" and identity.secondary == b"secret"

    with StorageSCP(str(tmp_path), port=0, authenticate=authenticate, require_identity=True) as scp:
        ok = pdu.UserIdentity(2, b"alice", b"secret", positive_response_requested=True)
        a = _assoc(
            scp.port, contexts=[pdu.PresentationContext(1, VERIFICATION_SOP_CLASS, [EXPLICIT])], user_identity=ok
        )
        assert a.association.negotiated.user_identity_response == b""
        a.release()
        with pytest.raises(AssociationRejected):
            echo(f"FASTDICOM@127.0.0.1:{scp.port}", user_identity=pdu.UserIdentity(2, b"alice", b"wrong"))
        with pytest.raises(AssociationRejected):
            echo(f"FASTDICOM@127.0.0.1:{scp.port}")  # identity required
    assert seen[0] == (2, b"alice", b"secret", "SCU")


def test_ipv6_loopback(tmp_path, series):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    with StorageSCP(str(tmp_path), port=0) as scp:
        try:
            socket.create_connection(("::1", scp.port), timeout=2).close()
        except OSError:
            pytest.skip("IPv6 loopback unavailable")
        assert echo(f"FASTDICOM@[::1]:{scp.port}") == 0
        report = store(series[:3], f"FASTDICOM@[::1]:{scp.port}", progress=False)
        assert echo(f"FASTDICOM@127.0.0.1:{scp.port}") == 0  # the same listener serves IPv4
    assert not report.failed


def test_release_collision_as_requestor():
    """Both sides send A-RELEASE-RQ at once: the requestor answers first (Sta9 -> Sta11), then gets its RP."""
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    log = []

    def fake_acceptor():
        conn, _ = srv.accept()
        kind, body = _read_pdu(conn)
        rq = pdu.decode(kind, memoryview(body))
        ac = pdu.AssociateAC(
            rq.called_ae,
            rq.calling_ae,
            [pdu.PresentationContext(pc.id, None, pc.transfer_syntaxes[:1], 0) for pc in rq.contexts],
            pdu.UserInfo(implementation_class_uid="1.2.3"),
        )
        conn.sendall(pdu.encode(ac))
        conn.sendall(pdu.encode(pdu.ReleaseRQ()))  # collides with the requestor's
        log.append(_read_pdu(conn)[0])  # their RQ
        log.append(_read_pdu(conn)[0])  # their RP (the requestor answers first)
        conn.sendall(pdu.encode(pdu.ReleaseRP()))
        log.append(_read_pdu(conn)[0])  # then they close
        conn.close()

    t = threading.Thread(target=fake_acceptor)
    t.start()
    a = Association.request(
        "127.0.0.1",
        port,
        calling_ae="SCU",
        called_ae="X",
        contexts=[pdu.PresentationContext(1, VERIFICATION_SOP_CLASS, [EXPLICIT])],
        network_timeout=5,
    )
    time.sleep(0.2)  # let the acceptor's RQ arrive first
    a.release()
    t.join(10)
    srv.close()
    assert log == [pdu.PduType.A_RELEASE_RQ, pdu.PduType.A_RELEASE_RP, None]
    assert a.state == "Sta1"


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    import shutil

    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    d = tmp_path_factory.mktemp("pki")
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        cwd=d,
    )
    for name in ("server", "client"):
        _openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN={'localhost' if name == 'server' else 'scu'}",
            cwd=d,
        )
        (d / f"{name}.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "2",
            "-extfile",
            f"{name}.ext",
            cwd=d,
        )
    return d


def test_tls_with_mutual_authentication(tmp_path, series, pki):
    import ssl

    from fastdicom.net.tls import client_context, server_context

    server = server_context(
        str(pki / "server.pem"), str(pki / "server.key"), ca=str(pki / "ca.pem"), require_client_cert=True
    )
    with StorageSCP(str(tmp_path), port=0, tls=server, host="127.0.0.1") as scp:
        address = f"FASTDICOM@127.0.0.1:{scp.port}"
        client = client_context(ca=str(pki / "ca.pem"), cert=str(pki / "client.pem"), key=str(pki / "client.key"))
        assert echo(address, tls=client) == 0
        report = store(series[:4], address, tls=client, progress=False)
        assert not report.failed
        anonymous = client_context(ca=str(pki / "ca.pem"))
        with pytest.raises(NetworkError):  # no client certificate: the handshake or the association fails
            echo(address, tls=anonymous, timeout=5)
        old = client_context(ca=str(pki / "ca.pem"), cert=str(pki / "client.pem"), key=str(pki / "client.key"))
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        assert echo(address, tls=old) == 0  # TLS 1.2 is the floor, and allowed
    assert len([f for f in _files(str(tmp_path)) if f.endswith(".dcm")]) == 4


def test_oversized_pdu_mid_association_aborts_it_and_others_carry_on(tmp_path):
    ds, body = _ct_bytes()
    with StorageSCP(str(tmp_path), port=0, max_pdu=64 * 1024) as scp:
        good = _assoc(scp.port)
        bad = _assoc(scp.port)
        bad.association.sock.sendall(
            struct.pack(">BBL", pdu.PduType.P_DATA_TF, 0, 10 << 20) + b"\0" * 1024
        )  # claims 10 MiB > 64 KiB
        kind, payload = _read_pdu(bad.association.sock)
        assert kind == pdu.PduType.A_ABORT and payload[2] == pdu.AbortSource.SERVICE_PROVIDER
        bad.association.close()
        good.send_message(1, _store_command(ds.SOPInstanceUID), body)  # the other association is untouched
        assert good.receive_message().command["Status"] == 0
        good.release()
    stored = [f for f in _files(str(tmp_path)) if f.endswith(".dcm")]
    assert len(stored) == 1 and not [f for f in _files(str(tmp_path)) if f.endswith(".part")]


def test_non_ascii_from_the_peer_never_kills_the_server(tmp_path):
    with StorageSCP(str(tmp_path), port=0) as scp:
        rq = pdu.AssociateRQ(
            "FASTDICOM",
            "X",
            [pdu.PresentationContext(1, VERIFICATION_SOP_CLASS, [EXPLICIT])],
            pdu.UserInfo(implementation_class_uid="1.2.3"),
        )
        raw = bytearray(pdu.encode(rq))
        raw[6 + 20 : 6 + 22] = b"\xff\xfe"  # calling AE title with bytes that are not ASCII
        s = _raw_connect(scp.port)
        s.sendall(raw)
        kind, _ = _read_pdu(s)
        assert kind == pdu.PduType.A_ASSOCIATE_AC
        cmd = dimse.encode_command(
            {
                "CommandField": dimse.C_ECHO_RQ,
                "MessageID": 1,
                "AffectedSOPClassUID": "1.2.\xff",
                "CommandDataSetType": 0x0101,
            }
        )
        s.sendall(pdu.pdata_header(1, 3, len(cmd)) + cmd)
        kind, _ = _read_pdu(s)
        assert kind == pdu.PduType.P_DATA_TF  # answered, not a dead thread
        s.close()
        assert echo(f"FASTDICOM@127.0.0.1:{scp.port}") == 0


def test_disk_error_is_answered_out_of_resources(tmp_path):
    import shutil

    ds, body = _ct_bytes()
    with StorageSCP(str(tmp_path), port=0) as scp:
        a = _assoc(scp.port)
        shutil.rmtree(tmp_path / ".incoming")
        (tmp_path / ".incoming").write_bytes(b"")  # a file where the folder was: it cannot be made again
        a.send_message(1, _store_command(ds.SOPInstanceUID), body)
        assert a.receive_message().command["Status"] == StoreStatus.OUT_OF_RESOURCES
        (tmp_path / ".incoming").unlink()  # (made again by the next store)
        a.send_message(1, _store_command(ds.SOPInstanceUID), body)  # the association carries on
        assert a.receive_message().command["Status"] == 0
        a.release()


def test_role_selection_answer_keeps_the_requestor_scu_role(tmp_path):
    with StorageSCP(str(tmp_path), port=0) as scp:
        a = _assoc(
            scp.port, contexts=[pdu.PresentationContext(1, CT, [EXPLICIT])], roles=[pdu.RoleSelection(CT, True, True)]
        )
        assert [(r.sop_class_uid, r.scu, r.scp) for r in a.association.negotiated.roles] == [(CT, True, False)]
        a.release()


def test_more_than_128_contexts_each_object_once(tmp_path):
    from fastdicom.services.storage import STORAGE_SOP_CLASSES

    classes = sorted(STORAGE_SOP_CLASSES)[:130]
    paths = []
    for i, sop_class in enumerate(classes):
        ds, _ = _ct_bytes(SOPClassUID=sop_class, SOPInstanceUID=f"1.2.826.0.1.{i + 1}")
        p = tmp_path / "src" / f"{i}.dcm"
        p.parent.mkdir(exist_ok=True)
        fastdicom.write(p, ds)
        paths.append(str(p))
    with StorageSCP(str(tmp_path / "archive"), port=0) as scp:
        report = store(paths, f"X@127.0.0.1:{scp.port}", associations=2, progress=False)
    assert len(report.results) == 130 and not report.failed
    assert scp.stats["stored"] == 130 and report.associations >= 2


def test_data_on_a_command_without_one_and_pdvs_sharing_a_pdu(tmp_path):
    with StorageSCP(str(tmp_path), port=0) as scp:
        a = _assoc(scp.port)
        echo_cmd = dimse.encode_command(
            {
                "CommandField": dimse.C_ECHO_RQ,
                "MessageID": 1,
                "AffectedSOPClassUID": VERIFICATION_SOP_CLASS,
                "CommandDataSetType": 0,
            }
        )
        data = b"\0" * (512 << 10)
        a.association.sock.sendall(pdu.pdata_header(3, 3, len(echo_cmd)) + echo_cmd)
        for _ in range(7):
            a.association.sock.sendall(pdu.pdata_header(3, 0, len(data)) + data)  # 4 MiB drained, not collected
        a.association.sock.sendall(pdu.pdata_header(3, 2, len(data)) + data)
        assert a.receive_message().command["Status"] == 0
        # The end of one message and the whole next one in a single P-DATA-TF PDU.
        cmd2 = dimse.encode_command(
            {
                "CommandField": dimse.C_ECHO_RQ,
                "MessageID": 2,
                "AffectedSOPClassUID": VERIFICATION_SOP_CLASS,
                "CommandDataSetType": 0x0101,
            }
        )
        cmd3 = dimse.encode_command(
            {
                "CommandField": dimse.C_ECHO_RQ,
                "MessageID": 3,
                "AffectedSOPClassUID": VERIFICATION_SOP_CLASS,
                "CommandDataSetType": 0x0101,
            }
        )
        pdvs = pdu.PDataTF([(3, 3, memoryview(cmd2)), (3, 3, memoryview(cmd3))])
        a.association.sock.sendall(pdu.encode(pdvs))
        ids = {a.receive_message().command["MessageIDBeingRespondedTo"] for _ in range(2)}
        assert ids == {2, 3}
        a.release()


def test_store_on_the_wrong_context_and_uids_with_newlines(tmp_path):
    from fastdicom.archive import safe_uid

    assert not safe_uid("1.2.3\n") and safe_uid("1.2.3")
    ds, body = _ct_bytes()
    with StorageSCP(str(tmp_path), port=0) as scp:
        a = _assoc(scp.port)
        a.send_message(3, _store_command(ds.SOPInstanceUID), body)  # context 3 is Verification
        assert a.receive_message().command["Status"] == Status.SOP_CLASS_NOT_SUPPORTED
        a.release()
    assert [f for f in _files(str(tmp_path)) if f.endswith(".dcm")] == []


def test_stop_shuts_down_open_tls_associations(tmp_path, pki):
    from fastdicom.net.tls import client_context, server_context

    server = server_context(str(pki / "server.pem"), str(pki / "server.key"))
    scp = StorageSCP(str(tmp_path), port=0, tls=server, host="127.0.0.1", network_timeout=60).start()
    a = _assoc(
        scp.port,
        contexts=[pdu.PresentationContext(1, VERIFICATION_SOP_CLASS, [EXPLICIT])],
        tls=client_context(ca=str(pki / "ca.pem")),
    )
    t0 = time.time()
    scp.stop(timeout=10)
    assert time.time() - t0 < 5  # the open association did not hold the server for its 60 s timeout
    a.association.close()


def _pipelined(a, bodies, first_id=1):
    """Send several C-STOREs without waiting for answers (the window allows it)."""
    for k, (uid, body) in enumerate(bodies):
        a.send_message(1, {**_store_command(uid), "MessageID": first_id + k}, body)


def test_async_window_group_commits_and_answers_in_order_before_release(tmp_path):
    bodies = []
    for k in range(6):
        ds, body = _ct_bytes(SOPInstanceUID=f"1.2.3.4.{k + 1}", PatientID=f"P{k}")
        bodies.append((ds.SOPInstanceUID, body))
    bodies.append(("1.2.3.999", bodies[0][1]))  # a mismatch in the middle of a batch: failed alone
    with StorageSCP(str(tmp_path), port=0, duplicates="reject") as scp:
        a = _assoc(scp.port, async_ops=(8, 1))
        assert a.association.negotiated.async_ops[0] == 8
        _pipelined(a, bodies)
        a.send_message(
            3, {"CommandField": dimse.C_ECHO_RQ, "MessageID": 50, "AffectedSOPClassUID": VERIFICATION_SOP_CLASS}
        )
        answers = [a.receive_message().command for _ in range(len(bodies) + 1)]
        _pipelined(a, [bodies[2], ("1.2.3.4.77", _ct_bytes(SOPInstanceUID="1.2.3.4.77")[1])], first_id=60)
        a.release()  # the SCP answers both (late P-DATA to us) and commits before its A-RELEASE-RP
        assert os.path.exists(tmp_path / "1.2.3" / "1.2.3.4" / "1.2.3.4.77.dcm")
    assert [c["MessageIDBeingRespondedTo"] for c in answers] == [1, 2, 3, 4, 5, 6, 7, 50]
    assert [c["Status"] for c in answers[:6]] == [0] * 6
    assert answers[6]["Status"] == StoreStatus.DATA_SET_DOES_NOT_MATCH_SOP_CLASS and answers[7]["Status"] == 0
    stored = sorted(os.path.basename(p) for p in _files(str(tmp_path)) if p.endswith(".dcm"))
    assert stored == sorted([f"1.2.3.4.{k + 1}.dcm" for k in range(6)] + ["1.2.3.4.77.dcm"])
    assert not os.listdir(tmp_path / ".incoming")


def test_async_window_abort_leaves_no_partial_file(tmp_path):
    ds, body = _ct_bytes()
    with StorageSCP(str(tmp_path), port=0) as scp:
        a = _assoc(scp.port, async_ops=(4, 1))
        _pipelined(a, [(ds.SOPInstanceUID, body)])
        a.association.send_pdata(
            1, dimse.encode_command({**_store_command("1.2.3.4.8"), "CommandDataSetType": 0}), True
        )
        half = body[: len(body) // 2 & ~1]
        a.association.sock.sendall(pdu.pdata_header(1, 0, len(half)) + half)  # the second object stops halfway
        time.sleep(0.3)
        a.association.sock.close()
        time.sleep(0.5)
    stored = [p for p in _files(str(tmp_path)) if p.endswith(".dcm")]
    # the whole first object may be stored (its answer was lost: the sender resends); never the half one
    assert [os.path.basename(p) for p in stored] in ([], [ds.SOPInstanceUID + ".dcm"])
    assert not os.listdir(tmp_path / ".incoming")


def test_async_window_disk_error_is_answered_per_object(tmp_path):
    import shutil

    ds, body = _ct_bytes()
    with StorageSCP(str(tmp_path), port=0) as scp:
        a = _assoc(scp.port, async_ops=(4, 1))
        shutil.rmtree(tmp_path / ".incoming")
        (tmp_path / ".incoming").write_bytes(b"")  # a file where the folder was: it cannot be made again
        _pipelined(a, [(ds.SOPInstanceUID, body), ("1.2.3.4.9", _ct_bytes(SOPInstanceUID="1.2.3.4.9")[1])])
        assert [a.receive_message().command["Status"] for _ in range(2)] == [StoreStatus.OUT_OF_RESOURCES] * 2
        (tmp_path / ".incoming").unlink()
        _pipelined(a, [(ds.SOPInstanceUID, body)], first_id=3)
        assert a.receive_message().command["Status"] == 0
        a.release()


def test_async_window_a_surprise_in_the_committer_never_hangs_or_leaks(tmp_path, monkeypatch):
    from fastdicom.archive import FolderArchive

    calls = []
    real = FolderArchive._check

    def flaky(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise ValueError("surprise")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(FolderArchive, "_check", flaky)
    bodies = [(f"1.2.3.4.{k + 1}", _ct_bytes(SOPInstanceUID=f"1.2.3.4.{k + 1}")[1]) for k in range(3)]
    with StorageSCP(str(tmp_path), port=0) as scp:
        a = _assoc(scp.port, async_ops=(4, 1))
        t0 = time.monotonic()
        _pipelined(a, bodies)
        with pytest.raises(NetworkError):  # the association ends (no answer for the surprise), it never hangs
            for _ in bodies:
                a.receive_message(timeout=10)
            a.release()
        assert time.monotonic() - t0 < 10
        time.sleep(0.3)
    assert not os.listdir(tmp_path / ".incoming")
