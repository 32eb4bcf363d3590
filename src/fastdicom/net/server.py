"""The association server: a listening socket, a thread per association, limits, and a stop.

:class:`AssociationServer` accepts connections (IPv6 and IPv4 where the
system allows, TLS when given a context), runs the acceptor side of each
association up to establishment with
:func:`~fastdicom.net.negotiation.negotiate`, and hands the established
association to its handler (``handler.serve(association, info)``: DIMSE
dispatch to services, :class:`fastdicom.services.Dispatcher`). It knows
nothing of SOP classes: what is supported is the handler's to say.

Limits (:class:`~fastdicom.net.negotiation.Limits`, in the policy): a
connection takes an association slot only once its A-ASSOCIATE-RQ has come;
until then it is *pending*, with its own cap (``max_pending_connections``,
past which new connections are closed at once, not given a thread each) and
its own short timer (``request_timeout``), so idle sockets never lock real
peers out. An A-ASSOCIATE-RQ past ``max_associations`` gets a transient
A-ASSOCIATE-RJ from the provider. :meth:`AssociationServer.stop` shuts down
every open association (their partial objects are discarded) and waits for
their threads. Hooks run on one :class:`Notifier` thread, off the data path.

The operator's log (``logger``, ``fastdicom.server`` by default): each
association accepted (INFO: peer, AE titles, contexts accepted) and ended
(INFO: released, or aborted and why; its duration and objects), each
refusal with its reason (INFO; WARNING for a local limit), and a summary on
stop (INFO).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .association import Association, NetworkError
from .negotiation import AcceptPolicy, Supported, negotiate, over_limit
from .pdu import Abort, AbortReason, AbortSource, AssociateRJ, RejectResult, RejectSource, UserRejectReason, encode


@dataclass
class AssociationInfo:
    """Who is on the other end of an established association."""

    calling_ae: str
    called_ae: str
    address: tuple
    implementation_class_uid: str
    implementation_version_name: str | None
    #: What the services did on it (for the log): objects stored, objects failed.
    stored: int = 0
    failed: int = 0


class AssociationHandler(Supported, Protocol):
    """What a server runs its associations with."""

    def serve(self, association: Association, info: AssociationInfo) -> None:
        """Run an established association to its end (release or abort)."""
        ...

    def close(self) -> None:
        """The server stopped."""
        ...


class Notifier:
    """Runs callbacks one after another on its own thread (a slow or failing one never stalls the caller)."""

    def __init__(self, name: str = "fastdicom-hooks", log: logging.Logger | None = None) -> None:
        self._q: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = queue.Queue()
        self._log = log or logging.getLogger("fastdicom.server")
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False
        self._lock = threading.Lock()

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        if not self._started:
            with self._lock:  # the first post starts the thread (associations post from their own threads)
                if not self._started:
                    self._thread.start()
                    self._started = True
        self._q.put((fn, args))

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            fn, args = item
            try:
                fn(*args)
            except Exception:  # a failing hook must not stop the server
                self._log.exception("hook %s failed", getattr(fn, "__name__", fn))

    def stop(self, timeout: float | None = None) -> None:
        if self._started:
            self._q.put(None)
            self._thread.join(timeout)


class AssociationServer:
    """Accepts associations on a port and serves each on its own thread with ``handler``.

    Parameters
    ----------
    handler : AssociationHandler
        What the associations are for (which abstract syntaxes, and serving one).
    policy : AcceptPolicy
        Who may associate, and the limits.
    port, host : int, str
        Where to listen (port 0 picks a free one; see :attr:`port`). The
        default host listens on IPv6 and IPv4 where the system allows.
    tls : ssl.SSLContext, optional
        A server context (TLS 1.2 or later; set ``verify_mode`` for mutual authentication).
    on_association : callable, optional
        ``on_association(AssociationInfo)``, on the notifier thread.
    notifier : Notifier, optional
        Where hooks run (the services' too); one is made when not given.
    logger : logging.Logger, optional
    """

    def __init__(
        self,
        handler: AssociationHandler,
        policy: AcceptPolicy,
        *,
        port: int = 11112,
        host: str = "",
        tls: ssl.SSLContext | None = None,
        on_association: Callable[[AssociationInfo], Any] | None = None,
        notifier: Notifier | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.handler = handler
        self.policy = policy
        self.host, self._port = host, port
        self.tls = tls
        self.on_association = on_association
        self.log = logger or logging.getLogger("fastdicom.server")
        self.notifier = notifier or Notifier(log=self.log)
        #: Set when :meth:`stop` begins: work in flight may check it.
        self.stopping = threading.Event()
        #: Counters: associations established, connections refused or failed before establishment.
        self.counters = {"associations": 0, "rejected": 0}
        self._server: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # guards the counters and the sets below
        self._active = 0  # associations holding a slot (their A-ASSOCIATE-RQ came)
        self._pending = 0  # connections whose A-ASSOCIATE-RQ has not come yet
        self._workers: set[threading.Thread] = set()
        self._sockets: set[socket.socket] = set()
        self._stop_lock = threading.Lock()
        self._stopped = False
        self._flood_logged = 0.0  # when the last "connections closed at once" line went out
        self._flood_count = 0

    @property
    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counters)

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counters[key] += n

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._server.getsockname()[1] if self._server else self._port

    def _listen(self) -> socket.socket:
        if self.host in ("", "::") and socket.has_dualstack_ipv6():
            return socket.create_server(("", self._port), family=socket.AF_INET6, dualstack_ipv6=True, reuse_port=False)
        return socket.create_server((self.host or "0.0.0.0", self._port))

    def start(self) -> AssociationServer:
        """Listen and serve in background threads; return self."""
        self._server = self._listen()
        self._server.settimeout(0.2)
        self._thread = threading.Thread(target=self._accept_loop, name="fastdicom-server", daemon=True)
        self._thread.start()
        self.log.info("listening on port %d as %s", self.port, self.policy.ae_title)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, shut down the associations still open (aborting what they were receiving), wait.

        A second call (another thread) waits for the first to finish."""
        with self._stop_lock:
            if self._stopped:
                return
            self.stopping.set()
            self.close_listener(timeout)
            with self._lock:
                live = list(self._sockets)
            for sock in live:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            for t in list(self._workers):
                t.join(timeout)
            self.notifier.stop(timeout)
            self.handler.close()
            self._stopped = True
            self.log.info(
                "stopped: %d associations, %d connections refused",
                self.counters["associations"],
                self.counters["rejected"],
            )

    def close_listener(self, timeout: float = 10.0) -> None:
        """Stop accepting new connections (those open carry on)."""
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._server is not None:
            self._server.close()

    @property
    def open_associations(self) -> int:
        """Connections being served (pending or established)."""
        with self._lock:
            return len(self._workers)

    def serve_forever(self) -> None:
        self.start()
        try:
            while not self.stopping.is_set():
                self.stopping.wait(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> AssociationServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        assert self._server is not None
        limits = self.policy.limits
        while not self.stopping.is_set():
            try:
                sock, addr = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                if self.stopping.is_set():
                    return
                continue
            with self._lock:
                crowded = (
                    self._pending >= limits.max_pending_connections or len(self._workers) >= limits.max_connections
                )
                if not crowded:
                    self._pending += 1
            if crowded:  # a flood of connections gets closed, not a thread each
                with contextlib.suppress(OSError):
                    sock.close()
                self._count("rejected")
                self._log_flood(addr)
                continue
            t = threading.Thread(target=self._serve, args=(sock, addr), name="fastdicom-association", daemon=True)
            with self._lock:
                self._workers.add(t)
            t.start()

    def _log_flood(self, addr: tuple) -> None:
        """Connections closed at once: a WARNING at most every 10 s, with how many (a flood must not flood the log)."""
        self._flood_count += 1
        now = time.monotonic()
        if now - self._flood_logged >= 10.0:
            self.log.warning(
                "connection from %s closed at once: %d connections wait for their A-ASSOCIATE-RQ (limit %d), "
                "%d open; %d closed so since the last such line",
                _peer(addr),
                self._pending,
                self.policy.limits.max_pending_connections,
                len(self._workers),
                self._flood_count,
            )
            self._flood_logged, self._flood_count = now, 0

    # -- one connection ----------------------------------------------------------------------------
    def _serve(self, sock: socket.socket, addr: tuple) -> None:
        limits = self.policy.limits
        state = {"pending": True, "slot": False}
        peer = _peer(addr)

        def unpend() -> None:  # under self._lock
            if state["pending"]:
                state["pending"] = False
                self._pending -= 1

        def answer(rq: Any) -> Any:
            """The A-ASSOCIATE-RQ came: take a slot (or refuse: over the limit), then negotiate."""
            with self._lock:
                unpend()
                if self._active < limits.max_associations:
                    self._active += 1
                    state["slot"] = True
            if not state["slot"]:
                self.log.warning(
                    "association from %s (%s -> %s) refused: %d associations open (the limit), transient",
                    peer,
                    rq.calling_ae.strip(),
                    rq.called_ae.strip(),
                    limits.max_associations,
                )
                return over_limit()
            reply = negotiate(rq, self.policy, self.handler)
            if isinstance(reply, AssociateRJ):
                self.log.info(
                    "association from %s (%s -> %s) refused: %s",
                    peer,
                    rq.calling_ae.strip(),
                    rq.called_ae.strip(),
                    _reject_reason(reply),
                )
            return reply

        assoc: Association | None = None
        t0 = time.monotonic()
        try:
            with self._lock:
                self._sockets.add(sock)
            wait = min(limits.request_timeout, limits.artim_timeout)
            if self.tls is not None:
                sock.settimeout(wait)
                raw = sock
                try:
                    sock = self.tls.wrap_socket(sock, server_side=True)
                except (OSError, ssl.SSLError) as exc:
                    self.log.info("connection from %s closed: TLS handshake failed: %s", peer, exc)
                    sock.close()
                    self._count("rejected")
                    return
                with self._lock:  # stop() must reach the TLS socket (wrap_socket detached the raw one)
                    self._sockets.discard(raw)
                    self._sockets.add(sock)
            try:
                assoc = Association.accept(
                    sock,
                    answer,
                    max_pdu=limits.max_pdu,
                    network_timeout=limits.network_timeout,
                    artim_timeout=limits.artim_timeout,
                    request_timeout=wait,
                )
            except NetworkError:  # the peer went away during negotiation
                assoc = None
            if assoc is None:
                self._count("rejected")
                if state["pending"]:
                    self.log.debug("connection from %s closed: no A-ASSOCIATE-RQ within %g s", peer, wait)
                return
            neg = assoc.agreement
            info = AssociationInfo(
                neg.calling_ae,
                neg.called_ae,
                addr,
                neg.peer_implementation_class_uid,
                neg.peer_implementation_version_name,
            )
            self._count("associations")
            self.log.info(
                "association from %s (%s -> %s) accepted: %d of %d presentation contexts, %s",
                peer,
                info.calling_ae.strip(),
                info.called_ae.strip(),
                len(neg.contexts),
                len(neg.results),
                info.implementation_version_name or info.implementation_class_uid,
            )
            if self.on_association is not None:
                self.notifier.post(self.on_association, info)
            self.handler.serve(assoc, info)
            self.log.info(
                "association from %s (%s) %s after %.1f s: %d stored, %d failed",
                peer,
                info.calling_ae.strip(),
                self._ending(assoc),
                time.monotonic() - t0,
                info.stored,
                info.failed,
            )
        except Exception:  # never let one association's surprise end silently with the socket open
            self.log.exception("association from %s failed", peer)
            with contextlib.suppress(OSError):
                sock.sendall(encode(Abort(AbortSource.SERVICE_PROVIDER, AbortReason.NOT_SPECIFIED)))
            with contextlib.suppress(OSError):
                sock.close()
        finally:
            with self._lock:
                unpend()
                if state["slot"]:
                    self._active -= 1
                self._sockets.discard(sock)
                self._workers.discard(threading.current_thread())

    def _ending(self, assoc: Association) -> str:
        """How an association ended, in words (from the last state machine action)."""
        if assoc.abort_reason:
            return f"aborted ({assoc.abort_reason})"
        action = assoc.last_action
        if action in ("AR-4", "AR-5", "AR-3"):
            return "released"
        if self.stopping.is_set():
            return "aborted (the server stops)"
        if action == "AA-3":
            return "aborted by the peer (A-ABORT)"
        return "aborted (the connection closed)"


def _peer(addr: tuple) -> str:
    host, port = addr[0], addr[1]
    if isinstance(host, str) and host.startswith("::ffff:"):
        host = host[7:]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def _reject_reason(rj: AssociateRJ) -> str:
    """An A-ASSOCIATE-RJ in words: the reason, permanent or transient."""
    try:
        reason = UserRejectReason(rj.reason).name if rj.source == RejectSource.SERVICE_USER else str(rj.reason)
    except ValueError:
        reason = str(rj.reason)
    kind = "permanent" if rj.result == RejectResult.PERMANENT else "transient"
    return f"{reason.lower().replace('_', ' ')}, {kind}"
