"""The Storage SCP: every association in its own thread, objects streamed to disk, durable before success.

For each C-STORE the data set fragments go straight from the socket buffer to
a temporary file in ``<archive>/.incoming`` behind a File Meta header written
first, so memory stays flat whatever the object size. When the last fragment
has arrived the file is flushed and fsynced, its header is read back to check
the UIDs (and to find the study and series), and it is renamed atomically to
``<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``; the folder is
fsynced; only then is success answered. When the peer negotiated an
asynchronous operations window, the association's thread goes on receiving
while a committer thread does this for the objects waiting, as one batch
(files fsynced in parallel, each folder once: group commit), and answers
them in order; A-RELEASE-RP waits for every answer. Any failure, an abort or a dropped
connection removes the temporary file: no partial object is ever left where
a reader would find it. A server killed outright (SIGKILL) leaves its
temporary files in ``.incoming``; the next start removes them.

UIDs become path components only after they pass the UID grammar (digits and
dots, at most 64 characters), so a hostile object cannot escape the archive.

Duplicate policy (the same SOP Instance UID again): ``"overwrite"`` (the
default: the new copy replaces the old one atomically, so a re-send after a
doubtful failure always leaves the latest object), ``"keep"`` (the stored copy
stays; success is answered and the new copy discarded) or ``"reject"``
(failure 0x0111, Duplicate SOP Instance).
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import socket
import ssl
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..dataset.read import read
from ..dataset.write import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, part10_header
from ..dictionary._uids import UIDS
from ..errors import FastDicomError
from . import dimse, pdu
from .association import (
    DEFAULT_MAX_PDU,
    Association,
    AssociationAborted,
    NetworkError,
    ReleaseRequested,
)
from .dimse import DimseChannel, Status
from .scu import VERIFICATION_SOP_CLASS

SUCCESS = Status.SUCCESS
OUT_OF_RESOURCES = 0xA700
DATA_SET_MISMATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
DUPLICATE_SOP_INSTANCE = 0x0111

_NOT_STORAGE = ("Commitment", "Storage Management", "Media Storage Directory")
#: Storage SOP classes known to the dictionary (PS3.6 Table A-1: SOP classes named "... Storage").
STORAGE_SOP_CLASSES = frozenset(
    uid
    for uid, (name, kind, _info, _retired, _kw) in UIDS.items()
    if kind == "SOP Class" and "Storage" in name and not any(x in name for x in _NOT_STORAGE)
)
#: Transfer syntaxes the SCP stores as they come (it never needs to decode to store).
TRANSFER_SYNTAXES = frozenset(uid for uid, entry in UIDS.items() if entry[1] == "Transfer Syntax")


def valid_uid(uid: Any) -> bool:
    return isinstance(uid, str) and 0 < len(uid) <= 64 and _UID.fullmatch(uid) is not None


@dataclass
class AssociationInfo:
    calling_ae: str
    called_ae: str
    address: tuple
    implementation_class_uid: str
    implementation_version_name: str | None


class _FileSink:
    """Receives one object's data set fragments into a temporary file.

    A disk error (full, no descriptors, folder gone) does not end the
    association: the sink remembers it, drains the rest of the object, and
    the store is answered with an out-of-resources status.
    """

    def __init__(self, incoming: str, meta: bytes) -> None:
        self.path = os.path.join(incoming, f"{uuid.uuid4().hex}.part")
        self.bytes = 0
        self.error: OSError | None = None
        self.file = None
        try:
            self.file = open(self.path, "xb", buffering=1 << 20)  # noqa: SIM115 - closed in finish/discard
            self.file.write(meta)
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        self.error = exc
        self.discard()

    def write(self, view: memoryview) -> None:
        self.bytes += len(view)
        if self.error is None and self.file is not None:  # no error: the file is open
            try:
                self.file.write(view)
            except OSError as exc:
                self._fail(exc)

    def data_plane_fd(self) -> int:
        """The descriptor the data plane appends to (-1 after an error: drain)."""
        if self.error is not None or self.file is None:
            return -1
        try:
            self.file.flush()
        except OSError as exc:
            self._fail(exc)
            return -1
        return self.file.fileno()

    def data_plane_done(self, n: int, errno: int) -> None:
        """The data plane received ``n`` bytes; ``errno`` is its first write error (0: none)."""
        self.bytes += n
        if errno and self.error is None:
            self._fail(OSError(errno, os.strerror(errno)))

    def finish(self) -> None:
        if self.error is not None:
            raise self.error
        assert self.file is not None  # no error: the file is open
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()

    def discard(self) -> None:
        if self.file is not None:
            with contextlib.suppress(OSError):
                self.file.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


class _DiscardSink:
    """Drains a data set nobody asked for (on a command that carries none)."""

    bytes = 0

    def write(self, view: memoryview) -> None:
        pass

    def data_plane_fd(self) -> int:
        return -1

    def data_plane_done(self, n: int, errno: int) -> None:
        pass

    def discard(self) -> None:
        pass


class _CountingSink:
    """``--sink`` mode: checks the stream and drops it."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, view: memoryview) -> None:
        self.bytes += len(view)

    def data_plane_fd(self) -> int:
        return -1

    def data_plane_done(self, n: int, errno: int) -> None:
        self.bytes += n

    def finish(self) -> None:
        pass

    def discard(self) -> None:
        pass


