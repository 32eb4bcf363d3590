"""DIMSE dispatch: the requests of an association to the services that handle them, answers in order.

:class:`Dispatcher` is what an :class:`~fastdicom.net.server.AssociationServer`
runs its associations with: for negotiation it says which abstract syntaxes
its services take, and for each established association it receives the
requests (a data set goes to the sink its service gives, streamed by the data
plane), routes each by its command field and presentation context, and
answers a C-ECHO, C-STORE... through the service. A command no service
handles is answered 0x0211 (unrecognized operation); a C-CANCEL marks the
request it names (:attr:`~fastdicom.services.base.Request.cancelled`).

When the peer may keep several operations outstanding (an asynchronous
operations window), the association's thread goes on receiving while a
responder thread handles what waits, as one batch per service (storage: a
group commit), and sends the answers in order; A-RELEASE-RP waits for every
answer. The responder's queue holds typed items: a :class:`Job`, a
:class:`Barrier` (set once everything before it is answered) and the stop.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..net import dimse, pdu
from ..net.association import Association, AssociationAborted, NetworkError, ReleaseRequested
from ..net.dimse import DimseChannel, Status
from ..net.server import AssociationInfo
from .base import Drain, Outbound, Request, RequestSink, Respond, Service, response


class _Unrecognized:
    """Answers a command no service handles: 0x0211, unrecognized operation (PS3.7 C.5.6)."""

    commands: frozenset[int] = frozenset()

    def transfer_syntaxes(self, abstract_syntax: str) -> Collection[str]:
        return ()

    def sink(self, request: Request) -> RequestSink | None:
        return Drain()

    def handle(self, requests: Sequence[Request], respond: Respond) -> None:
        for r in requests:
            respond(r, response(r, Status.UNRECOGNIZED_OPERATION))

    def close(self) -> None:
        pass


_UNRECOGNIZED = _Unrecognized()


@dataclass
class Job:
    """A request for its service."""

    service: Service
    request: Request


@dataclass
class Barrier:
    """Set once every item before it is answered."""

    done: threading.Event = field(default_factory=threading.Event)


class _Stop:
    """The last item: the association's thread receives nothing more."""


#: The requests a C-CANCEL may name (PS3.7 9.3.2.3, 9.3.3.3, 9.3.4.3).
CANCELLABLE = frozenset({dimse.C_FIND_RQ, dimse.C_GET_RQ, dimse.C_MOVE_RQ})


