"""The DICOM Upper Layer state machine as data (PS3.8 section 9.2): states, events, the table.

:data:`TRANSITIONS` is PS3.8 Table 9-10: ``(state, event) -> action``, one
entry per cell the standard fills. :data:`NEXT_STATES` lists, for each
action, the states PS3.8 Tables 9-6 to 9-9 let it lead to (two for AE-6 and
AR-8, which decide). The actions themselves are methods of
:class:`fastdicom.net.association.Association`: each one does what the
standard says and returns the next state, and
:meth:`~fastdicom.net.association.Association._fire` is the one place that
looks an event up, runs the action and moves the machine.
"""

from __future__ import annotations

import enum

from .pdu import PduType

STA1, STA2, STA3, STA4, STA5, STA6, STA7 = "Sta1", "Sta2", "Sta3", "Sta4", "Sta5", "Sta6", "Sta7"
STA8, STA9, STA10, STA11, STA12, STA13 = "Sta8", "Sta9", "Sta10", "Sta11", "Sta12", "Sta13"


class Event(enum.IntEnum):
    """The events of PS3.8 Table 9-9, numbered as there (``Evt1`` ... ``Evt19``)."""

    A_ASSOCIATE_REQUEST = 1  # local user
    TRANSPORT_CONFIRM = 2
    AC_RECEIVED = 3
    RJ_RECEIVED = 4
    TRANSPORT_INDICATION = 5
    RQ_RECEIVED = 6
    A_ASSOCIATE_ACCEPT = 7  # local user's response
    A_ASSOCIATE_REJECT = 8  # local user's response
    P_DATA_REQUEST = 9
    P_DATA_RECEIVED = 10
    A_RELEASE_REQUEST = 11
    RELEASE_RQ_RECEIVED = 12
    RELEASE_RP_RECEIVED = 13
    A_RELEASE_RESPONSE = 14
    A_ABORT_REQUEST = 15
    ABORT_RECEIVED = 16
    TRANSPORT_CLOSED = 17
    ARTIM_EXPIRED = 18
    INVALID_PDU = 19


class Indication(enum.Enum):
    """What an action tells the association's user (the service primitives of PS3.8 9.2)."""

    NONE = enum.auto()
    A_ASSOCIATE_INDICATION = enum.auto()  # an acceptable A-ASSOCIATE-RQ: the user accepts or rejects it
    A_ASSOCIATE_ACCEPTED = enum.auto()  # A-ASSOCIATE confirmation (accept)
    A_ASSOCIATE_REJECTED = enum.auto()  # A-ASSOCIATE confirmation (reject)
    P_DATA_INDICATION = enum.auto()
    A_RELEASE_INDICATION = enum.auto()  # the peer asks to release (also in a release collision)
    A_RELEASE_CONFIRMATION = enum.auto()
    A_ABORT_INDICATION = enum.auto()  # the peer's user aborted
    A_P_ABORT_INDICATION = enum.auto()  # the provider aborted (either side), or the connection dropped


#: The event each received PDU type is.
RECEIVED: dict[int, Event] = {
    PduType.A_ASSOCIATE_AC: Event.AC_RECEIVED,
    PduType.A_ASSOCIATE_RJ: Event.RJ_RECEIVED,
    PduType.A_ASSOCIATE_RQ: Event.RQ_RECEIVED,
    PduType.P_DATA_TF: Event.P_DATA_RECEIVED,
    PduType.A_RELEASE_RQ: Event.RELEASE_RQ_RECEIVED,
    PduType.A_RELEASE_RP: Event.RELEASE_RP_RECEIVED,
    PduType.A_ABORT: Event.ABORT_RECEIVED,
}


