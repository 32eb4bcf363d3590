"""What a service is: the SOP classes it serves, where an announced data set goes, and handling requests.

A :class:`Service` serves some abstract syntaxes (SOP classes) and handles
some DIMSE commands. The :class:`~fastdicom.services.dispatch.Dispatcher`
asks it, for each request, where the request's data set goes
(:meth:`Service.sink`: a :class:`RequestSink`, or None to have it collected
in memory) and then to handle a batch of its requests
(:meth:`Service.handle`), answering each through ``respond``. A batch is the
service's requests that were waiting together, in order; a service that
gains from it (storage: one group commit) settles every outcome before it
answers any.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..dictionary._uids import UIDS
from ..dictionary.uid import TRANSFER_SYNTAXES, UID
from ..net import dimse
from ..net.association import Association, Negotiated, NetworkError
from ..net.dataplane import DataSink
from ..net.dimse import DimseChannel, Message
from ..net.server import AssociationInfo

#: Every transfer syntax of the registry: what a service that never decodes a data set can take.
ALL_TRANSFER_SYNTAXES = frozenset(TRANSFER_SYNTAXES.values())


def parse_address(address: str) -> tuple[str, str, int]:
    """``"AET@host:port"`` (``[v6 address]`` allowed) -> ``(ae_title, host, port)``."""
    m = re.fullmatch(r"\s*([^@]{1,16})@(\[[^\]]+\]|[^:\[\]]+):(\d{1,5})\s*", address)
    if not m:
        raise ValueError(f"{address!r} is not AET@host:port")
    host = m.group(2)
    if host.startswith("["):
        host = host[1:-1]
    return m.group(1), host, int(m.group(3))


def sop_class(keyword: str) -> UID:
    """A SOP class UID by its PS3.6 keyword."""
    for uid, entry in UIDS.items():
        if entry[4] == keyword:
            return UID(uid)
    raise KeyError(f"no UID with keyword {keyword!r} in the registry")


class RequestSink(DataSink, Protocol):
    """A :class:`~fastdicom.net.dataplane.DataSink` a request's data set can also be dropped from."""

    def discard(self) -> None: ...


class Drain:
    """Takes a data set nobody asked for, and drops it."""

    def write(self, view: memoryview) -> None:
        pass

    def data_plane_fd(self) -> int:
        return -1

    def data_plane_done(self, received: int, errno: int) -> None:
        pass

    def discard(self) -> None:
        pass


@dataclass
class Request:
    """A DIMSE request received on an association."""

    context_id: int
    command: dict[str, Any]
    #: The abstract syntax and transfer syntax of the presentation context it came on.
    abstract_syntax: str
    transfer_syntax: str
    peer: AssociationInfo
    #: Where its data set went (what :meth:`Service.sink` gave), if it had one.
    sink: RequestSink | None = None
    #: Its data set, when it was collected in memory.
    data: bytes | None = None
    #: Set when the peer sends C-CANCEL for it (a service that runs long checks it).
    cancelled: bool = False
    #: Requests to the peer on this same association (N-EVENT-REPORT...), while it lasts.
    outbound: Outbound | None = None
    #: What negotiation agreed on its association (roles, SOP Class Extended Negotiation, contexts).
    agreement: Negotiated | None = None

    @property
    def message_id(self) -> int:
        return int(self.command.get("MessageID", 0))