class Dispatcher:
    """Routes the requests of each association to ``services`` (the first that serves a context wins).

    ``requestor_scp``: SOP classes for which a requestor may take the SCP role (role selection; e.g. a
    Storage Commitment SCP reporting on a new association to the SCU that listens).
    """

    def __init__(
        self, services: Sequence[Service], *, max_data: int = 64 << 20, requestor_scp: Collection[str] = ()
    ) -> None:
        self.services = list(services)
        self.max_data = max_data
        self.requestor_scp = frozenset(requestor_scp)
        self._routes: dict[tuple[int, str], Service] = {}

    # -- negotiation (net.negotiation.Supported) ---------------------------------------------------
    def transfer_syntaxes(self, abstract_syntax: str) -> Collection[str]:
        for service in self.services:
            accepted = service.transfer_syntaxes(abstract_syntax)
            if accepted:
                return accepted
        return ()

    def requestor_roles(self, proposed: pdu.RoleSelection) -> pdu.RoleSelection:
        # Both bits describe the requestor: it may be SCU as proposed, SCP only where we said so.
        scp = proposed.scp and proposed.sop_class_uid in self.requestor_scp
        return pdu.RoleSelection(proposed.sop_class_uid, proposed.scu, scp)

    def extended_negotiation(self, sop_class_uid: str, info: bytes) -> bytes | None:
        """The answer to a SOP Class Extended Negotiation item: the service serving the class gives it."""
        for service in self.services:
            answer = getattr(service, "extended_negotiation", None)
            if answer is not None and service.transfer_syntaxes(sop_class_uid):
                return answer(sop_class_uid, info)  # type: ignore[no-any-return]
        return None

    def close(self) -> None:
        for service in self.services:
            service.close()

    # -- one association -------------------------------------------------------------------------
    def route(self, command_field: int, abstract_syntax: str) -> Service:
        """The service for a request: one that handles the command and serves the context's abstract syntax,
        else one that handles the command (it refuses the SOP class itself), else the unrecognized answer."""
        key = (command_field, abstract_syntax)
        service = self._routes.get(key)
        if service is None:
            candidates = [s for s in self.services if command_field in s.commands]
            served = [s for s in candidates if s.transfer_syntaxes(abstract_syntax)]
            service = (served or candidates or [_UNRECOGNIZED])[0]
            if len(self._routes) < 4096:  # (a peer naming ever new abstract syntaxes gets no cache)
                self._routes[key] = service
        return service

    def run(self, jobs: Sequence[Job], respond: Respond) -> None:
        """Handle jobs in order: each run of consecutive jobs of one service is one batch."""
        if len(jobs) == 1:
            jobs[0].service.handle([jobs[0].request], respond)
            return
        for service, run in itertools.groupby(jobs, key=lambda j: j.service):
            service.handle([j.request for j in run], respond)

    def serve(self, assoc: Association, info: AssociationInfo) -> None:
        """Receive and answer requests until the association ends (AssociationHandler.serve)."""
        channel = DimseChannel(assoc)
        outbound = Outbound(channel, assoc)
        announced: list[tuple[Request, Service] | None] = [None]  # the request whose data set is arriving

        def request_for(ctx: int, command: dict[str, Any]) -> Request:
            pc = assoc.agreement.contexts[ctx]
            return Request(
                ctx,
                command,
                pc.abstract_syntax or "",
                pc.transfer_syntax or "",
                info,
                outbound=outbound,
                agreement=assoc.agreement,
            )

        def sink_factory(ctx: int, command: dict[str, Any]) -> RequestSink | None:
            request = request_for(ctx, command)
            field_ = command.get("CommandField")
            service = self.route(field_, request.abstract_syntax) if isinstance(field_, int) else _UNRECOGNIZED
            sink = service.sink(request) if isinstance(field_, int) and not field_ & 0x8000 else Drain()
            request.sink = sink
            announced[0] = (request, service)
            return sink

        def respond(request: Request, command: dict[str, Any], data: Any = None) -> None:
            channel.send_message(request.context_id, command, data)

        window = assoc.agreement.async_ops[1]
        responder = _Responder(self, assoc, respond, window) if window != 1 and assoc.duplex else None
        if responder is not None:
            assoc.shared = True  # both threads use the socket: closing waits for the responder
        try:
            while True:
                try:
                    msg = channel.receive_message(sink_factory, max_data=self.max_data)
                except ReleaseRequested:
                    if responder is not None:
                        responder.drain()  # every answer goes out before the A-RELEASE-RP
                    assoc.answer_release()
                    return
                if responder is not None and responder.failed is not None:
                    raise AssociationAborted(f"answering failed: {responder.failed}")
                held, announced[0] = announced[0], None
                field_ = msg.command.get("CommandField")
                if not isinstance(field_, int) or field_ & 0x8000:
                    if held is not None and held[0].sink is not None:
                        held[0].sink.discard()
                    outbound.deliver(msg)  # an answer to a request of ours, or to nothing we asked: ignored
                    continue
                if field_ == dimse.C_CANCEL_RQ:
                    if responder is not None:  # (without one, nothing is in flight while we read)
                        responder.cancel(int(msg.command.get("MessageIDBeingRespondedTo", -1)))
                    continue
                if held is not None:
                    request, service = held
                    if request.sink is None:
                        request.data = msg.data
                else:
                    request = request_for(msg.context_id, msg.command)
                    service = self.route(field_, request.abstract_syntax)
                job = Job(service, request)
                if responder is None and field_ in CANCELLABLE and assoc.duplex:
                    # A query or retrieval runs on a responder, so that this thread hears its C-CANCEL
                    # (and a C-GET's C-STORE responses, for Outbound) while it is answered.
                    responder = _Responder(self, assoc, respond, window)
                    assoc.shared = True
                if responder is None:
                    self.run([job], respond)
                else:
                    responder.submit(job)
        except (AssociationAborted, NetworkError):
            pass
        finally:
            # Nothing more is received: a request of ours waiting for its answer (a C-GET's C-STORE) fails
            # now, before the responder that runs it is joined.
            outbound.close()
            if responder is not None:
                responder.close()  # what was fully received is still answered (or discarded)
            if responder is not None or outbound.used:
                assoc.shared = False
                assoc.release_socket()
            held = announced[0]
            if held is not None and held[0].sink is not None:  # an interrupted transfer leaves nothing behind
                held[0].sink.discard()


