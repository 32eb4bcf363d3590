"""An association: the DICOM Upper Layer state machine (PS3.8 section 9.2) over one socket.

The states keep the standard's names (``Sta1`` ... ``Sta13``) and every
event the standard lists moves the machine through :data:`TRANSITIONS`, the
state table of PS3.8 Table 9-10 written as data. A PDU that is not allowed in
the current state gets the standard's answer (A-ABORT, provider source),
never an exception escaping to the peer.

One association runs in one thread, blocking on its socket with timeouts:
the ARTIM timer is the socket timeout while waiting for an A-ASSOCIATE-RQ or
for the peer to close; ``network_timeout`` bounds every other wait so that
a silent or slow peer ends in an A-ABORT, not a hang.

DIMSE messages are sent as one PDV per P-DATA-TF PDU, command and data set in
separate PDVs, fragments of even length within the peer's maximum length.
Received messages are checked for the same rules (one context per message,
no interleaving, command before data); a data set can be streamed to a sink
fragment by fragment instead of being collected in memory.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from .. import _backends
from .._version import __version__
from ..errors import FastDicomError
from . import dimse, pdu
from ._recv_py import pdata_recv as _PDATA_RECV_PY
from ._send_py import pdata_send as _PDATA_SEND_PY
from ._send_py import pdata_sendfile as _PDATA_SENDFILE_PY
from .pdu import PDUError


def _pdata_send():
    return _backends.resolve("pdata_send")[1].pdata_send


def _pdata_sendfile():
    return _backends.resolve("pdata_sendfile")[1].pdata_sendfile


def _pdata_recv():
    return _backends.resolve("pdata_recv")[1].pdata_recv


#: Our Implementation Class UID (2.25 root, derived from a fixed UUID) and version name.
IMPLEMENTATION_CLASS_UID = "2.25.293749828714376233497417934316453410427"
IMPLEMENTATION_VERSION_NAME = ("FASTDICOM_" + __version__.replace(".", ""))[:16]
#: Largest P-DATA-TF variable field we accept (advertised as our maximum length).
DEFAULT_MAX_PDU = 1 << 20


class FileRegion:
    """A data set held in a file: ``length`` bytes from ``offset`` of the open descriptor ``fd``.

    :meth:`Association.send_message` sends it with ``sendfile`` between the
    PDU headers (zero-copy). The descriptor stays the caller's to close.
    """

    __slots__ = ("fd", "offset", "length")

    def __init__(self, fd: int, offset: int, length: int) -> None:
        self.fd, self.offset, self.length = fd, offset, length

    def __len__(self) -> int:
        return self.length

    def release(self) -> None:
        """For symmetry with memoryview (nothing to release)."""


class NetworkError(FastDicomError):
    """Something went wrong on an association (base class)."""


class AssociationRejected(NetworkError):
    """The peer answered A-ASSOCIATE-RJ."""

    def __init__(self, result: int, source: int, reason: int) -> None:
        kind = "transient" if result == pdu.RJ_TRANSIENT else "permanent"
        super().__init__(f"association rejected ({kind}, source {source}, reason {reason})")
        self.result, self.source, self.reason = result, source, reason

    @property
    def transient(self) -> bool:
        return self.result == pdu.RJ_TRANSIENT


class AssociationAborted(NetworkError):
    """The association ended by A-ABORT (either side) or by the connection dropping (A-P-ABORT)."""


class ReleaseRequested(NetworkError):
    """The peer asked to release the association while a message was awaited."""


# -- the state table ------------------------------------------------------------------------------
# Events (PS3.8 Table 9-9)
EVT_ASSOCIATE_REQUEST = 1  # local A-ASSOCIATE request
EVT_TRANSPORT_CONFIRM = 2
EVT_AC_RECEIVED = 3
EVT_RJ_RECEIVED = 4
EVT_TRANSPORT_INDICATION = 5
EVT_RQ_RECEIVED = 6
EVT_ACCEPT = 7  # local A-ASSOCIATE response (accept)
EVT_REJECT = 8  # local A-ASSOCIATE response (reject)
EVT_PDATA_REQUEST = 9
EVT_PDATA_RECEIVED = 10
EVT_RELEASE_REQUEST = 11
EVT_RELEASE_RQ_RECEIVED = 12
EVT_RELEASE_RP_RECEIVED = 13
EVT_RELEASE_RESPONSE = 14
EVT_ABORT_REQUEST = 15
EVT_ABORT_RECEIVED = 16
EVT_TRANSPORT_CLOSED = 17
EVT_ARTIM_EXPIRED = 18
EVT_INVALID_PDU = 19

_RECEIVED = {
    pdu.A_ASSOCIATE_AC: EVT_AC_RECEIVED,
    pdu.A_ASSOCIATE_RJ: EVT_RJ_RECEIVED,
    pdu.A_ASSOCIATE_RQ: EVT_RQ_RECEIVED,
    pdu.P_DATA_TF: EVT_PDATA_RECEIVED,
    pdu.A_RELEASE_RQ: EVT_RELEASE_RQ_RECEIVED,
    pdu.A_RELEASE_RP: EVT_RELEASE_RP_RECEIVED,
    pdu.A_ABORT: EVT_ABORT_RECEIVED,
}


def _table() -> dict[tuple[str, int], tuple[str, str]]:
    t: dict[tuple[str, int], tuple[str, str]] = {}

    def put(evt: int, entries: dict[str, tuple[str, str]]) -> None:
        for state, action in entries.items():
            t[(state, evt)] = action

    others = [f"Sta{i}" for i in (3, 5, 6, 7, 8, 9, 10, 11, 12)]
    # PDUs that are wrong everywhere but where the table says otherwise: AA-8 (Sta13: AA-6 or AA-7).
    for evt in (EVT_AC_RECEIVED, EVT_RJ_RECEIVED, EVT_RQ_RECEIVED, EVT_PDATA_RECEIVED):
        put(evt, {"Sta2": ("AA-1", "Sta13"), **{s: ("AA-8", "Sta13") for s in others}})
    for evt in (EVT_RELEASE_RQ_RECEIVED, EVT_RELEASE_RP_RECEIVED, EVT_INVALID_PDU):
        put(evt, {"Sta2": ("AA-1", "Sta13"), **{s: ("AA-8", "Sta13") for s in others}})
    for evt in (EVT_AC_RECEIVED, EVT_RJ_RECEIVED, EVT_PDATA_RECEIVED, EVT_RELEASE_RQ_RECEIVED, EVT_RELEASE_RP_RECEIVED):
        put(evt, {"Sta13": ("AA-6", "Sta13")})
    put(EVT_RQ_RECEIVED, {"Sta13": ("AA-7", "Sta13")})
    put(EVT_INVALID_PDU, {"Sta13": ("AA-7", "Sta13")})
    put(EVT_ASSOCIATE_REQUEST, {"Sta1": ("AE-1", "Sta4")})
    put(EVT_TRANSPORT_CONFIRM, {"Sta4": ("AE-2", "Sta5")})
    put(EVT_AC_RECEIVED, {"Sta5": ("AE-3", "Sta6")})
    put(EVT_RJ_RECEIVED, {"Sta5": ("AE-4", "Sta1")})
    put(EVT_TRANSPORT_INDICATION, {"Sta1": ("AE-5", "Sta2")})
    put(EVT_RQ_RECEIVED, {"Sta2": ("AE-6", "Sta3")})  # or Sta13 when refused outright
    put(EVT_ACCEPT, {"Sta3": ("AE-7", "Sta6")})
    put(EVT_REJECT, {"Sta3": ("AE-8", "Sta13")})
    put(EVT_PDATA_REQUEST, {"Sta6": ("DT-1", "Sta6"), "Sta8": ("AR-7", "Sta8")})
    put(EVT_PDATA_RECEIVED, {"Sta6": ("DT-2", "Sta6"), "Sta7": ("AR-6", "Sta7")})
    put(EVT_RELEASE_REQUEST, {"Sta6": ("AR-1", "Sta7")})
    put(EVT_RELEASE_RQ_RECEIVED, {"Sta6": ("AR-2", "Sta8"), "Sta7": ("AR-8", "Sta9")})  # Sta10 for the acceptor
    put(EVT_RELEASE_RP_RECEIVED, {"Sta7": ("AR-3", "Sta1"), "Sta10": ("AR-10", "Sta12"), "Sta11": ("AR-3", "Sta1")})
    put(EVT_RELEASE_RESPONSE, {"Sta8": ("AR-4", "Sta13"), "Sta9": ("AR-9", "Sta11"), "Sta12": ("AR-4", "Sta13")})
    put(
        EVT_ABORT_REQUEST,
        {"Sta3": ("AA-1", "Sta13"), "Sta4": ("AA-2", "Sta1"), **{f"Sta{i}": ("AA-1", "Sta13") for i in range(5, 13)}},
    )
    put(
        EVT_ABORT_RECEIVED,
        {"Sta2": ("AA-2", "Sta1"), "Sta13": ("AA-2", "Sta1"), **{s: ("AA-3", "Sta1") for s in others}},
    )
    put(
        EVT_TRANSPORT_CLOSED,
        {"Sta2": ("AA-5", "Sta1"), "Sta13": ("AR-5", "Sta1"), **{f"Sta{i}": ("AA-4", "Sta1") for i in range(3, 13)}},
    )
    put(EVT_ARTIM_EXPIRED, {"Sta2": ("AA-2", "Sta1"), "Sta13": ("AA-2", "Sta1")})
    return t


#: (state, event) -> (action, next state), PS3.8 Table 9-10.
TRANSITIONS = _table()


@dataclass
class Message:
    """A DIMSE message: its command set, context, and data set bytes (None when streamed or absent)."""

    context_id: int
    command: dict[str, Any]
    data: bytes | None = None


@dataclass
class Negotiated:
    """What the two sides agreed on."""

    calling_ae: str
    called_ae: str
    #: Accepted presentation contexts by ID (their one transfer syntax in ``transfer_syntaxes[0]``).
    contexts: dict[int, pdu.PresentationContext] = field(default_factory=dict)
    #: All answered contexts (rejected ones included), in the order proposed.
    results: list[pdu.PresentationContext] = field(default_factory=list)
    peer_max_pdu: int = 16384
    #: (operations we may invoke, operations we may perform) outstanding at once.
    async_ops: tuple[int, int] = (1, 1)
    peer_implementation_class_uid: str = ""
    peer_implementation_version_name: str | None = None
    roles: list[pdu.RoleSelection] = field(default_factory=list)
    #: The acceptor's User Identity server response, when it sent one.
    user_identity_response: bytes | None = None
    #: SOP class extended negotiation answered by the acceptor (SOP class UID -> service-specific bytes).
    sop_class_extended: dict[str, bytes] = field(default_factory=dict)
    request: pdu.AssociateRQ | None = None


class Association:
    """One association over a connected socket, as requestor or acceptor."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        requestor: bool,
        max_pdu: int = DEFAULT_MAX_PDU,
        network_timeout: float = 60.0,
        artim_timeout: float = 30.0,
    ) -> None:
        self.sock = sock
        self.requestor = requestor
        self.max_pdu = max_pdu
        self.network_timeout = network_timeout
        self.artim_timeout = artim_timeout
        self.state = "Sta1"
        self.negotiated: Negotiated | None = None
        self.abort_reason: str | None = None
        self._hdr = bytearray(6)
        self._body = bytearray(64 * 1024)  # grows to the largest PDU received, never past max_pdu
        self._leftover: list[tuple[int, int, bytes]] = []
        self._tls = isinstance(sock, ssl.SSLSocket)
        self._next_message_id = 1
        self._lock = threading.Lock()
        self._state_lock = threading.Lock()
        #: Another thread uses the socket too (an SCP committer): close() only shuts it down.
        self.shared = False
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # pragma: no cover - not a TCP socket
            pass

    @property
    def agreement(self) -> Negotiated:
        """What negotiation agreed, on an established association (NetworkError before that)."""
        if self.negotiated is None:
            raise NetworkError("the association is not established")
        return self.negotiated

    # -- state machine -------------------------------------------------------------------------
    def _event(self, evt: int) -> str:
        """Move the machine for ``evt``; return the action the table names."""
        with self._state_lock:  # a committer thread may send while this one receives
            try:
                action, nxt = TRANSITIONS[(self.state, evt)]
            except KeyError:
                raise NetworkError(f"event {evt} is not valid in state {self.state}") from None
            if action == "AE-6" and evt == EVT_RQ_RECEIVED:
                nxt = "Sta3"
            if action == "AR-8":
                nxt = "Sta9" if self.requestor else "Sta10"
            self.state = nxt
            return action

    # -- transport -----------------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except (OSError, ValueError) as exc:
            self._closed(f"send failed: {exc}")

    def _closed(self, why: str) -> None:
        """The connection is gone: A-P-ABORT (Evt17)."""
        if self.state != "Sta1":
            try:
                self._event(EVT_TRANSPORT_CLOSED)
            except NetworkError:
                self.state = "Sta1"
        self.close()
        raise AssociationAborted(f"A-P-ABORT: {why}")

    def _recv_exact(self, view: memoryview, deadline: float | None) -> bool:
        """Fill ``view`` before ``deadline``; False if the peer closed before sending anything."""
        got = 0
        n = len(view)
        while got < n:
            # Each read waits at most the socket timeout; the deadline bounds them all (a peer
            # trickling a byte at a time is cut off within two timeouts, without a system call
            # per read to shorten the timeout).
            if deadline is not None and got and time.monotonic() > deadline:
                raise TimeoutError("the peer is too slow")
            try:
                k = self.sock.recv_into(view[got:], n - got)
            except TimeoutError:
                raise
            except (OSError, ValueError) as exc:
                self._closed(f"receive failed: {exc}")
            if k == 0:
                if got == 0:
                    return False
                self._closed("connection closed inside a PDU")
            got += k
        return True

    def _read_pdu(self, timeout: float | None, header: bytes | None = None):
        """Read one PDU: ``(type, decoded)``; closing, timeouts and bad PDUs become events.

        ``timeout`` bounds the whole PDU, not each read. ``header``: its 6-byte
        header, already read by the data plane.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        self.sock.settimeout(timeout)
        hdr = memoryview(self._hdr)
        if header is not None:
            hdr[:] = header
        elif not self._recv_exact(hdr, deadline):
            self._closed("connection closed by the peer")
        kind, _, length = struct.unpack(">BBL", hdr)
        limit = self.max_pdu if kind == pdu.P_DATA_TF else pdu.MAX_ASSOCIATE_PDU
        if kind not in _RECEIVED:
            raise PDUError(f"unrecognized PDU type {kind:02X}H", pdu.REASON_UNRECOGNIZED_PDU)
        if length > limit:
            raise PDUError(f"PDU of {length} bytes exceeds the maximum length {limit}")
        if length > len(self._body):
            self._body = bytearray(length)
        body = memoryview(self._body)[:length]
        if not self._recv_exact(body, deadline):
            self._closed("connection closed inside a PDU")
        return kind, pdu.decode(kind, body)

    def _provider_abort(self, reason: int, why: str) -> NoReturn:
        """AA-8: send A-ABORT (provider), close, report."""
        try:
            self._event(EVT_INVALID_PDU)
        except NetworkError:
            pass
        self._send_abort(pdu.ABORT_SOURCE_PROVIDER, reason)
        self.abort_reason = why
        self.close()
        raise AssociationAborted(f"A-ABORT sent: {why}")

    def _receive(self, timeout: float | None = None, header: bytes | None = None):
        """The next PDU, driving the state machine; A-ABORT and closing raise AssociationAborted."""
        try:
            kind, obj = self._read_pdu(self.network_timeout if timeout is None else timeout, header)
        except TimeoutError:
            self._user_abort("timed out waiting for the peer")
            raise AssociationAborted("timed out waiting for the peer") from None
        except PDUError as exc:
            self._provider_abort(exc.reason, str(exc))
            raise  # not reached
        action = self._event(_RECEIVED[kind])
        if action == "AA-3":
            self.close()
            raise AssociationAborted(f"A-ABORT received (source {obj.source}, reason {obj.reason})")
        if action == "AA-8":
            self.state = "Sta13"
            self._provider_abort(pdu.REASON_UNEXPECTED_PDU, f"unexpected PDU {kind:02X}H in this state")
        if action == "AA-7":
            self._send_abort(pdu.ABORT_SOURCE_PROVIDER, pdu.REASON_UNEXPECTED_PDU)
        if action in ("AA-6", "AA-7"):
            return self._receive(timeout)
        return kind, obj

    def _user_abort(self, why: str) -> None:
        if self.state in ("Sta1", "Sta13"):
            self.close()
            return
        try:
            self._event(EVT_ABORT_REQUEST)
        except NetworkError:
            pass
        self._send_abort(pdu.ABORT_SOURCE_USER, pdu.REASON_NOT_SPECIFIED)
        self.abort_reason = why
        self.close()

    def abort(self) -> None:
        """Send A-ABORT and close."""
        self._user_abort("aborted by the local user")

    def close(self) -> None:
        """Close the connection. While another thread may be using the socket (``shared``), only
        shut it down: that wakes a thread blocked on it, and the descriptor number cannot be
        reused by a new connection under it; the owner calls :meth:`release_socket` later."""
        with self._state_lock:
            self.state = "Sta1"
        if self.shared:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            return
        self.release_socket()

    def release_socket(self) -> None:
        """Close the socket for good (its owner, once no other thread uses it)."""
        with contextlib.suppress(OSError):
            self.sock.close()

    def _send_abort(self, source: int, reason: int) -> None:
        """Send A-ABORT, never into the middle of another thread's PDU (skipped if it is stuck)."""
        if not self._lock.acquire(timeout=1.0):
            return
        try:
            self.sock.sendall(pdu.encode(pdu.Abort(source, reason)))
        except OSError:
            pass
        finally:
            self._lock.release()

    @property
    def is_established(self) -> bool:
        return self.state == "Sta6"

    # -- establishment -------------------------------------------------------------------------
    @classmethod
    def request(
        cls,
        host: str,
        port: int,
        *,
        calling_ae: str,
        called_ae: str,
        contexts: list[pdu.PresentationContext],
        async_ops: tuple[int, int] | None = None,
        roles: list[pdu.RoleSelection] | None = None,
        user_identity: pdu.UserIdentity | None = None,
        sop_class_extended: dict[str, bytes] | None = None,
        common_extended: list[pdu.CommonExtended] | None = None,
        max_pdu: int = DEFAULT_MAX_PDU,
        connect_timeout: float = 15.0,
        network_timeout: float = 60.0,
        tls: ssl.SSLContext | None = None,
    ) -> Association:
        """Connect, negotiate, and return an established association (requestor side)."""
        if len(contexts) > 128:
            raise ValueError(f"{len(contexts)} presentation contexts proposed; at most 128 fit an association")
        try:
            sock = socket.create_connection((host, port), timeout=connect_timeout)
        except OSError as exc:
            raise NetworkError(f"cannot connect to {host}:{port}: {exc}") from None
        if tls is not None:
            try:
                sock = tls.wrap_socket(sock, server_hostname=host if tls.check_hostname else None)
            except (OSError, ssl.SSLError) as exc:
                sock.close()
                raise NetworkError(f"TLS handshake with {host}:{port} failed: {exc}") from None
        assoc = cls(sock, requestor=True, max_pdu=max_pdu, network_timeout=network_timeout)
        assoc._event(EVT_ASSOCIATE_REQUEST)
        assoc._event(EVT_TRANSPORT_CONFIRM)
        rq = pdu.AssociateRQ(
            called_ae,
            calling_ae,
            contexts,
            pdu.UserInfo(
                max_length=max_pdu,
                implementation_class_uid=IMPLEMENTATION_CLASS_UID,
                implementation_version_name=IMPLEMENTATION_VERSION_NAME,
                async_ops=async_ops,
                roles=list(roles or []),
                user_identity=user_identity,
                sop_class_extended=dict(sop_class_extended or {}),
                common_extended=list(common_extended or []),
            ),
        )
        assoc._send(pdu.encode(rq))
        kind, obj = assoc._receive()
        if kind == pdu.A_ASSOCIATE_RJ:
            assoc.close()
            raise AssociationRejected(obj.result, obj.source, obj.reason)
        ac: pdu.AssociateAC = obj
        proposed = {pc.id: pc for pc in contexts}
        neg = Negotiated(calling_ae, called_ae, request=rq)
        for pc in ac.contexts:
            if pc.id not in proposed:
                assoc._provider_abort(
                    pdu.REASON_INVALID_PARAMETER, f"A-ASSOCIATE-AC answers unproposed context {pc.id}"
                )
            pc.abstract_syntax = proposed[pc.id].abstract_syntax
            neg.results.append(pc)
            if pc.accepted:
                if pc.transfer_syntax not in proposed[pc.id].transfer_syntaxes:
                    assoc._provider_abort(
                        pdu.REASON_INVALID_PARAMETER, f"context {pc.id} accepted with an unproposed transfer syntax"
                    )
                neg.contexts[pc.id] = pc
        ui = ac.user_info
        neg.peer_max_pdu = ui.max_length
        neg.peer_implementation_class_uid = ui.implementation_class_uid
        neg.peer_implementation_version_name = ui.implementation_version_name
        neg.roles = ui.roles
        neg.user_identity_response = ui.user_identity_response
        neg.sop_class_extended = ui.sop_class_extended
        if async_ops is not None and ui.async_ops is not None:
            neg.async_ops = ui.async_ops
        assoc.negotiated = neg
        return assoc

    @classmethod
    def accept(
        cls,
        sock: socket.socket,
        negotiate: Callable[[pdu.AssociateRQ], pdu.AssociateAC | pdu.AssociateRJ],
        *,
        max_pdu: int = DEFAULT_MAX_PDU,
        network_timeout: float = 60.0,
        artim_timeout: float = 30.0,
    ) -> Association | None:
        """Run the acceptor side up to an established association (None if it was rejected or failed).

        ``negotiate`` gets the A-ASSOCIATE-RQ and returns the AC or RJ to send.
        """
        assoc = cls(
            sock, requestor=False, max_pdu=max_pdu, network_timeout=network_timeout, artim_timeout=artim_timeout
        )
        assoc._event(EVT_TRANSPORT_INDICATION)
        try:
            kind, obj = assoc._read_pdu(artim_timeout)
        except TimeoutError:
            assoc._event(EVT_ARTIM_EXPIRED)
            assoc.close()
            return None
        except PDUError as exc:
            assoc._event(EVT_INVALID_PDU)
            try:
                sock.sendall(pdu.encode(pdu.Abort(pdu.ABORT_SOURCE_PROVIDER, exc.reason)))
            except OSError:
                pass
            assoc.close()
            return None
        except AssociationAborted:
            return None
        action = assoc._event(_RECEIVED[kind])
        if action != "AE-6":
            try:
                if action == "AA-1":
                    sock.sendall(pdu.encode(pdu.Abort(pdu.ABORT_SOURCE_PROVIDER, pdu.REASON_UNEXPECTED_PDU)))
            except OSError:
                pass
            assoc.close()
            return None
        rq: pdu.AssociateRQ = obj
        answer = negotiate(rq)
        if isinstance(answer, pdu.AssociateRJ):
            assoc._event(EVT_REJECT)
            assoc._send(pdu.encode(answer))
            assoc._await_close()
            return None
        assoc._event(EVT_ACCEPT)
        assoc._send(pdu.encode(answer))
        neg = Negotiated(rq.calling_ae, rq.called_ae, request=rq)
        for pc in answer.contexts:
            neg.results.append(pc)
            if pc.accepted:
                neg.contexts[pc.id] = pc
        neg.peer_max_pdu = rq.user_info.max_length
        neg.peer_implementation_class_uid = rq.user_info.implementation_class_uid
        neg.peer_implementation_version_name = rq.user_info.implementation_version_name
        neg.roles = answer.user_info.roles
        if answer.user_info.async_ops is not None:
            neg.async_ops = (answer.user_info.async_ops[1], answer.user_info.async_ops[0])
        assoc.negotiated = neg
        return assoc

    def _await_close(self) -> None:
        """Sta13: wait (ARTIM) for the peer to close, then close."""
        try:
            self.sock.settimeout(self.artim_timeout)
            while self.sock.recv(4096):
                pass
        except (OSError, ValueError):
            pass
        self.close()

    # -- release -------------------------------------------------------------------------------
    def release(self) -> None:
        """A-RELEASE (requestor or acceptor side) and close; a collision is resolved as PS3.8 says."""
        if self.state != "Sta6":
            self.close()
            return
        self._event(EVT_RELEASE_REQUEST)
        self._send(pdu.encode(pdu.ReleaseRQ()))
        while True:
            try:
                kind, _ = self._receive()
            except AssociationAborted:
                return
            if kind == pdu.A_RELEASE_RP and self.state == "Sta1":
                self.close()
                return
            if kind == pdu.A_RELEASE_RQ:  # collision: Sta9 (requestor) or Sta10 (acceptor)
                if self.state == "Sta9":
                    self._event(EVT_RELEASE_RESPONSE)  # -> Sta11
                    self._send(pdu.encode(pdu.ReleaseRP()))
                continue
            if kind == pdu.A_RELEASE_RP and self.state == "Sta12":
                self._event(EVT_RELEASE_RESPONSE)  # -> Sta13
                self._send(pdu.encode(pdu.ReleaseRP()))
                self._await_close()
                return
            # P-DATA in Sta7 (AR-6): a late message; nothing is waiting for it any more.

    def answer_release(self) -> None:
        """After the peer's A-RELEASE-RQ (Sta8): send A-RELEASE-RP and wait for the close."""
        if self.state == "Sta8":
            self._event(EVT_RELEASE_RESPONSE)
            self._send(pdu.encode(pdu.ReleaseRP()))
            self._await_close()
        else:
            self.close()

    # -- DIMSE ---------------------------------------------------------------------------------
    def next_message_id(self) -> int:
        mid = self._next_message_id
        self._next_message_id = mid % 0xFFFF + 1
        return mid

    def _fragment_size(self) -> int:
        peer = self.negotiated.peer_max_pdu if self.negotiated else 16384
        size = (peer - 6) if peer else (1 << 20)
        return max(2, size - size % 2)

    def _send_pdvs(self, context_id: int, payload, command: bool) -> None:
        """One message part as P-DATA-TF PDUs: in Rust with the GIL released (plain sockets), else the twin."""
        self._event(EVT_PDATA_REQUEST)
        try:
            if isinstance(payload, FileRegion):
                sendfile = _PDATA_SENDFILE_PY if self._tls else _pdata_sendfile()
                sendfile(self.sock, payload.fd, payload.offset, payload.length, context_id, self._fragment_size())
            else:
                send = _PDATA_SEND_PY if self._tls else _pdata_send()
                send(self.sock, payload, context_id, command, self._fragment_size())
        except (OSError, ValueError) as exc:
            self._closed(f"send failed: {exc}")

    def _data_plane_ok(self, sink) -> bool:
        """Whether the data plane may take the data set: a sink that says how, and a state where
        P-DATA-TF PDUs leave the state unchanged (so skipping their events changes nothing)."""
        return (
            hasattr(sink, "native_fd") and TRANSITIONS.get((self.state, EVT_PDATA_RECEIVED), ("", ""))[1] == self.state
        )

    def _receive_data(self, context: int, sink) -> tuple[str, Any]:
        recv = _PDATA_RECV_PY if self._tls else _pdata_recv()
        self.sock.settimeout(self.network_timeout)
        try:
            n, err, stop, extra = recv(self.sock, context, self.max_pdu, sink.native_fd(), self.network_timeout)
        except TimeoutError:
            self._user_abort("timed out waiting for the peer")
            raise AssociationAborted("timed out waiting for the peer") from None
        except (OSError, ValueError) as exc:
            self._closed(f"receive failed: {exc}")
        sink.native_done(n, err)
        return stop, extra

    def send_message(self, context_id: int, command: dict[str, Any], data=None) -> None:
        """Send a DIMSE message: command set, then data set (bytes, memoryview, FileRegion) when given."""
        if context_id not in (self.negotiated.contexts if self.negotiated else {}):
            raise NetworkError(f"presentation context {context_id} is not accepted on this association")
        if data is not None and len(data) % 2:
            raise NetworkError("a data set must have an even length")
        command = dict(command)
        command["CommandDataSetType"] = dimse.NO_DATA_SET if data is None else dimse.HAS_DATA_SET
        self.sock.settimeout(self.network_timeout)
        with self._lock:
            self._send_pdvs(context_id, dimse.encode_command(command), True)
            if data is not None:
                self._send_pdvs(context_id, data, False)

    def receive_message(
        self,
        sink_factory: Callable[[int, dict[str, Any]], Any] | None = None,
        timeout: float | None = None,
        max_data: int = 64 << 20,
    ) -> Message:
        """Receive one DIMSE message.

        ``sink_factory(context_id, command)`` may return an object with
        ``write(memoryview)`` that gets the data set fragments as they arrive
        (the message's ``data`` is then None); otherwise the data set is
        collected, up to ``max_data`` bytes (more aborts the association). A
        peer's A-RELEASE-RQ raises :class:`ReleaseRequested` (answer it with
        :meth:`answer_release`). PDVs of the next message that share a PDU with
        the end of this one are kept for the next call.
        """
        command_buf = bytearray()
        command: dict[str, Any] | None = None
        context: int | None = None
        data_parts: list[bytes] = []
        collected = 0
        sink = None
        expect_data = False
        first = True
        while True:
            header = None
            pdvs = None
            if self._leftover:
                pdvs = [(c, f, memoryview(v)) for c, f, v in self._leftover]
                self._leftover = []
            elif sink is not None and self._data_plane_ok(sink):
                # The data set's fragments go from the socket to the sink in the data plane
                # (Rust, GIL released); it stops at the last one or at what needs us here.
                stop, extra = self._receive_data(context, sink)
                first = False
                if stop == "done":
                    self._leftover = extra
                    return Message(context, command, None)
                if stop == "pdvs":
                    pdvs = [(c, f, memoryview(v)) for c, f, v in extra]
                elif stop == "malformed":
                    self._provider_abort(pdu.REASON_INVALID_PARAMETER, extra)
                else:
                    header = extra
            if pdvs is None:
                kind, obj = self._receive(timeout if first else None, header)
                first = False
                if kind == pdu.A_RELEASE_RQ:
                    if command is not None or command_buf:
                        self._provider_abort(pdu.REASON_UNEXPECTED_PDU, "A-RELEASE-RQ in the middle of a message")
                    raise ReleaseRequested("the peer released the association")
                if kind != pdu.P_DATA_TF:
                    self._provider_abort(pdu.REASON_UNEXPECTED_PDU, f"unexpected PDU {kind:02X}H")
                pdvs = obj.pdvs
            for k, (ctx, control, value) in enumerate(pdvs):
                if context is None:
                    if self.negotiated is None or ctx not in self.negotiated.contexts:
                        self._provider_abort(pdu.REASON_INVALID_PARAMETER, f"PDV on unaccepted context {ctx}")
                    context = ctx
                elif ctx != context:
                    self._provider_abort(pdu.REASON_INVALID_PARAMETER, "PDVs of one message on two contexts")
                is_command = bool(control & 1)
                last = bool(control & 2)
                done: Message | None = None
                if is_command:
                    if command is not None:
                        self._provider_abort(pdu.REASON_UNEXPECTED_PARAMETER, "command fragment after the command")
                    command_buf += value
                    if len(command_buf) > 1 << 16:
                        self._provider_abort(pdu.REASON_INVALID_PARAMETER, "command set larger than 64 KiB")
                    if last:
                        try:
                            command = dimse.decode_command(command_buf)
                        except dimse.DIMSEError as exc:
                            self._provider_abort(pdu.REASON_INVALID_PARAMETER, str(exc))
                        expect_data = command.get("CommandDataSetType", dimse.NO_DATA_SET) != dimse.NO_DATA_SET
                        if not expect_data:
                            done = Message(context, command)
                        elif sink_factory is not None:
                            sink = sink_factory(context, command)
                else:
                    if command is None or not expect_data:
                        self._provider_abort(pdu.REASON_UNEXPECTED_PARAMETER, "data fragment without a command")
                    if sink is not None:
                        sink.write(value)
                    else:
                        collected += len(value)
                        if collected > max_data:
                            self._provider_abort(
                                pdu.REASON_NOT_SPECIFIED,
                                f"data set larger than {max_data} bytes where none was expected",
                            )
                        data_parts.append(bytes(value))
                    if last:
                        done = Message(context, command, None if sink is not None else b"".join(data_parts))
                if done is not None:
                    # The rest of this PDU belongs to the next message: keep it (the buffer is reused).
                    self._leftover = [(c, f, bytes(v)) for c, f, v in pdvs[k + 1 :]]
                    return done


def wait(seconds: float) -> None:
    """Sleep (a seam for tests)."""
    time.sleep(seconds)