class _Committer:
    """Makes one association's objects durable and answers them, in order, on its own thread.

    Used when the peer may keep several operations outstanding: while the
    association's thread receives the next objects, this one takes every
    object waiting (up to the window) as a batch, fsyncs their files in
    parallel, renames them into place in order, fsyncs each folder touched
    once, and only then sends the batch's answers (group commit: a few
    flushes for many objects). ``submit`` blocks when ``window`` items wait,
    which stops reading from the socket. A failure (the association died
    while answering) is kept in ``failed``; later objects are still committed
    or discarded, never left in ``.incoming``.
    """

    def __init__(self, scp: StorageSCP, assoc: Association, window: int, answer_store) -> None:
        self._scp, self._assoc, self._answer_store = scp, assoc, answer_store
        self._q: queue.Queue = queue.Queue(maxsize=window if window > 0 else 64)
        self.failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fastdicom-scp-commit", daemon=True)
        self._thread.start()

    def submit_store(self, msg, sink) -> None:
        self._q.put(("store", msg, sink))

    def submit(self, fn, *args) -> None:
        self._q.put(("call", fn, args))

    def _run(self) -> None:
        stop = False
        while not stop:
            batch = [self._q.get()]
            while True:
                try:
                    batch.append(self._q.get_nowait())
                except queue.Empty:
                    break
            if None in batch:
                stop = True
                batch = batch[: batch.index(None)]
            try:
                self._commit(batch)
            except Exception as exc:  # noqa: BLE001 - reported to the association's thread
                if self.failed is None:
                    self.failed = exc
                # An answer is lost: end the association (A-ABORT) rather than leave the peer waiting.
                with contextlib.suppress(NetworkError):
                    self._assoc.provider_abort(pdu.AbortReason.NOT_SPECIFIED, f"answering failed: {exc}")
                for item in batch:  # nothing of this batch may stay behind in .incoming
                    if isinstance(item, tuple) and item[0] == "store" and item[2] is not None:
                        with contextlib.suppress(Exception):
                            item[2].discard()
            finally:
                for item in batch:  # whoever waits is woken, whatever happened
                    if isinstance(item, threading.Event):
                        item.set()

    @staticmethod
    def _finish(sink) -> BaseException | bool:
        try:
            sink.finish()
            return True
        except Exception as exc:  # noqa: BLE001 - becomes this object's status
            return exc

    def _commit(self, batch: list) -> None:
        stores = [item for item in batch if isinstance(item, tuple) and item[0] == "store" and item[2] is not None]
        finished: dict[int, BaseException | bool] = {}
        if len(stores) > 1 and not self._scp.sink and self.failed is None:
            pool = self._scp._fsync_pool()
            if pool is not None:
                try:
                    outcomes = list(pool.map(lambda it: self._finish(it[2]), stores))
                except RuntimeError:  # the pool was shut down under us (stop()): finish inline
                    outcomes = []
                for item, outcome in zip(stores, outcomes):
                    finished[id(item)] = outcome
        dirs: set[str] = set()
        answers: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        for item in batch:
            if isinstance(item, threading.Event):
                answers.append((item.set, ()))
            elif item[0] == "store":
                _, msg, sink = item
                if self.failed is not None:  # nobody will hear the answer: do not store it
                    if sink is not None:
                        sink.discard()
                    continue
                stored = self._scp._store(self._assoc, msg, sink, finished.get(id(item)), dirs)
                answers.append((self._answer_store, (msg, stored)))
            else:
                answers.append((item[1], item[2]))
        failed_dirs: dict[str, OSError] = {}
        for folder in sorted(dirs):
            try:
                _fsync_dir(folder)
            except OSError as exc:
                failed_dirs[folder] = exc
        for fn, args in answers:
            if fn is self._answer_store and failed_dirs:
                msg, (status, _comment, path) = args
                err = failed_dirs.get(os.path.dirname(path)) if path else None
                if err is not None and status == SUCCESS:
                    args = (msg, (OUT_OF_RESOURCES, f"cannot store: {err.strerror or err}", None))
            try:
                fn(*args)
            except Exception as exc:  # noqa: BLE001 - the association is gone; keep going to set events
                if self.failed is None:
                    self.failed = exc

    def drain(self) -> None:
        """Wait until everything submitted has been answered."""
        done = threading.Event()
        self._q.put(done)
        while not done.wait(1.0):
            if not self._thread.is_alive():
                break
        if self.failed is not None:
            raise AssociationAborted(f"answering failed: {self.failed}")

    def close(self) -> None:
        self._q.put(None)
        self._thread.join()