class _Responder:
    """Handles one association's requests and answers them, in order, on its own thread (see the module).

    ``submit`` blocks when ``window`` items wait, which stops reading from
    the socket. A failure (an answer that could not be built or sent) is kept
    in ``failed`` and aborts the association; later requests are not
    handled, and their data sets are dropped.
    """

    def __init__(self, dispatcher: Dispatcher, assoc: Association, respond: Respond, window: int) -> None:
        self._dispatcher, self._assoc, self._respond = dispatcher, assoc, respond
        self._q: queue.Queue[Job | Barrier | _Stop] = queue.Queue(maxsize=window if window > 0 else 64)
        self.failed: BaseException | None = None
        self._inflight: dict[int, Request] = {}  # by message ID, until answered (C-CANCEL finds them here)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="fastdicom-responder", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        if job.request.command.get("CommandField") in CANCELLABLE:
            with self._lock:
                self._inflight[job.request.message_id] = job.request
        self._q.put(job)

    def cancel(self, message_id: int) -> None:
        with self._lock:
            request = self._inflight.get(message_id)
        if request is not None:
            request.cancelled = True

    def drain(self) -> None:
        """Wait until everything submitted has been answered."""
        barrier = Barrier()
        self._q.put(barrier)
        while not barrier.done.wait(1.0):
            if not self._thread.is_alive():
                break
        if self.failed is not None:
            raise AssociationAborted(f"answering failed: {self.failed}")

    def close(self) -> None:
        self._q.put(_Stop())
        self._thread.join()

    def _run(self) -> None:
        while True:
            batch = [self._q.get()]
            while True:
                try:
                    batch.append(self._q.get_nowait())
                except queue.Empty:
                    break
            jobs: list[Job] = []
            for item in batch:
                if isinstance(item, Job):
                    jobs.append(item)
                    continue
                self._answer(jobs)  # everything before a barrier or the stop first
                jobs = []
                if isinstance(item, Barrier):
                    item.done.set()
                else:
                    return
            self._answer(jobs)

    def _answer(self, jobs: list[Job]) -> None:
        if not jobs:
            return
        try:
            self._handle(jobs)
        finally:
            if self._inflight:
                with self._lock:
                    for job in jobs:
                        self._inflight.pop(job.request.message_id, None)

    def _handle(self, jobs: list[Job]) -> None:
        if self.failed is None:
            try:
                self._dispatcher.run(jobs, self._respond)
                return
            except Exception as exc:  # noqa: BLE001 - reported to the association's thread
                self.failed = exc
                # An answer is lost: end the association (A-ABORT) rather than leave the peer waiting.
                try:
                    self._assoc.provider_abort(pdu.AbortReason.NOT_SPECIFIED, f"answering failed: {exc}")
                except NetworkError:
                    pass
        for job in jobs:  # nothing of these may stay behind (nobody will hear their answers)
            if job.request.sink is not None:
                job.request.sink.discard()
