"""An association: the DICOM Upper Layer state machine (PS3.8 section 9.2) over one socket.

The states keep the standard's names (``Sta1`` ... ``Sta13``) and every event
moves the machine through :meth:`Association._fire`, the one place that
looks the event up in :data:`~fastdicom.net.fsm.TRANSITIONS` (PS3.8 Table
9-10), runs the action it names and sets the state the action returns. An
action only decides: it queues the PDUs to send, whether the transport
closes, how long ARTIM runs, and what it indicates to the user (a
:class:`~fastdicom.net.fsm.Indication`); ``_fire`` does the I/O after the
state moved. A PDU that is not allowed in the current state gets the
standard's answer (A-ABORT, provider source), never an exception escaping to
the peer.

One association runs in one thread, blocking on its socket with timeouts:
ARTIM is the socket timeout while waiting for an A-ASSOCIATE-RQ or for the
peer to close (after an A-ABORT we send, ARTIM is zero: we close at once);
``network_timeout`` bounds every other wait so that a silent or slow peer
ends in an A-ABORT, not a hang.

P-DATA goes through :class:`~fastdicom.net.dataplane.DataPlane`: DIMSE
messages (:mod:`fastdicom.net.dimse`) call :meth:`Association.send_pdata`
and :meth:`Association.receive_pdata` / :meth:`Association.receive_data`.
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

from ..dataset.write import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from ..errors import FastDicomError
from . import pdu
from .dataplane import DataPlane, FileRegion, Stop
from .fsm import (
    NEXT_STATES,
    P_DATA_KEEPS_STATE,
    RECEIVED,
    STA1,
    STA2,
    STA3,
    STA4,
    STA5,
    STA6,
    STA7,
    STA8,
    STA9,
    STA10,
    STA11,
    STA12,
    STA13,
    TRANSITIONS,
    Event,
    Indication,
)
from .pdu import AbortReason, AbortSource, PDUError, PduType

#: Largest P-DATA-TF variable field we accept (advertised as our maximum length).
DEFAULT_MAX_PDU = 1 << 20


class NetworkError(FastDicomError):
    """Something went wrong on an association (base class)."""


class AssociationRejected(NetworkError):
    """The peer answered A-ASSOCIATE-RJ."""

    def __init__(self, result: int, source: int, reason: int) -> None:
        kind = "transient" if result == pdu.RejectResult.TRANSIENT else "permanent"
        super().__init__(f"association rejected ({kind}, source {source}, reason {reason})")
        self.result, self.source, self.reason = result, source, reason

    @property
    def transient(self) -> bool:
        return self.result == pdu.RejectResult.TRANSIENT


class AssociationAborted(NetworkError):
    """The association ended by A-ABORT (either side) or by the connection dropping (A-P-ABORT)."""


class ReleaseRequested(NetworkError):
    """The peer asked to release the association while a message was awaited."""


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
    #: The A-ASSOCIATE-RQ (as sent by a requestor, as received by an acceptor).
    request: pdu.AssociateRQ | None = None


class _Close:
    """An action's output: close the transport connection."""


