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
        (0x08, b"", pdu.AbortReason.UNRECOGNIZED_PDU),
        (pdu.PduType.A_ABORT, b"\0\0", pdu.AbortReason.INVALID_PDU_PARAMETER_VALUE),
        (pdu.PduType.P_DATA_TF, b"", pdu.AbortReason.INVALID_PDU_PARAMETER_VALUE),
        (
            pdu.PduType.P_DATA_TF,
            struct.pack(">LBB", 100, 1, 3) + b"xx",
            pdu.AbortReason.INVALID_PDU_PARAMETER_VALUE,
        ),  # PDV past the PDU
        (
            pdu.PduType.P_DATA_TF,
            struct.pack(">LBB", 4, 1, 0xF3) + b"xx",
            pdu.AbortReason.INVALID_PDU_PARAMETER_VALUE,
        ),  # reserved bits
        (pdu.PduType.A_ASSOCIATE_RQ, b"\0" * 10, pdu.AbortReason.INVALID_PDU_PARAMETER_VALUE),
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
        pdu.decode(pdu.PduType.A_ASSOCIATE_RQ, memoryview(raw)[6:])


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


# PS3.8 Table 9-10, the DICOM Upper Layer state transition table, by its own labels: for each event (a row
# of the table, Evt1 ... Evt19) the action in each state (Sta1 ... Sta13, Tables 9-1 to 9-5) where the table
# names one; a blank cell has no entry.
_REST = {s: "AA-8" for s in ("Sta3", "Sta5", "Sta6", "Sta7", "Sta8", "Sta9", "Sta10", "Sta11", "Sta12")}
PS3_8_TABLE_9_10 = {
    "Evt1": {"Sta1": "AE-1"},  # A-ASSOCIATE request (local user)
    "Evt2": {"Sta4": "AE-2"},  # transport connection confirm (local transport service)
    "Evt3": {"Sta2": "AA-1", **_REST, "Sta5": "AE-3", "Sta13": "AA-6"},  # A-ASSOCIATE-AC PDU received
    "Evt4": {"Sta2": "AA-1", **_REST, "Sta5": "AE-4", "Sta13": "AA-6"},  # A-ASSOCIATE-RJ PDU received
    "Evt5": {"Sta1": "AE-5"},  # transport connection indication
    "Evt6": {"Sta2": "AE-6", **_REST, "Sta13": "AA-7"},  # A-ASSOCIATE-RQ PDU received
    "Evt7": {"Sta3": "AE-7"},  # A-ASSOCIATE response primitive (accept)
    "Evt8": {"Sta3": "AE-8"},  # A-ASSOCIATE response primitive (reject)
    "Evt9": {"Sta6": "DT-1", "Sta8": "AR-7"},  # P-DATA request primitive
    "Evt10": {"Sta2": "AA-1", **_REST, "Sta6": "DT-2", "Sta7": "AR-6", "Sta13": "AA-6"},  # P-DATA-TF PDU
    "Evt11": {"Sta6": "AR-1"},  # A-RELEASE request primitive
    "Evt12": {"Sta2": "AA-1", **_REST, "Sta6": "AR-2", "Sta7": "AR-8", "Sta13": "AA-6"},  # A-RELEASE-RQ PDU
    "Evt13": {  # A-RELEASE-RP PDU
        "Sta2": "AA-1",
        **_REST,
        "Sta7": "AR-3",
        "Sta10": "AR-10",
        "Sta11": "AR-3",
        "Sta13": "AA-6",
    },
    "Evt14": {"Sta8": "AR-4", "Sta9": "AR-9", "Sta12": "AR-4"},  # A-RELEASE response primitive
    "Evt15": {"Sta3": "AA-1", "Sta4": "AA-2", **{f"Sta{i}": "AA-1" for i in range(5, 13)}},  # A-ABORT request
    "Evt16": {"Sta2": "AA-2", **{s: "AA-3" for s in _REST}, "Sta13": "AA-2"},  # A-ABORT PDU received
    "Evt17": {"Sta2": "AA-5", **{f"Sta{i}": "AA-4" for i in range(3, 13)}, "Sta13": "AR-5"},  # transport closed
    "Evt18": {"Sta2": "AA-2", "Sta13": "AA-2"},  # ARTIM timer expired
    "Evt19": {"Sta2": "AA-1", **_REST, "Sta13": "AA-7"},  # unrecognized or invalid PDU received
}
# The next state each action names (PS3.8 Tables 9-6 to 9-9); AE-6 and AR-8 choose between two.
PS3_8_NEXT_STATE = {
    "AE-1": {"Sta4"},
    "AE-2": {"Sta5"},
    "AE-3": {"Sta6"},
    "AE-4": {"Sta1"},
    "AE-5": {"Sta2"},
    "AE-6": {"Sta3", "Sta13"},  # acceptable by the service provider, or A-ASSOCIATE-RJ sent
    "AE-7": {"Sta6"},
    "AE-8": {"Sta13"},
    "DT-1": {"Sta6"},
    "DT-2": {"Sta6"},
    "AR-1": {"Sta7"},
    "AR-2": {"Sta8"},
    "AR-3": {"Sta1"},
    "AR-4": {"Sta13"},
    "AR-5": {"Sta1"},
    "AR-6": {"Sta7"},
    "AR-7": {"Sta8"},
    "AR-8": {"Sta9", "Sta10"},  # association-requestor, or not
    "AR-9": {"Sta11"},
    "AR-10": {"Sta12"},
    "AA-1": {"Sta13"},
    "AA-2": {"Sta1"},
    "AA-3": {"Sta1"},
    "AA-4": {"Sta1"},
    "AA-5": {"Sta1"},
    "AA-6": {"Sta13"},
    "AA-7": {"Sta13"},
    "AA-8": {"Sta13"},
}
# The Event members of fastdicom.net.fsm, by the row of PS3.8 Table 9-10 each one is.
EVENT_NAMES = {
    "Evt1": "A_ASSOCIATE_REQUEST",
    "Evt2": "TRANSPORT_CONFIRM",
    "Evt3": "AC_RECEIVED",
    "Evt4": "RJ_RECEIVED",
    "Evt5": "TRANSPORT_INDICATION",
    "Evt6": "RQ_RECEIVED",
    "Evt7": "A_ASSOCIATE_ACCEPT",
    "Evt8": "A_ASSOCIATE_REJECT",
    "Evt9": "P_DATA_REQUEST",
    "Evt10": "P_DATA_RECEIVED",
    "Evt11": "A_RELEASE_REQUEST",
    "Evt12": "RELEASE_RQ_RECEIVED",
    "Evt13": "RELEASE_RP_RECEIVED",
    "Evt14": "A_RELEASE_RESPONSE",
    "Evt15": "A_ABORT_REQUEST",
    "Evt16": "ABORT_RECEIVED",
    "Evt17": "TRANSPORT_CLOSED",
    "Evt18": "ARTIM_EXPIRED",
    "Evt19": "INVALID_PDU",
}


