"""PDU and command set codecs: round trips, and malformed input refused with the right A-ABORT reason."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastdicom.net import dimse, pdu


def _rq() -> pdu.AssociateRQ:
    ui = pdu.UserInfo(
        max_length=32768,
        implementation_class_uid="1.2.3.4",
        implementation_version_name="TEST_1",
        async_ops=(5, 1),
        roles=[pdu.RoleSelection("1.2.840.10008.5.1.4.1.1.2", True, True)],
        sop_class_extended={"1.2.840.10008.5.1.4.1.2.1.1": b"\x01"},
        common_extended=[pdu.CommonExtended("1.2.3", "1.2.840.10008.4.2", ["1.2.4", "1.2.5"])],
        user_identity=pdu.UserIdentity(2, b"alice", b"secret", True),
        unknown=[(0x7F, b"future")],
    )
    contexts = [
        pdu.PresentationContext(1, "1.2.840.10008.1.1", ["1.2.840.10008.1.2"]),
        pdu.PresentationContext(3, "1.2.840.10008.5.1.4.1.1.2", ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]),
    ]
    return pdu.AssociateRQ("STORESCP", "ME", contexts, ui)


def _decode(raw: bytes):
    kind, _, n = struct.unpack(">BBL", raw[:6])
    assert n == len(raw) - 6
    return pdu.decode(kind, memoryview(raw)[6:])


def test_associate_rq_round_trip():
    rq = _rq()
    back = _decode(pdu.encode(rq))
    assert back == rq


def test_associate_ac_round_trip():
    ui = pdu.UserInfo(max_length=0, implementation_class_uid="1.2.3", user_identity_response=b"token")
    ac = pdu.AssociateAC(
        "A",
        "B",
        [
            pdu.PresentationContext(1, None, ["1.2.840.10008.1.2"], 0),
            pdu.PresentationContext(3, None, ["1.2.840.10008.1.2"], 3),
        ],
        ui,
    )
    back = _decode(pdu.encode(ac))
    assert [(c.id, c.result, c.transfer_syntaxes) for c in back.contexts] == [
        (1, 0, ["1.2.840.10008.1.2"]),
        (3, 3, ["1.2.840.10008.1.2"]),
    ]
    assert back.user_info.max_length == 0 and back.user_info.user_identity_response == b"token"


def test_small_pdus():
    assert _decode(pdu.encode(pdu.AssociateRJ(2, 3, 2))) == pdu.AssociateRJ(2, 3, 2)
    assert _decode(pdu.encode(pdu.Abort(2, 6))) == pdu.Abort(2, 6)
    assert isinstance(_decode(pdu.encode(pdu.ReleaseRQ())), pdu.ReleaseRQ)
    pd = _decode(pdu.encode(pdu.PDataTF([(1, 3, memoryview(b"ab")), (1, 0, memoryview(b"cdef"))])))
    assert [(c, f, bytes(v)) for c, f, v in pd.pdvs] == [(1, 3, b"ab"), (1, 0, b"cdef")]
    assert pdu.pdata_header(5, 2, 10) == pdu.encode(pdu.PDataTF([(5, 2, memoryview(bytes(10)))]))[:12]


@pytest.mark.parametrize(
    "kind,body,reason",
    [
        (0x08, b"", pdu.REASON_UNRECOGNIZED_PDU),
        (pdu.A_ABORT, b"\0\0", pdu.REASON_INVALID_PARAMETER),
        (pdu.P_DATA_TF, b"", pdu.REASON_INVALID_PARAMETER),
        (pdu.P_DATA_TF, struct.pack(">LBB", 100, 1, 3) + b"xx", pdu.REASON_INVALID_PARAMETER),  # PDV past the PDU
        (pdu.P_DATA_TF, struct.pack(">LBB", 4, 1, 0xF3) + b"xx", pdu.REASON_INVALID_PARAMETER),  # reserved bits
        (pdu.A_ASSOCIATE_RQ, b"\0" * 10, pdu.REASON_INVALID_PARAMETER),
    ],
)
def test_malformed_pdus(kind, body, reason):
    with pytest.raises(pdu.PDUError) as info:
        pdu.decode(kind, memoryview(body))
    assert info.value.reason == reason


def test_associate_items_that_lie_about_their_length():
    raw = bytearray(pdu.encode(_rq()))
    raw[6 + 68 + 2 : 6 + 68 + 4] = struct.pack(">H", 0xFFFF)  # application context item claims 64 KiB
    with pytest.raises(pdu.PDUError):
        pdu.decode(pdu.A_ASSOCIATE_RQ, memoryview(raw)[6:])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.sampled_from([1, 2, 3, 4, 5, 6, 7]))
def test_garbage_never_escapes_as_anything_but_pdu_error(body, kind):
    try:
        pdu.decode(kind, memoryview(body))
    except pdu.PDUError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_command_sets(raw):
    try:
        dimse.decode_command(raw)
    except dimse.DIMSEError:
        pass


def test_command_round_trip():
    cmd = {
        "CommandField": dimse.C_STORE_RQ,
        "MessageID": 7,
        "Priority": 0,
        "AffectedSOPClassUID": "1.2.840.10008.5.1.4.1.1.2",
        "AffectedSOPInstanceUID": "1.2.3.45",
        "MoveOriginatorApplicationEntityTitle": "MOVER",
        "OffendingElement": [0x00100010, 0x00100020],
    }
    raw = dimse.encode_command(cmd)
    back = dimse.decode_command(raw)
    assert back.pop("CommandGroupLength") == len(raw) - 12
    assert back == cmd
    # Ascending tags, group length first, even lengths (pydicom reads it the same way).
    from io import BytesIO

    from pydicom.filereader import read_dataset

    ds = read_dataset(BytesIO(raw), is_implicit_VR=True, is_little_endian=True)
    assert ds.MessageID == 7 and ds.AffectedSOPInstanceUID == "1.2.3.45" and ds[0x00000000].value == len(raw) - 12


def test_state_table_covers_the_standard():
    from fastdicom.net.association import TRANSITIONS

    states = {s for s, _ in TRANSITIONS}
    assert states == {f"Sta{i}" for i in range(1, 14)}
    assert TRANSITIONS[("Sta6", 12)] == ("AR-2", "Sta8")  # release request received while established
    assert TRANSITIONS[("Sta13", 6)] == ("AA-7", "Sta13")
    assert TRANSITIONS[("Sta7", 13)] == ("AR-3", "Sta1")


def _senders():
    from fastdicom import _backends

    out = []
    for name, module, attr in _backends.REGISTRY["pdata_send"]:
        if _backends.forced() == "python" and not _backends.is_python(name):
            continue
        mod, _ = _backends._try(name, module, attr)
        if mod is not None:
            out.append((name, mod.pdata_send))
    return out


@pytest.mark.parametrize("fragment", [2, 6, 1000, 16378, 1 << 20])
@pytest.mark.parametrize("command", [True, False])
def test_pdata_send_twins_put_the_same_bytes_on_the_wire(fragment, command):
    import socket
    import threading

    payload = bytes(range(256)) * 97 + b"xy"  # even
    wires = []
    for _name, send in _senders():
        a, b = socket.socketpair()
        a.settimeout(10)
        got = bytearray()

        def reader(b=b, got=got):
            while True:
                chunk = b.recv(7919)  # small reads: the sender sees partial writes
                if not chunk:
                    return
                got.extend(chunk)

        t = threading.Thread(target=reader)
        t.start()
        send(a, memoryview(payload), 5, command, fragment)
        a.close()
        t.join()
        b.close()
        wires.append(bytes(got))
    assert all(w == wires[0] for w in wires)
    # and the bytes are what the Python PDU codec reads back
    pos, data, controls = 0, b"", []
    while pos < len(wires[0]):
        kind, _, n = struct.unpack(">BBL", wires[0][pos : pos + 6])
        for ctx, control, value in pdu.decode(kind, memoryview(wires[0])[pos + 6 : pos + 6 + n]).pdvs:
            assert ctx == 5
            data += bytes(value)
            controls.append(control)
        pos += 6 + n
    assert data == payload
    assert controls[-1] == (3 if command else 2) and all(c == (1 if command else 0) for c in controls[:-1])


def test_pdata_send_times_out_on_a_peer_that_stops_reading():
    import socket
    import time

    for _name, send in _senders():
        a, b = socket.socketpair()
        a.settimeout(0.3)
        t0 = time.time()
        with pytest.raises(OSError):
            send(a, bytes(64 << 20), 1, False, 1 << 20)
        assert time.time() - t0 < 10
        a.close()
        b.close()
    with pytest.raises((OSError, ValueError)):
        _senders()[0][1](a, b"ab", 1, False, 2)  # closed socket