_CLOSE = _Close()


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
        self.negotiated: Negotiated | None = None
        #: Why the association ended by an abort we sent (for logs).
        self.abort_reason: str | None = None
        #: The PS3.8 label of the last action run (for logs).
        self.last_action: str | None = None
        self.dataplane = DataPlane(sock)
        #: Another thread uses the socket too (an SCP's responder): closing only shuts it down.
        self.shared = False
        self._state = STA1
        self._state_lock = threading.Lock()
        self._write_lock = threading.Lock()  # one PDU sequence (a message part, an action's PDU) at a time
        self._hdr = bytearray(6)
        self._body = bytearray(64 * 1024)  # grows to the largest PDU received, never past max_pdu
        # What the running action decided (read and reset by _fire, under the state lock).
        self._out: list[tuple[pdu.PDU, bool] | _Close] | None = None
        self._indication = Indication.NONE
        self._artim: float | None = None
        self._refusal: pdu.AssociateRJ | None = None
        self._sock_timeout: float | None = sock.gettimeout()
        self._fragment = 0  # fragment_size(), once negotiated
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # pragma: no cover - not a TCP socket
            pass

    @property
    def state(self) -> str:
        """The PS3.8 state (``"Sta1"`` ... ``"Sta13"``)."""
        return self._state

    @property
    def is_established(self) -> bool:
        return self._state == STA6

    @property
    def duplex(self) -> bool:
        """Whether one thread may receive while another sends (not on TLS: one SSL object must not be used
        from two threads at once)."""
        return not isinstance(self.sock, ssl.SSLSocket)

    @property
    def agreement(self) -> Negotiated:
        """What negotiation agreed, on an established association (NetworkError before that)."""
        if self.negotiated is None:
            raise NetworkError("the association is not established")
        return self.negotiated

    # -- the state machine -----------------------------------------------------------------------
    def _fire(self, event: Event, **data: Any) -> Indication:
        """Run the action PS3.8 Table 9-10 names for ``event`` in the current state; move to the state it returns.

        ``data`` goes to the action (the PDU received, why, which A-ABORT reason). The action's
        PDUs are sent and the transport closed after the state moved, outside the state lock; in
        Sta13 the association then waits for the peer to close, as long as ARTIM runs.
        """
        with self._state_lock:  # a responder thread may send while this one receives
            cell = _CELLS[self._state].get(event)
            if cell is None:
                raise NetworkError(f"{event.name} (Evt{event.value}) is not valid in {self._state}")
            action, run, allowed = cell
            self._out, self._indication = None, Indication.NONE
            nxt = run(self, data)
            if nxt not in allowed:  # pragma: no cover - a bug in an action
                raise AssertionError(f"{action} went to {nxt}")
            self._state, self.last_action = nxt, action
            out, indication = self._out, self._indication
        if out is not None:
            for item in out:
                if isinstance(item, _Close):
                    self._close_transport()
                else:
                    self._send_pdu(*item)
        if self._state == STA13:
            self._await_close()
        return indication

    def _emit(self, p: pdu.PDU, urgent: bool = False) -> None:
        """Queue a PDU (``urgent``: an A-ABORT, which never waits long for another thread's PDU)."""
        self._output((p, urgent))

    def _output(self, item: tuple[pdu.PDU, bool] | _Close) -> None:
        if self._out is None:
            self._out = []
        self._out.append(item)

    # AE: association establishment (PS3.8 Table 9-6)
    def _ae_1(self, data: dict[str, Any]) -> str:
        return STA4  # the transport connection was opened by request()

    def _ae_2(self, data: dict[str, Any]) -> str:
        self._emit(data["pdu"])
        return STA5

    def _ae_3(self, data: dict[str, Any]) -> str:
        self._indication = Indication.A_ASSOCIATE_ACCEPTED
        return STA6

    def _ae_4(self, data: dict[str, Any]) -> str:
        self._indication = Indication.A_ASSOCIATE_REJECTED
        self._output(_CLOSE)
        return STA1

    def _ae_5(self, data: dict[str, Any]) -> str:
        self._artim = self.artim_timeout
        return STA2

    def _ae_6(self, data: dict[str, Any]) -> str:
        if self._refusal is not None:  # not acceptable to the service provider (a local limit)
            self._emit(self._refusal)
            self._artim = self.artim_timeout
            return STA13
        self._indication = Indication.A_ASSOCIATE_INDICATION
        return STA3

    def _ae_7(self, data: dict[str, Any]) -> str:
        self._emit(data["pdu"])
        return STA6

    def _ae_8(self, data: dict[str, Any]) -> str:
        self._emit(data["pdu"])
        self._artim = self.artim_timeout
        return STA13

    # DT: data transfer (Table 9-7); the data plane sends and receives the PDUs themselves.
    def _dt_1(self, data: dict[str, Any]) -> str:
        return STA6

    def _dt_2(self, data: dict[str, Any]) -> str:
        self._indication = Indication.P_DATA_INDICATION
        return STA6

    # AR: release (Table 9-8)
    def _ar_1(self, data: dict[str, Any]) -> str:
        self._emit(pdu.ReleaseRQ())
        return STA7

    def _ar_2(self, data: dict[str, Any]) -> str:
        self._indication = Indication.A_RELEASE_INDICATION
        return STA8

    def _ar_3(self, data: dict[str, Any]) -> str:
        self._indication = Indication.A_RELEASE_CONFIRMATION
        self._output(_CLOSE)
        return STA1

    def _ar_4(self, data: dict[str, Any]) -> str:
        self._emit(pdu.ReleaseRP())
        self._artim = self.artim_timeout
        return STA13

    def _ar_5(self, data: dict[str, Any]) -> str:
        self._output(_CLOSE)  # the peer closed: our end goes too
        return STA1

    def _ar_6(self, data: dict[str, Any]) -> str:
        self._indication = Indication.P_DATA_INDICATION
        return STA7

    def _ar_7(self, data: dict[str, Any]) -> str:
        return STA8

    def _ar_8(self, data: dict[str, Any]) -> str:
        self._indication = Indication.A_RELEASE_INDICATION  # a release collision
        return STA9 if self.requestor else STA10

    def _ar_9(self, data: dict[str, Any]) -> str:
        self._emit(pdu.ReleaseRP())
        return STA11

    def _ar_10(self, data: dict[str, Any]) -> str:
        self._indication = Indication.A_RELEASE_CONFIRMATION
        return STA12

    # AA: abort (Table 9-9)
    def _aa_1(self, data: dict[str, Any]) -> str:
        source, reason = data.get("source", AbortSource.SERVICE_USER), data.get("reason", AbortReason.NOT_SPECIFIED)
        self._emit(pdu.Abort(source, reason), urgent=True)
        self._artim = 0.0  # nothing more to say: close without waiting for the peer
        return STA13

    def _aa_2(self, data: dict[str, Any]) -> str:
        self._output(_CLOSE)
        return STA1

    def _aa_3(self, data: dict[str, Any]) -> str:
        abort = data["pdu"]
        user = abort.source == AbortSource.SERVICE_USER
        self._indication = Indication.A_ABORT_INDICATION if user else Indication.A_P_ABORT_INDICATION
        self._output(_CLOSE)
        return STA1

    def _aa_4(self, data: dict[str, Any]) -> str:
        self._indication = Indication.A_P_ABORT_INDICATION
        self._output(_CLOSE)
        return STA1

    def _aa_5(self, data: dict[str, Any]) -> str:
        self._output(_CLOSE)
        return STA1

    def _aa_6(self, data: dict[str, Any]) -> str:
        return STA13  # ignored

    def _aa_7(self, data: dict[str, Any]) -> str:
        self._emit(pdu.Abort(AbortSource.SERVICE_PROVIDER, data.get("reason", AbortReason.UNEXPECTED_PDU)), True)
        return STA13

    def _aa_8(self, data: dict[str, Any]) -> str:
        self._emit(pdu.Abort(AbortSource.SERVICE_PROVIDER, data.get("reason", AbortReason.UNEXPECTED_PDU)), True)
        self._indication = Indication.A_P_ABORT_INDICATION
        self._artim = 0.0
        return STA13

    # -- transport -----------------------------------------------------------------------------
    def _timeout(self, seconds: float | None) -> None:
        """Set the socket's timeout (a system call: only when it changes; the data plane's twins restore theirs)."""
        if seconds != self._sock_timeout:
            self.sock.settimeout(seconds)
            self._sock_timeout = seconds

    def _send_pdu(self, p: pdu.PDU, urgent: bool) -> None:
        """Send one PDU an action queued, never into the middle of another thread's PDUs (an urgent one is
        skipped if that thread is stuck). Failing to send any but an A-ABORT is the connection dropping."""
        if not self._write_lock.acquire(timeout=1.0 if urgent else -1):
            return
        failed: Exception | None = None
        try:
            self._timeout(self.network_timeout)
            self.sock.sendall(pdu.encode(p))
        except (OSError, ValueError) as exc:
            failed = exc
        finally:
            self._write_lock.release()
        if failed is not None and not urgent:
            self._closed(f"send failed: {failed}")

    def _await_close(self) -> None:
        """Sta13: wait while ARTIM runs for the peer to close (Evt17), else ARTIM expires (Evt18)."""
        closed = False
        if self._artim:
            try:
                self._timeout(self._artim)
                while self.sock.recv(4096):
                    pass
                closed = True
            except (OSError, ValueError):
                closed = False
        self._fire(Event.TRANSPORT_CLOSED if closed else Event.ARTIM_EXPIRED)

    def _close_transport(self) -> None:
        """Close the connection. While another thread uses the socket (``shared``), only shut it down:
        that wakes a thread blocked on it, and the descriptor number cannot be reused by a new
        connection under it; the owner calls :meth:`release_socket` later."""
        if self.shared:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            return
        self.release_socket()

    def release_socket(self) -> None:
        """Close the socket for good (its owner, once no other thread uses it)."""
        with contextlib.suppress(OSError):
            self.sock.close()

    def _closed(self, why: str) -> NoReturn:
        """The connection is gone (Evt17): A-P-ABORT."""
        if self._state != STA1:
            with contextlib.suppress(NetworkError):
                self._fire(Event.TRANSPORT_CLOSED)
        self._close_transport()
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

    def _read_pdu(self, timeout: float | None, header: bytes | None = None) -> tuple[int, pdu.PDU]:
        """Read one PDU; its length is checked against the limit before anything is allocated.

        ``timeout`` bounds the whole PDU, not each read. ``header``: its 6-byte
        header, already read by the data plane.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if timeout != self._sock_timeout:
            self._timeout(timeout)
        hdr = memoryview(self._hdr)
        if header is not None:
            hdr[:] = header
        elif not self._recv_exact(hdr, deadline):
            self._closed("connection closed by the peer")
        kind, _, length = struct.unpack(">BBL", hdr)
        if kind not in RECEIVED:
            raise PDUError(f"unrecognized PDU type {kind:02X}H", AbortReason.UNRECOGNIZED_PDU)
        limit = self.max_pdu if kind == PduType.P_DATA_TF else pdu.MAX_ASSOCIATE_PDU
        if length > limit:
            raise PDUError(f"PDU of {length} bytes exceeds the maximum length {limit}")
        if length > len(self._body):
            self._body = bytearray(length)
        body = memoryview(self._body)[:length]
        if not self._recv_exact(body, deadline):
            self._closed("connection closed inside a PDU")
        return kind, pdu.decode(kind, body)

    def _receive(self, timeout: float | None = None, header: bytes | None = None) -> tuple[int, pdu.PDU, Indication]:
        """The next PDU and what the machine made of it; aborts and closing raise AssociationAborted."""
        try:
            kind, obj = self._read_pdu(self.network_timeout if timeout is None else timeout, header)
        except TimeoutError:
            self._user_abort("timed out waiting for the peer")
            raise AssociationAborted("timed out waiting for the peer") from None
        except PDUError as exc:
            self.provider_abort(exc.reason, str(exc))
        indication = self._fire(RECEIVED[kind], pdu=obj)
        if indication is Indication.A_ABORT_INDICATION or indication is Indication.A_P_ABORT_INDICATION:
            if isinstance(obj, pdu.Abort):
                raise AssociationAborted(f"A-ABORT received (source {obj.source}, reason {obj.reason})")
            self.abort_reason = f"unexpected PDU {kind:02X}H in this state"
            raise AssociationAborted(f"A-ABORT sent: {self.abort_reason}")
        return kind, obj, indication

    def provider_abort(self, reason: int, why: str) -> NoReturn:
        """The peer broke the protocol (Evt19): A-ABORT (provider source) with ``reason``, close, raise."""
        self.abort_reason = why
        with contextlib.suppress(NetworkError):
            self._fire(Event.INVALID_PDU, reason=reason, source=AbortSource.SERVICE_PROVIDER)
        self._close_transport()
        raise AssociationAborted(f"A-ABORT sent: {why}")

    def _user_abort(self, why: str) -> None:
        self.abort_reason = why
        if (self._state, Event.A_ABORT_REQUEST) in TRANSITIONS:
            with contextlib.suppress(NetworkError):
                self._fire(Event.A_ABORT_REQUEST)
        self.close()

    def abort(self) -> None:
        """Send A-ABORT and close."""
        self._user_abort("aborted by the local user")

    def close(self) -> None:
        """Drop the connection without a word (the peer sees an A-P-ABORT)."""
        self._close_transport()
        if self._state != STA1:
            with contextlib.suppress(NetworkError):
                self._fire(Event.TRANSPORT_CLOSED)

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
        assoc._fire(Event.A_ASSOCIATE_REQUEST)
        assoc._fire(Event.TRANSPORT_CONFIRM, pdu=rq)
        _kind, obj, _indication = assoc._receive()
        if isinstance(obj, pdu.AssociateRJ):
            raise AssociationRejected(obj.result, obj.source, obj.reason)
        assert isinstance(obj, pdu.AssociateAC)  # AE-3: anything else was aborted (AA-8)
        assoc.negotiated = _requested(assoc, rq, obj, async_ops is not None)
        return assoc

    @classmethod
    def accept(
        cls,
        sock: socket.socket,
        negotiate: Callable[[pdu.AssociateRQ], pdu.AssociateAC | pdu.AssociateRJ],
        *,
        refusal: pdu.AssociateRJ | None = None,
        max_pdu: int = DEFAULT_MAX_PDU,
        network_timeout: float = 60.0,
        artim_timeout: float = 30.0,
        request_timeout: float | None = None,
    ) -> Association | None:
        """Run the acceptor side up to an established association (None if it was rejected or failed).

        ``refusal``: the service provider cannot take this association (a local
        limit): AE-6 answers any A-ASSOCIATE-RQ with it. Otherwise ``negotiate``
        gets the A-ASSOCIATE-RQ and returns the AC or RJ to send.
        ``request_timeout``: how long the A-ASSOCIATE-RQ may take to come (default ``artim_timeout``).
        """
        assoc = cls(
            sock, requestor=False, max_pdu=max_pdu, network_timeout=network_timeout, artim_timeout=artim_timeout
        )
        assoc._refusal = refusal
        assoc._fire(Event.TRANSPORT_INDICATION)
        try:
            kind, obj = assoc._read_pdu(artim_timeout if request_timeout is None else request_timeout)
        except TimeoutError:
            assoc._fire(Event.ARTIM_EXPIRED)
            return None
        except PDUError as exc:
            assoc._fire(Event.INVALID_PDU, reason=exc.reason, source=AbortSource.SERVICE_PROVIDER)
            return None
        except AssociationAborted:
            return None
        indication = assoc._fire(
            RECEIVED[kind], pdu=obj, reason=AbortReason.UNEXPECTED_PDU, source=AbortSource.SERVICE_PROVIDER
        )
        if indication is not Indication.A_ASSOCIATE_INDICATION:
            return None
        assert isinstance(obj, pdu.AssociateRQ)
        answer = negotiate(obj)
        if isinstance(answer, pdu.AssociateRJ):
            assoc._fire(Event.A_ASSOCIATE_REJECT, pdu=answer)
            return None
        assoc._fire(Event.A_ASSOCIATE_ACCEPT, pdu=answer)
        assoc.negotiated = _accepted(obj, answer)
        return assoc

    # -- release -------------------------------------------------------------------------------
    def _release_response_due(self) -> bool:
        return (self._state, Event.A_RELEASE_RESPONSE) in TRANSITIONS

    def release(self) -> None:
        """A-RELEASE (requestor or acceptor side) and close; a collision is resolved as PS3.8 says."""
        if (self._state, Event.A_RELEASE_REQUEST) not in TRANSITIONS:
            self.close()
            return
        self._fire(Event.A_RELEASE_REQUEST)
        while self._state != STA1:
            try:
                self._receive()  # P-DATA in Sta7 (AR-6) is a late answer: nothing waits for it any more
            except AssociationAborted:
                return
            if self._release_response_due():  # Sta9 (AR-9) or Sta12 (AR-4)
                self._fire(Event.A_RELEASE_RESPONSE)

    def answer_release(self) -> None:
        """After the peer's A-RELEASE-RQ (Sta8): send A-RELEASE-RP and wait for the close."""
        if self._release_response_due():
            self._fire(Event.A_RELEASE_RESPONSE)
        else:
            self.close()

    # -- P-DATA ----------------------------------------------------------------------------------
    def sending(self) -> threading.Lock:
        """The lock to hold around a sequence of PDUs (a DIMSE message: command and data set)."""
        return self._write_lock

    def _set_fragment(self) -> int:
        self._fragment = self.fragment_size() if self.negotiated else 0
        return self._fragment or self.fragment_size()

    def fragment_size(self) -> int:
        """The largest PDV value the peer takes: even, within its maximum length (0: unlimited, 1 MiB here)."""
        peer = self.negotiated.peer_max_pdu if self.negotiated else 16384
        size = (peer - 6) if peer else (1 << 20)
        return max(2, size - size % 2)

    def send_pdata(self, context_id: int, payload: bytes | memoryview | FileRegion, command: bool) -> None:
        """One message part as P-DATA-TF PDUs (Evt9), by the data plane; hold :meth:`sending` around it."""
        self._fire(Event.P_DATA_REQUEST)
        if self._sock_timeout != self.network_timeout:
            self._timeout(self.network_timeout)
        try:
            fragment = self._fragment or self._set_fragment()
            if isinstance(payload, FileRegion):
                self.dataplane.sendfile(self.sock, payload.fd, payload.offset, payload.length, context_id, fragment)
            else:
                self.dataplane.send(self.sock, payload, context_id, command, fragment)
        except (OSError, ValueError) as exc:
            self._closed(f"send failed: {exc}")

    def receive_pdata(self, timeout: float | None = None, header: bytes | None = None) -> list[pdu.Pdv]:
        """The PDVs of the next P-DATA-TF PDU. The peer's A-RELEASE-RQ raises :class:`ReleaseRequested`."""
        kind, obj, indication = self._receive(timeout, header)
        if indication is Indication.A_RELEASE_INDICATION:
            raise ReleaseRequested("the peer released the association")
        if not isinstance(obj, pdu.PDataTF):  # pragma: no cover - the table aborts on anything else
            self.provider_abort(AbortReason.UNEXPECTED_PDU, f"unexpected PDU {kind:02X}H")
        return obj.pdvs

    def data_plane_may_receive(self) -> bool:
        """Whether the data plane may take P-DATA-TF PDUs itself: their events (Evt10) leave this state as it
        is, so skipping them changes nothing."""
        return self._state in P_DATA_KEEPS_STATE

    def receive_data(self, context_id: int, fd: int, hasher: Any = None) -> tuple[int, int, Stop, Any]:
        """One data set's fragments from the socket to ``fd`` by the data plane (see :class:`DataPlane`);
        ``hasher`` is fed the bytes written."""
        try:
            return self.dataplane.receive(self.sock, context_id, self.max_pdu, fd, self.network_timeout, hasher)
        except TimeoutError:
            self._user_abort("timed out waiting for the peer")
            raise AssociationAborted("timed out waiting for the peer") from None
        except (OSError, ValueError) as exc:
            self._closed(f"receive failed: {exc}")