def _table() -> dict[tuple[str, Event], str]:
    t: dict[tuple[str, Event], str] = {}

    def put(evt: Event, entries: dict[str, str]) -> None:
        for state, action in entries.items():
            t[(state, evt)] = action

    others = [STA3, STA5, STA6, STA7, STA8, STA9, STA10, STA11, STA12]
    # PDUs that are wrong everywhere but where the table says otherwise: AA-8 (Sta13: AA-6 or AA-7).
    for evt in (
        Event.AC_RECEIVED,
        Event.RJ_RECEIVED,
        Event.RQ_RECEIVED,
        Event.P_DATA_RECEIVED,
        Event.RELEASE_RQ_RECEIVED,
        Event.RELEASE_RP_RECEIVED,
        Event.INVALID_PDU,
    ):
        put(evt, {STA2: "AA-1", **dict.fromkeys(others, "AA-8")})
    for evt in (
        Event.AC_RECEIVED,
        Event.RJ_RECEIVED,
        Event.P_DATA_RECEIVED,
        Event.RELEASE_RQ_RECEIVED,
        Event.RELEASE_RP_RECEIVED,
    ):
        put(evt, {STA13: "AA-6"})
    put(Event.RQ_RECEIVED, {STA13: "AA-7"})
    put(Event.INVALID_PDU, {STA13: "AA-7"})
    put(Event.A_ASSOCIATE_REQUEST, {STA1: "AE-1"})
    put(Event.TRANSPORT_CONFIRM, {STA4: "AE-2"})
    put(Event.AC_RECEIVED, {STA5: "AE-3"})
    put(Event.RJ_RECEIVED, {STA5: "AE-4"})
    put(Event.TRANSPORT_INDICATION, {STA1: "AE-5"})
    put(Event.RQ_RECEIVED, {STA2: "AE-6"})
    put(Event.A_ASSOCIATE_ACCEPT, {STA3: "AE-7"})
    put(Event.A_ASSOCIATE_REJECT, {STA3: "AE-8"})
    put(Event.P_DATA_REQUEST, {STA6: "DT-1", STA8: "AR-7"})
    put(Event.P_DATA_RECEIVED, {STA6: "DT-2", STA7: "AR-6"})
    put(Event.A_RELEASE_REQUEST, {STA6: "AR-1"})
    put(Event.RELEASE_RQ_RECEIVED, {STA6: "AR-2", STA7: "AR-8"})
    put(Event.RELEASE_RP_RECEIVED, {STA7: "AR-3", STA10: "AR-10", STA11: "AR-3"})
    put(Event.A_RELEASE_RESPONSE, {STA8: "AR-4", STA9: "AR-9", STA12: "AR-4"})
    put(Event.A_ABORT_REQUEST, {STA3: "AA-1", STA4: "AA-2", **{f"Sta{i}": "AA-1" for i in range(5, 13)}})
    put(Event.ABORT_RECEIVED, {STA2: "AA-2", STA13: "AA-2", **dict.fromkeys(others, "AA-3")})
    put(Event.TRANSPORT_CLOSED, {STA2: "AA-5", STA13: "AR-5", **{f"Sta{i}": "AA-4" for i in range(3, 13)}})
    put(Event.ARTIM_EXPIRED, {STA2: "AA-2", STA13: "AA-2"})
    return t


#: (state, event) -> action, PS3.8 Table 9-10.
TRANSITIONS: dict[tuple[str, Event], str] = _table()

#: action -> the states it may lead to (PS3.8 Tables 9-6 to 9-9).
NEXT_STATES: dict[str, frozenset[str]] = {
    action: frozenset(states)
    for action, states in {
        "AE-1": {STA4},
        "AE-2": {STA5},
        "AE-3": {STA6},
        "AE-4": {STA1},
        "AE-5": {STA2},
        "AE-6": {STA3, STA13},  # acceptable to the provider, or A-ASSOCIATE-RJ sent
        "AE-7": {STA6},
        "AE-8": {STA13},
        "DT-1": {STA6},
        "DT-2": {STA6},
        "AR-1": {STA7},
        "AR-2": {STA8},
        "AR-3": {STA1},
        "AR-4": {STA13},
        "AR-5": {STA1},
        "AR-6": {STA7},
        "AR-7": {STA8},
        "AR-8": {STA9, STA10},  # association-requestor, or acceptor
        "AR-9": {STA11},
        "AR-10": {STA12},
        "AA-1": {STA13},
        "AA-2": {STA1},
        "AA-3": {STA1},
        "AA-4": {STA1},
        "AA-5": {STA1},
        "AA-6": {STA13},
        "AA-7": {STA13},
        "AA-8": {STA13},
    }.items()
}


def keeps_state(state: str, event: Event) -> bool:
    """Whether ``event`` in ``state`` leads back to ``state`` whatever its action decides (so it may be skipped)."""
    action = TRANSITIONS.get((state, event))
    return action is not None and NEXT_STATES[action] == {state}


#: The states where a received P-DATA-TF PDU leaves the machine where it is (DT-2 in Sta6, AR-6 in Sta7).
P_DATA_KEEPS_STATE = frozenset(
    state for (state, event) in TRANSITIONS if event == Event.P_DATA_RECEIVED and keeps_state(state, event)
)