class Outbound:
    """Requests an SCP sends to its peer on the peer's own association, from any thread, while it lasts.

    The association's receiving loop (the dispatcher) hands every response
    it reads to :meth:`deliver`; :meth:`request` sends a request with a
    message ID of ours and waits for its answer. Once the association ends,
    :meth:`close` fails whatever waits, and requests raise NetworkError (the
    caller then uses another association). Not on TLS (one thread per SSL
    object): :attr:`open` is False there.
    """

    def __init__(self, channel: DimseChannel, association: Association) -> None:
        self._channel, self._assoc = channel, association
        self._cond = threading.Condition()
        self._answers: dict[int, Message | None] = {}  # message ID -> its response, once here
        self._sending = 0
        self._closed = False
        #: Whether a request was ever sent (the owner then closes the socket itself, see close).
        self.used = False

    @property
    def open(self) -> bool:
        return not self._closed and self._assoc.duplex and self._assoc.is_established

    def request(self, context_id: int, command: dict[str, Any], data: Any = None, *, timeout: float = 60.0) -> Message:
        """Send ``command`` (its MessageID is set here) and return the response; NetworkError if the
        association ends first or no answer comes within ``timeout``."""
        with self._cond:
            if not self.open:
                raise NetworkError("the association is closed")
            self._sending += 1
            self.used = True
            self._assoc.shared = True  # the receiving thread's close only shuts the socket down
            mid = self._channel.next_message_id()
            self._answers[mid] = None
        try:
            self._channel.send_message(context_id, {**command, "MessageID": mid}, data)
        except BaseException:
            with self._cond:
                self._answers.pop(mid, None)
            raise
        finally:
            with self._cond:
                self._sending -= 1
                self._cond.notify_all()
        with self._cond:
            self._cond.wait_for(lambda: self._answers.get(mid) is not None or self._closed, timeout)
            answer = self._answers.pop(mid, None)
        if answer is None:
            raise NetworkError("the association ended before the answer" if self._closed else "no answer in time")
        return answer

    @property
    def in_thread(self) -> bool:
        """Whether :meth:`request_in_thread` may be used: the association is established and not duplex (TLS),
        so the thread serving it (no responder on such a socket) is the only one that reads it."""
        return not self._closed and not self._assoc.duplex and self._assoc.is_established

    def request_in_thread(
        self, context_id: int, command: dict[str, Any], data: Any, for_request: Request, *, timeout: float = 60.0
    ) -> Message:
        """:meth:`request` for the thread that serves the association (see :attr:`in_thread`): it reads the
        answer itself. A C-CANCEL of ``for_request`` read meanwhile marks it cancelled; any other request
        (the peer broke the operations window) raises NetworkError."""
        mid = self._channel.next_message_id()
        self.used = True
        self._channel.send_message(context_id, {**command, "MessageID": mid}, data)
        while True:
            msg = self._channel.receive_message(timeout=timeout)
            field_ = msg.command.get("CommandField")
            answered = msg.command.get("MessageIDBeingRespondedTo")
            if field_ == dimse.C_CANCEL_RQ:
                if answered == for_request.message_id:
                    for_request.cancelled = True
                continue
            if isinstance(field_, int) and field_ & 0x8000:
                if answered == mid:
                    return msg
                continue  # an answer to nothing we wait for
            raise NetworkError("a request arrived while a sub-operation was waiting (no operations window)")

    def deliver(self, message: Message) -> bool:
        """A response read on the association: True if it answers one of our requests."""
        mid = message.command.get("MessageIDBeingRespondedTo")
        with self._cond:
            if mid not in self._answers:
                return False
            self._answers[mid] = message
            self._cond.notify_all()
        return True

    def close(self) -> None:
        """The association ended: fail the waiting requests; return once no thread is sending any more."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._sending == 0, 30.0)


#: ``respond(request, command, data=None)``: send one response (a service may send several: pending ones).
Respond = Callable[..., None]


def response(request: Request, status: int, **elements: Any) -> dict[str, Any]:
    """The response command set for ``request``: its command field, the message it answers, the affected SOP
    class and instance it named, ``status`` and any other ``elements`` (None values are left out)."""
    cmd = request.command
    out: dict[str, Any] = {
        "CommandField": int(cmd["CommandField"]) | 0x8000,
        "MessageIDBeingRespondedTo": cmd.get("MessageID", 0),
    }
    for key in ("AffectedSOPClassUID", "AffectedSOPInstanceUID"):
        if key in cmd:
            out[key] = cmd[key]
    out["Status"] = status
    for k, v in elements.items():
        if v is not None:
            out[k] = v
    return out


class Service(Protocol):
    """A DIMSE service on the SCP side of an association."""

    #: The command fields of the requests it handles (``dimse.C_STORE_RQ``...).
    commands: frozenset[int]

    def transfer_syntaxes(self, abstract_syntax: str) -> Collection[str]:
        """The transfer syntaxes it takes for ``abstract_syntax`` (empty: it does not serve it)."""
        ...

    def sink(self, request: Request) -> RequestSink | None:
        """Where the data set of ``request`` goes as it arrives (None: collected in memory)."""
        ...

    def handle(self, requests: Sequence[Request], respond: Respond) -> None:
        """Handle requests that were waiting together, in order, answering each with ``respond``."""
        ...

    def close(self) -> None:
        """The server stopped."""
        ...