_ACTIONS: dict[str, Callable[[Association, dict[str, Any]], str]] = {
    label: getattr(Association, "_" + label.lower().replace("-", "_"))
    for label in sorted({action for action in TRANSITIONS.values()})
}
#: TRANSITIONS by state, each cell with its action's method and allowed next states (what _fire looks up).
_CELLS: dict[str, dict[Event, tuple[str, Callable[[Association, dict[str, Any]], str], frozenset[str]]]] = {}
for (_state, _event), _label in TRANSITIONS.items():
    _CELLS.setdefault(_state, {})[_event] = (_label, _ACTIONS[_label], NEXT_STATES[_label])
_CELLS.setdefault(STA1, {})


def _requested(assoc: Association, rq: pdu.AssociateRQ, ac: pdu.AssociateAC, async_ops: bool) -> Negotiated:
    """What the requestor learns from the A-ASSOCIATE-AC (an answer to what was not proposed aborts)."""
    proposed = {pc.id: pc for pc in rq.contexts}
    neg = Negotiated(rq.calling_ae, rq.called_ae, request=rq)
    for pc in ac.contexts:
        if pc.id not in proposed:
            assoc.provider_abort(
                AbortReason.INVALID_PDU_PARAMETER_VALUE, f"A-ASSOCIATE-AC answers unproposed context {pc.id}"
            )
        pc.abstract_syntax = proposed[pc.id].abstract_syntax
        neg.results.append(pc)
        if pc.accepted:
            if pc.transfer_syntax not in proposed[pc.id].transfer_syntaxes:
                assoc.provider_abort(
                    AbortReason.INVALID_PDU_PARAMETER_VALUE,
                    f"context {pc.id} accepted with an unproposed transfer syntax",
                )
            neg.contexts[pc.id] = pc
    ui = ac.user_info
    neg.peer_max_pdu = ui.max_length
    neg.peer_implementation_class_uid = ui.implementation_class_uid
    neg.peer_implementation_version_name = ui.implementation_version_name
    neg.roles = ui.roles
    neg.user_identity_response = ui.user_identity_response
    neg.sop_class_extended = ui.sop_class_extended
    if async_ops and ui.async_ops is not None:
        neg.async_ops = ui.async_ops
    return neg


def _accepted(rq: pdu.AssociateRQ, ac: pdu.AssociateAC) -> Negotiated:
    """What the acceptor agreed to."""
    neg = Negotiated(rq.calling_ae, rq.called_ae, request=rq)
    for pc in ac.contexts:
        neg.results.append(pc)
        if pc.accepted:
            neg.contexts[pc.id] = pc
    neg.peer_max_pdu = rq.user_info.max_length
    neg.peer_implementation_class_uid = rq.user_info.implementation_class_uid
    neg.peer_implementation_version_name = rq.user_info.implementation_version_name
    neg.roles = ac.user_info.roles
    neg.sop_class_extended = ac.user_info.sop_class_extended
    if ac.user_info.async_ops is not None:
        neg.async_ops = (ac.user_info.async_ops[1], ac.user_info.async_ops[0])
    return neg


__all__ = [
    "DEFAULT_MAX_PDU",
    "Association",
    "AssociationAborted",
    "AssociationRejected",
    "FileRegion",
    "Negotiated",
    "NetworkError",
    "ReleaseRequested",
]