def _code_table() -> dict[tuple[str, str], str]:
    """TRANSITIONS keyed by PS3.8 labels: (state, event) -> action."""
    from fastdicom.net import fsm

    label = {fsm.Event[name]: evt for evt, name in EVENT_NAMES.items()}
    assert len(label) == 19, "two events share a number"
    return {(state, label[evt]): action for (state, evt), action in fsm.TRANSITIONS.items()}


def test_event_constants_are_the_standards_events():
    from fastdicom.net import fsm

    for evt, name in EVENT_NAMES.items():
        assert fsm.Event[name] == int(evt.removeprefix("Evt")), name
    assert len(fsm.Event) == 19
    assert set(fsm.RECEIVED.values()) == {
        fsm.Event[EVENT_NAMES[e]] for e in ("Evt3", "Evt4", "Evt6", "Evt10", "Evt12", "Evt13", "Evt16")
    }


def test_state_table_is_ps3_8_table_9_10():
    """Every cell of PS3.8 Table 9-10 is in TRANSITIONS with the standard's action, TRANSITIONS holds no cell the
    standard leaves blank, and each action may lead only to the states the standard gives it."""
    from fastdicom.net import association, fsm

    code = _code_table()
    want = {(state, evt): action for evt, row in PS3_8_TABLE_9_10.items() for state, action in row.items()}
    assert len(want) == sum(map(len, PS3_8_TABLE_9_10.values()))
    wrong = {cell: (code[cell], action) for cell, action in want.items() if cell in code and code[cell] != action}
    assert not wrong, f"(state, event): (ours, PS3.8) {wrong}"
    assert not set(want) - set(code), f"cells of PS3.8 Table 9-10 missing: {sorted(set(want) - set(code))}"
    assert not set(code) - set(want), f"cells the standard leaves blank: {sorted(set(code) - set(want))}"
    bad_next = {a: s for a, s in fsm.NEXT_STATES.items() if not s or not s <= PS3_8_NEXT_STATE[a]}
    assert not bad_next, bad_next
    # every action the table names has its method on the association
    assert set(association._ACTIONS) == set(code.values()) == set(PS3_8_NEXT_STATE)


def _run(assoc, *events):
    """Fire ``(event, data)`` steps on an association; the action label of each."""
    labels = []
    for event, data in events:
        assoc._fire(event, **data)
        labels.append(assoc.last_action)
    return labels


@pytest.mark.parametrize("requestor,after", [(True, "Sta9"), (False, "Sta10")])
def test_release_collision_next_state_follows_the_role(requestor, after):
    """AR-8 (Evt12 in Sta7): Sta9 on the association-requestor, Sta10 on the acceptor (PS3.8 Table 9-8), reached
    through the machine from Sta1 with the PDUs each side would see."""
    import socket

    from fastdicom.net import association
    from fastdicom.net.fsm import Event

    rq = _rq()
    ac = pdu.AssociateAC(rq.called_ae, rq.calling_ae, [], pdu.UserInfo(implementation_class_uid="1.2.3"))
    a, b = socket.socketpair()
    try:
        assoc = association.Association(a, requestor=requestor)
        if requestor:
            steps = [(Event.A_ASSOCIATE_REQUEST, {}), (Event.TRANSPORT_CONFIRM, {"pdu": rq}), (Event.AC_RECEIVED, {})]
        else:
            steps = [(Event.TRANSPORT_INDICATION, {}), (Event.RQ_RECEIVED, {}), (Event.A_ASSOCIATE_ACCEPT, {"pdu": ac})]
        steps += [(Event.A_RELEASE_REQUEST, {}), (Event.RELEASE_RQ_RECEIVED, {})]
        labels = _run(assoc, *steps)
        assert labels[-2:] == ["AR-1", "AR-8"] and assoc.state == after
        b.settimeout(5)
        kinds = []
        wire = b.recv(1 << 16)
        while wire:
            kind, _, n = struct.unpack(">BBL", wire[:6])
            kinds.append(kind)
            wire = wire[6 + n :]
        # what the actions sent: the requestor its A-ASSOCIATE-RQ, the acceptor its AC; both an A-RELEASE-RQ
        first = pdu.PduType.A_ASSOCIATE_RQ if requestor else pdu.PduType.A_ASSOCIATE_AC
        assert kinds == [first, pdu.PduType.A_RELEASE_RQ]
    finally:
        a.close()
        b.close()


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