def _fsync_dir(path: str) -> None:
    """fsync a folder (its entries: a rename or a new sub-folder). Failures propagate: nothing is durable then."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dirs_durably(root: str, *parts: str) -> str:
    """Create ``root/parts...`` and fsync the parent of every folder created."""
    path = root
    for part in parts:
        child = os.path.join(path, part)
        if not os.path.isdir(child):
            try:
                os.mkdir(child)
            except FileExistsError:
                pass
            _fsync_dir(path)
        path = child
    return path


class StorageSCP:
    """A Storage SCP (and Verification SCP) on a port, storing into ``directory``.

    Parameters
    ----------
    directory : str
        The archive folder (created if missing). Ignored with ``sink=True``.
    ae_title : str
        Our AE title. Associations calling another title are rejected unless
        ``strict_called_ae`` is False.
    port, host : int, str
        Where to listen (port 0 picks a free one; see :attr:`port`). The
        default host listens on IPv6 and IPv4 where the system allows.
    max_associations : int
        More at once are answered with a transient A-ASSOCIATE-RJ (local limit exceeded).
    allowed_aes : iterable of str, optional
        Calling AE titles allowed in (others get a permanent rejection).
    duplicates : {"overwrite", "keep", "reject"}
        What to do with an SOP Instance UID already stored (module docstring).
    sink : bool
        Check and discard objects instead of storing them (measuring a sender).
    tls : ssl.SSLContext, optional
        A server context (TLS 1.2 or later; set ``verify_mode`` for mutual authentication).
    on_association, on_store : callable, optional
        Hooks called in a separate thread, off the data path:
        ``on_association(AssociationInfo)`` and ``on_store(path, command, AssociationInfo)``.
    authenticate : callable, optional
        ``authenticate(user_identity, calling_ae)`` for associations that carry
        User Identity negotiation: False rejects the association (permanent),
        True or bytes accept it (the bytes are the server response, sent when
        the requestor asked for a positive response). Without it the identity
        is not checked and no response is sent. An association without the
        item is refused when ``authenticate`` is set and ``require_identity`` is True.
    """

    def __init__(
        self,
        directory: str | None = None,
        *,
        ae_title: str = "FASTDICOM",
        port: int = 11112,
        host: str = "",
        max_associations: int = 32,
        allowed_aes=None,
        strict_called_ae: bool = False,
        duplicates: str = "overwrite",
        sink: bool = False,
        tls: ssl.SSLContext | None = None,
        max_pdu: int = DEFAULT_MAX_PDU,
        network_timeout: float = 60.0,
        artim_timeout: float = 30.0,
        accept_private_sop_classes: bool = True,
        require_identity: bool = False,
        on_association: Callable[[AssociationInfo], Any] | None = None,
        on_store: Callable[[str | None, dict, AssociationInfo], Any] | None = None,
        authenticate: Callable[[pdu.UserIdentity, str], bool | bytes] | None = None,
    ) -> None:
        if duplicates not in ("overwrite", "keep", "reject"):
            raise ValueError("duplicates must be 'overwrite', 'keep' or 'reject'")
        if not sink and not directory:
            raise ValueError("a Storage SCP needs a directory (or sink=True)")
        self.directory = os.path.abspath(directory) if directory else None
        self.ae_title = ae_title
        self.host, self._port = host, port
        self.max_associations = max_associations
        self.allowed_aes = None if allowed_aes is None else {a.strip() for a in allowed_aes}
        self.strict_called_ae = strict_called_ae
        self.duplicates = duplicates
        self.sink = sink
        self.tls = tls
        self.max_pdu = max_pdu
        self.network_timeout = network_timeout
        self.artim_timeout = artim_timeout
        self.accept_private = accept_private_sop_classes
        self.require_identity = require_identity
        self.on_association = on_association
        self.on_store = on_store
        self.authenticate = authenticate
        self._server: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._active = 0
        self._active_lock = threading.Lock()
        self._stop = threading.Event()
        self._hooks: queue.Queue = queue.Queue()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._pool_closed = False
        self._hook_thread: threading.Thread | None = None
        self._workers: set[threading.Thread] = set()
        self._sockets: set[socket.socket] = set()
        #: Counters: stored, failed, bytes (read them for a summary).
        self.stats = {"stored": 0, "failed": 0, "bytes": 0, "associations": 0, "rejected": 0}
        self._stats_lock = threading.Lock()
        if self.directory:
            os.makedirs(os.path.join(self.directory, ".incoming"), exist_ok=True)

    def _sweep_incoming(self) -> None:
        """Remove the temporary files a killed server left behind (they were never answered with success)."""
        if not self.directory:
            return
        incoming = os.path.join(self.directory, ".incoming")
        for name in os.listdir(incoming):
            if name.endswith(".part"):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(incoming, name))

    def _count(self, key: str, n: int = 1) -> None:
        with self._stats_lock:
            self.stats[key] += n

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._server.getsockname()[1] if self._server else self._port

    def _listen(self) -> socket.socket:
        if self.host in ("", "::") and socket.has_dualstack_ipv6():
            return socket.create_server(("", self._port), family=socket.AF_INET6, dualstack_ipv6=True, reuse_port=False)
        return socket.create_server((self.host or "0.0.0.0", self._port))

    def start(self) -> StorageSCP:
        """Listen and serve in background threads; return self."""
        self._sweep_incoming()
        self._server = self._listen()
        self._server.settimeout(0.2)
        self._hook_thread = threading.Thread(target=self._run_hooks, name="fastdicom-scp-hooks", daemon=True)
        self._hook_thread.start()
        self._thread = threading.Thread(target=self._accept_loop, name="fastdicom-scp", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.start()
        try:
            while not self._stop.is_set():
                self._stop.wait(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._server is not None:
            self._server.close()
        with self._active_lock:
            live = list(self._sockets)
        for sock in live:  # associations still open are aborted: their partial objects are discarded
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for t in list(self._workers):
            t.join(timeout)
        self._hooks.put(None)
        if self._hook_thread is not None:
            self._hook_thread.join(timeout)
        with self._pool_lock:
            pool, self._pool, self._pool_closed = self._pool, None, True
        if pool is not None:  # a committer still running after the joins finishes its files inline
            pool.shutdown(wait=False)

    def _fsync_pool(self) -> ThreadPoolExecutor | None:
        """Threads that fsync the files of a committer's batch in parallel (shared by all associations)."""
        with self._pool_lock:
            if self._pool is None and not self._pool_closed:
                self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="fastdicom-fsync")
            return self._pool

    def __enter__(self) -> StorageSCP:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            try:
                sock, addr = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            with self._active_lock:
                crowded = len(self._workers) >= 2 * self.max_associations + 16
            if crowded:  # a flood of connections gets closed, not a thread each
                with contextlib.suppress(OSError):
                    sock.close()
                self._count("rejected")
                continue
            t = threading.Thread(target=self._serve, args=(sock, addr), name="fastdicom-scp-assoc", daemon=True)
            with self._active_lock:
                self._workers.add(t)
            t.start()

    def _run_hooks(self) -> None:
        while True:
            item = self._hooks.get()
            if item is None:
                return
            fn, args = item
            try:
                fn(*args)
            except Exception:  # noqa: BLE001 - a failing hook must not stop the server
                pass

    # -- one association ---------------------------------------------------------------------------
    def _negotiate(self, rq: pdu.AssociateRQ, over_limit: bool):
        if over_limit:
            return pdu.AssociateRJ(pdu.RejectResult.TRANSIENT, pdu.RejectSource.SERVICE_PROVIDER_PRESENTATION, 2)
        if rq.application_context != pdu.APPLICATION_CONTEXT:
            return pdu.AssociateRJ(pdu.RejectResult.PERMANENT, pdu.RejectSource.SERVICE_USER, 2)
        if self.allowed_aes is not None and rq.calling_ae.strip() not in self.allowed_aes:
            return pdu.AssociateRJ(pdu.RejectResult.PERMANENT, pdu.RejectSource.SERVICE_USER, 3)
        if self.strict_called_ae and rq.called_ae.strip() != self.ae_title:
            return pdu.AssociateRJ(pdu.RejectResult.PERMANENT, pdu.RejectSource.SERVICE_USER, 7)
        identity_response = None
        identity = rq.user_info.user_identity
        if self.authenticate is not None:
            if identity is None:
                if self.require_identity:
                    return pdu.AssociateRJ(pdu.RejectResult.PERMANENT, pdu.RejectSource.SERVICE_USER, 1)
            else:
                try:
                    verdict = self.authenticate(identity, rq.calling_ae)
                except Exception:  # noqa: BLE001 - a failing hook refuses, never crashes the server
                    verdict = False
                if verdict is False or verdict is None:
                    return pdu.AssociateRJ(pdu.RejectResult.PERMANENT, pdu.RejectSource.SERVICE_USER, 1)
                if identity.positive_response_requested:
                    identity_response = verdict if isinstance(verdict, (bytes, bytearray)) else b""
        answers = []
        for pc in rq.contexts:
            ans = pdu.PresentationContext(pc.id, pc.abstract_syntax)
            uid = pc.abstract_syntax or ""
            known = uid in UIDS
            if not (
                uid == VERIFICATION_SOP_CLASS
                or uid in STORAGE_SOP_CLASSES
                or (self.accept_private and not known and valid_uid(uid))
            ):
                ans.result = pdu.ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED
                ans.transfer_syntaxes = [pc.transfer_syntaxes[0]]
            else:
                ts = next((t for t in pc.transfer_syntaxes if t in TRANSFER_SYNTAXES), None)
                if ts is None:
                    ans.result = pdu.ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED
                    ans.transfer_syntaxes = [pc.transfer_syntaxes[0]]
                else:
                    ans.result = pdu.ContextResult.ACCEPTANCE
                    ans.transfer_syntaxes = [ts]
            answers.append(ans)
        ui = pdu.UserInfo(
            max_length=self.max_pdu,
            implementation_class_uid=IMPLEMENTATION_CLASS_UID,
            implementation_version_name=IMPLEMENTATION_VERSION_NAME,
        )
        if rq.user_info.async_ops is not None:
            invoked, _performed = rq.user_info.async_ops
            # We answer one operation at a time but let the requestor keep several outstanding.
            ui.async_ops = (min(invoked, 64) if invoked else 64, 1)
        ui.user_identity_response = None if identity_response is None else bytes(identity_response)
        # Role selection (both bits describe the requestor): it may be SCU as proposed, never SCP here.
        ui.roles = [pdu.RoleSelection(r.sop_class_uid, r.scu, False) for r in rq.user_info.roles]
        return pdu.AssociateAC(rq.called_ae, rq.calling_ae, answers, ui)

    def _serve(self, sock: socket.socket, addr) -> None:
        try:
            with self._active_lock:
                self._active += 1
                over = self._active > self.max_associations
                self._sockets.add(sock)
            if self.tls is not None:
                sock.settimeout(self.artim_timeout)
                raw = sock
                try:
                    sock = self.tls.wrap_socket(sock, server_side=True)
                except (OSError, ssl.SSLError):
                    sock.close()
                    return
                with self._active_lock:  # stop() must reach the TLS socket (wrap_socket detached the raw one)
                    self._sockets.discard(raw)
                    self._sockets.add(sock)
            try:
                assoc = Association.accept(
                    sock,
                    lambda rq: self._negotiate(rq, over),
                    max_pdu=self.max_pdu,
                    network_timeout=self.network_timeout,
                    artim_timeout=self.artim_timeout,
                )
            except NetworkError:  # the peer went away during negotiation
                assoc = None
            if assoc is None:
                self._count("rejected")
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
            if self.on_association is not None:
                self._hooks.put((self.on_association, (info,)))
            self._messages(assoc, info)
        except Exception:  # noqa: BLE001 - never let one association's surprise end silently with the socket open
            with contextlib.suppress(OSError):
                sock.sendall(pdu.encode(pdu.Abort(pdu.AbortSource.SERVICE_PROVIDER, pdu.AbortReason.NOT_SPECIFIED)))
            with contextlib.suppress(OSError):
                sock.close()
        finally:
            with self._active_lock:
                self._active -= 1
                self._sockets.discard(sock)
                self._workers.discard(threading.current_thread())

    def _messages(self, assoc: Association, info: AssociationInfo) -> None:
        pending: list = []
        channel = DimseChannel(assoc)

        def sink_factory(ctx: int, command: dict):
            if command.get("CommandField") != dimse.C_STORE_RQ:
                return _DiscardSink()
            s: _CountingSink | _FileSink
            if self.sink:
                s = _CountingSink()
            else:
                assert self.directory is not None  # an archive, not a sink
                ts = assoc.agreement.contexts[ctx].transfer_syntax
                assert ts is not None  # the data plane accepts data on accepted contexts only
                meta = part10_header(
                    str(command.get("AffectedSOPClassUID", "")),
                    str(command.get("AffectedSOPInstanceUID", "")),
                    ts,
                    info.calling_ae or "",
                )
                s = _FileSink(os.path.join(self.directory, ".incoming"), meta)
            pending.append(s)
            return s

        def send_store_answer(msg, outcome) -> None:
            cmd = msg.command
            status, comment, path = outcome
            rsp = {
                "CommandField": dimse.C_STORE_RSP,
                "MessageIDBeingRespondedTo": cmd.get("MessageID", 0),
                "AffectedSOPClassUID": cmd.get("AffectedSOPClassUID", ""),
                "AffectedSOPInstanceUID": cmd.get("AffectedSOPInstanceUID", ""),
                "Status": status,
            }
            if comment:
                rsp["ErrorComment"] = comment[:64]
            channel.send_message(msg.context_id, rsp)
            if status == SUCCESS and self.on_store is not None:
                self._hooks.put((self.on_store, (path, cmd, info)))

        # With an asynchronous operations window, a committer makes objects durable and answers
        # them (in order, in batches) while this thread receives the next ones.
        # Not on TLS: one SSL object must not be read and written from two threads.
        window = assoc.agreement.async_ops[1] if assoc.agreement.async_ops else 1
        committer = None
        if window != 1 and not isinstance(assoc.sock, ssl.SSLSocket):
            committer = _Committer(self, assoc, window, send_store_answer)
            assoc.shared = True  # both threads use the socket: closing waits for the committer

        def answer(fn, *args) -> None:
            if committer is None:
                fn(*args)
            else:
                committer.submit(fn, *args)

        try:
            while True:
                try:
                    msg = channel.receive_message(sink_factory)
                except ReleaseRequested:
                    if committer is not None:
                        committer.drain()  # every answer goes out before the A-RELEASE-RP
                    assoc.answer_release()
                    return
                if committer is not None and committer.failed is not None:
                    raise AssociationAborted(f"answering failed: {committer.failed}")
                cmd = msg.command
                field = cmd.get("CommandField")
                if field == dimse.C_ECHO_RQ:
                    answer(
                        channel.send_message,
                        msg.context_id,
                        {
                            "CommandField": dimse.C_ECHO_RSP,
                            "MessageIDBeingRespondedTo": cmd.get("MessageID", 0),
                            "AffectedSOPClassUID": cmd.get("AffectedSOPClassUID", VERIFICATION_SOP_CLASS),
                            "Status": SUCCESS,
                        },
                    )
                elif field == dimse.C_STORE_RQ:
                    sink = pending.pop() if pending else None
                    if committer is None:
                        send_store_answer(msg, self._store(assoc, msg, sink))
                    else:
                        committer.submit_store(msg, sink)
                elif field is not None and not field & 0x8000 and field != dimse.C_CANCEL_RQ:
                    answer(
                        channel.send_message,
                        msg.context_id,
                        {
                            "CommandField": field | 0x8000,
                            "MessageIDBeingRespondedTo": cmd.get("MessageID", 0),
                            "Status": Status.UNRECOGNIZED_OPERATION,
                        },
                    )
        except (AssociationAborted, NetworkError):
            pass
        finally:
            if committer is not None:
                committer.close()  # what was fully received is still made durable (or discarded)
                assoc.shared = False
                assoc.release_socket()
            for s in pending:  # an interrupted transfer leaves nothing behind
                s.discard()

    def _store(self, assoc: Association, msg, sink, finished=None, dirs=None) -> tuple[int, str, str | None]:
        """Make the received object durable; return (status, error comment, stored path).

        A committer passes ``finished`` (the outcome of ``sink.finish()``, run
        in parallel with other objects': True or the exception) and ``dirs``
        (folders to fsync before any answer of the batch goes out).
        """
        cmd = msg.command
        sop_class = cmd.get("AffectedSOPClassUID")
        sop_instance = cmd.get("AffectedSOPInstanceUID")
        if sink is None:  # the data set came without a sink (should not happen): refuse
            return CANNOT_UNDERSTAND, "no data set received", None
        if not (valid_uid(sop_instance) and valid_uid(sop_class)):
            sink.discard()
            self._count("failed")
            return Status.INVALID_SOP_INSTANCE, "invalid SOP Class or Instance UID in the command", None
        if assoc.agreement.contexts[msg.context_id].abstract_syntax != sop_class:
            sink.discard()
            self._count("failed")
            return Status.SOP_CLASS_NOT_SUPPORTED, "SOP Class differs from the presentation context's", None
        if getattr(sink, "error", None) is not None:
            self._count("failed")
            return OUT_OF_RESOURCES, f"cannot store: {sink.error.strerror or sink.error}", None
        if self.sink:
            self._count("stored")
            self._count("bytes", sink.bytes)
            if sink.bytes == 0 or sink.bytes % 2:
                self._count("failed")
                return CANNOT_UNDERSTAND, "empty or odd-length data set", None
            return SUCCESS, "", None
        try:
            if finished is None:
                sink.finish()
            elif isinstance(finished, BaseException):
                raise finished
            ds = read(sink.path, stop_before_pixels=True)
            got_class, got_instance = ds.get("SOPClassUID"), ds.get("SOPInstanceUID")
            if got_class != sop_class or got_instance != sop_instance:
                sink.discard()
                self._count("failed")
                return DATA_SET_MISMATCH, "SOP Class/Instance UID differ from the command", None
            study, series = ds.get("StudyInstanceUID"), ds.get("SeriesInstanceUID")
            if not (valid_uid(study) and valid_uid(series)):
                sink.discard()
                self._count("failed")
                return DATA_SET_MISMATCH, "missing or invalid Study/Series Instance UID", None
            assert self.directory is not None  # an archive, not a sink
            folder = _make_dirs_durably(self.directory, study, series)
            final = os.path.join(folder, sop_instance + ".dcm")
            if os.path.exists(final):
                if self.duplicates == "keep":
                    sink.discard()
                    self._count("stored")
                    return SUCCESS, "", final
                if self.duplicates == "reject":
                    sink.discard()
                    self._count("failed")
                    return DUPLICATE_SOP_INSTANCE, "SOP Instance already stored", None
            os.replace(sink.path, final)
            if dirs is None:
                _fsync_dir(folder)
            else:
                dirs.add(folder)
            self._count("stored")
            self._count("bytes", sink.bytes)
            return SUCCESS, "", final
        except FastDicomError as exc:
            sink.discard()
            self._count("failed")
            return CANNOT_UNDERSTAND, f"cannot read the data set: {exc}", None
        except OSError as exc:
            sink.discard()
            self._count("failed")
            return OUT_OF_RESOURCES, f"cannot store: {exc.strerror or exc}", None
