"""C-ECHO and the C-STORE pipeline: many objects over several associations, every outcome reported.

``store(sources, "AET@host:port", associations=4)``:

1. scans the sources (headers only) for SOP Class, SOP Instance and transfer
   syntax, and proposes for each SOP class its objects' own transfer
   syntaxes, each with Explicit and Implicit VR Little Endian behind it;
   sets needing more than 128 presentation contexts are split over
   successive groups of associations;
2. ``associations`` worker threads each open an association and drain one
   shared queue; the object's bytes go from the file to the socket with
   ``sendfile`` between the PDU headers (zero-copy from the page cache, the
   GIL released, see :class:`~fastdicom.net.association.FileRegion`);
3. an object is sent in its own transfer syntax when accepted; otherwise it
   is converted to an accepted uncompressed syntax (decoded first when it is
   compressed and a codec can, see :func:`fastdicom.transcode`), and when
   nothing can, reported as failed: pixel data is never stripped;
4. out-of-resources statuses (A7xx), transient rejections and dropped
   associations are retried with exponential backoff on a new association;
   an object whose C-STORE succeeded is never sent again;
5. when the peer accepts an asynchronous operations window, requests are
   pipelined up to it (``async_ops`` proposes one; ``None`` never sends the
   item, for peers that drop associations carrying it).

The report gives every instance's status, warnings and error comment, and
throughput and latency percentiles.
"""

from __future__ import annotations

import json
import os
import queue
import re
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .. import _backends
from ..dataset.read import read
from ..dataset.write import encode_dataset
from ..dictionary import uid as _uid
from ..dictionary._uids import UIDS
from ..errors import FastDicomError
from ..transcode import transcode
from . import dimse, pdu
from .association import Association, AssociationAborted, AssociationRejected, NetworkError
from .dataplane import FileRegion
from .dimse import DimseChannel

UNCOMPRESSED = (_uid.ExplicitVRLittleEndian, _uid.ImplicitVRLittleEndian)
VERIFICATION_SOP_CLASS = _uid.UID(next(u for u, e in UIDS.items() if e[4] == "Verification"))


def parse_address(address: str) -> tuple[str, str, int]:
    """``"AET@host:port"`` (``[v6 address]`` allowed) -> ``(ae_title, host, port)``."""
    m = re.fullmatch(r"\s*([^@]{1,16})@(\[[^\]]+\]|[^:\[\]]+):(\d{1,5})\s*", address)
    if not m:
        raise ValueError(f"{address!r} is not AET@host:port")
    host = m.group(2)
    if host.startswith("["):
        host = host[1:-1]
    return m.group(1), host, int(m.group(3))


def echo(address: str, *, calling_ae: str = "FASTDICOM", timeout: float = 30.0, tls=None, user_identity=None) -> int:
    """C-ECHO the peer; return the status (0 is success). Raises NetworkError when no association is made."""
    called, host, port = parse_address(address)
    ctx = pdu.PresentationContext(1, VERIFICATION_SOP_CLASS, list(UNCOMPRESSED))
    assoc = Association.request(
        host,
        port,
        calling_ae=calling_ae,
        called_ae=called,
        contexts=[ctx],
        network_timeout=timeout,
        tls=tls,
        user_identity=user_identity,
    )
    try:
        if 1 not in assoc.agreement.contexts:
            raise NetworkError("the peer refused the Verification SOP Class")
        channel = DimseChannel(assoc)
        mid = channel.next_message_id()
        channel.send_message(
            1, {"CommandField": dimse.C_ECHO_RQ, "MessageID": mid, "AffectedSOPClassUID": VERIFICATION_SOP_CLASS}
        )
        rsp = channel.receive_message()
        status = int(rsp.command.get("Status", 0xFFFF))
        assoc.release()
        return status
    except BaseException:
        assoc.abort()
        raise


@dataclass
class InstanceResult:
    path: str
    sop_class_uid: str | None = None
    sop_instance_uid: str | None = None
    transfer_syntax: str | None = None
    #: The DIMSE status of the last attempt (None when the request never got an answer).
    status: int | None = None
    error_comment: str | None = None
    #: Why it failed without a status (unreadable, no accepted syntax, network).
    error: str | None = None
    attempts: int = 0
    bytes: int = 0
    latency: float | None = None
    sent_as: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and dimse.status_category(self.status) in ("success", "warning")

    def as_json(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items()}
        d["status"] = None if self.status is None else f"0x{self.status:04X}"
        d["ok"] = self.ok
        return d


@dataclass
class StoreReport:
    results: list[InstanceResult] = field(default_factory=list)
    seconds: float = 0.0
    associations: int = 0

    @property
    def sent(self) -> list[InstanceResult]:
        return [r for r in self.results if r.ok]

    @property
    def failed(self) -> list[InstanceResult]:
        return [r for r in self.results if not r.ok]

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.sent)

    def latency_ms(self, q: float) -> float | None:
        lat = sorted(r.latency for r in self.sent if r.latency is not None)
        if not lat:
            return None
        k = min(len(lat) - 1, max(0, round(q / 100 * (len(lat) - 1))))
        return lat[k] * 1000

    def failures_by_status(self) -> dict[str, int]:
        c: Counter = Counter()
        for r in self.failed:
            c[f"0x{r.status:04X}" if r.status is not None else (r.error or "error").split(":")[0]] += 1
        return dict(c)

    def summary(self) -> str:
        secs = max(self.seconds, 1e-9)
        mb = self.bytes / 1e6
        rows = [
            ("objects sent", f"{len(self.sent)} of {len(self.results)}"),
            ("bytes", f"{mb:,.1f} MB"),
            ("time", f"{self.seconds:.2f} s"),
            ("throughput", f"{mb / secs:,.1f} MB/s, {len(self.sent) / secs:,.1f} objects/s"),
            ("associations", str(self.associations)),
        ]
        for q in (50, 95, 99):
            v = self.latency_ms(q)
            rows.append((f"C-STORE latency p{q}", "-" if v is None else f"{v:.1f} ms"))
        fails = self.failures_by_status()
        rows.append(("failures", ", ".join(f"{k}: {v}" for k, v in fails.items()) if fails else "none"))
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


@dataclass
class _Item:
    result: InstanceResult
    body_start: int = 0
    attempts: int = 0
    not_before: float = 0.0


def _expand(sources: Iterable[Any]) -> list[str]:
    out: list[str] = []
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    for s in sources:
        p = os.fspath(s)
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                out.extend(os.path.join(root, f) for f in sorted(files))
        else:
            out.append(p)
    return out


def _scan(paths: list[str]) -> list[_Item]:
    mod = _backends.resolve("parse")[1]
    items = []
    for p in paths:
        r = InstanceResult(p)
        item = _Item(r)
        try:
            ds = read(p, stop_before_pixels=True)
            r.sop_class_uid = ds.get("SOPClassUID")
            r.sop_instance_uid = ds.get("SOPInstanceUID")
            r.transfer_syntax = ds.transfer_syntax
            if not (r.sop_class_uid and r.sop_instance_uid):
                r.error = "unreadable: no SOP Class or SOP Instance UID"
            else:
                with open(p, "rb") as f:
                    head = f.read(1 << 16)
                opened = mod.open_dataset(memoryview(head), True)
                item.body_start = opened[8]
        except (FastDicomError, OSError) as exc:
            r.error = f"unreadable: {exc}"
        items.append(item)
    return items


def _contexts(items: list[_Item]) -> list[list[pdu.PresentationContext]]:
    """Presentation contexts for the objects, in groups of at most 128."""
    wanted: dict[tuple[str, str], None] = {}
    for it in items:
        r = it.result
        if r.error is None and r.sop_class_uid and r.transfer_syntax:  # both read when there is no error
            wanted[(r.sop_class_uid, r.transfer_syntax)] = None
    groups: list[list[pdu.PresentationContext]] = []
    current: list[pdu.PresentationContext] = []
    for sop_class, ts in wanted:
        syntaxes = [ts] + [u for u in UNCOMPRESSED if u != ts]
        if len(current) == 128:
            groups.append(current)
            current = []
        current.append(pdu.PresentationContext(2 * len(current) + 1, sop_class, syntaxes))
    if current:
        groups.append(current)
    return groups


def _close(mapping) -> None:
    if mapping is not None:
        try:
            mapping.close()
        except BufferError:  # a view is still alive (an exception's traceback): the GC unmaps it
            pass


class _Pipeline:
    def __init__(
        self,
        items,
        contexts,
        address,
        *,
        associations,
        calling_ae,
        async_ops,
        retries,
        backoff,
        max_pdu,
        timeout,
        tls,
        on_result,
        user_identity=None,
    ):
        self.called, self.host, self.port = parse_address(address)
        self.contexts = contexts
        # Each object belongs to the one group whose context was made for its (SOP class, syntax).
        pairs = {(pc.abstract_syntax, pc.transfer_syntaxes[0]) for pc in contexts}
        self.queue: deque[_Item] = deque(
            it for it in items if (it.result.sop_class_uid, it.result.transfer_syntax) in pairs
        )
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.in_flight = 0
        self.n = associations
        self.calling_ae = calling_ae
        self.async_ops = async_ops
        self.retries = retries
        self.backoff = backoff
        self.max_pdu = max_pdu
        self.timeout = timeout
        self.tls = tls
        self.user_identity = user_identity
        self.on_result = on_result
        self.associations = 0
        self.live = 0
        self.fatal: str | None = None

    # -- queue ---------------------------------------------------------------------------------
    def _take(self, block: bool) -> _Item | None:
        """The next item ready to go; None when the queue is empty (or, not blocking, nothing is ready yet).

        A worker never waits for items other workers hold: whoever holds an
        item retries it itself, so an idle worker can leave.
        """
        with self.cond:
            while True:
                now = time.monotonic()
                for _ in range(len(self.queue)):
                    it = self.queue.popleft()
                    if it.not_before <= now:
                        self.in_flight += 1
                        return it
                    self.queue.append(it)
                if not block or not self.queue or self.fatal is not None:
                    return None
                self.cond.wait(0.05)

    def _done(self, it: _Item) -> None:
        with self.cond:
            self.in_flight -= 1
            self.cond.notify_all()
        self.on_result(it.result)

    def _retry(self, it: _Item, why: str) -> None:
        it.attempts += 1
        if it.attempts > self.retries:
            it.result.error = it.result.error or why
            self._done(it)
            return
        it.not_before = time.monotonic() + self.backoff * 2 ** (it.attempts - 1)
        with self.cond:
            self.in_flight -= 1
            self.queue.append(it)
            self.cond.notify_all()

    # -- one worker ----------------------------------------------------------------------------
    def _connect(self) -> Association | None:
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                a = Association.request(
                    self.host,
                    self.port,
                    calling_ae=self.calling_ae,
                    called_ae=self.called,
                    contexts=[
                        pdu.PresentationContext(pc.id, pc.abstract_syntax, list(pc.transfer_syntaxes))
                        for pc in self.contexts
                    ],
                    async_ops=None if self.async_ops is None else (self.async_ops, 1),
                    max_pdu=self.max_pdu,
                    network_timeout=self.timeout,
                    tls=self.tls,
                    user_identity=self.user_identity,
                )
                with self.lock:
                    self.associations += 1
                    self.live += 1
                return a
            except AssociationRejected as exc:
                if not exc.transient:
                    self.fatal = str(exc)
                    return None
                why = str(exc)
            except NetworkError as exc:
                why = str(exc)
            if attempt == self.retries:
                with self.lock:
                    # Others still sending (the peer limits associations): this worker just leaves.
                    if self.live == 0:
                        self.fatal = why
                return None
            time.sleep(delay)
            delay *= 2
        return None

    def _lost(self) -> None:
        with self.lock:
            self.live -= 1

    def _context_for(self, assoc: Association, r: InstanceResult) -> tuple[int, str] | None:
        same, other = None, None
        for pc in assoc.agreement.contexts.values():
            if pc.abstract_syntax != r.sop_class_uid or pc.transfer_syntax is None:
                continue
            if pc.transfer_syntax == r.transfer_syntax:
                same = (pc.id, pc.transfer_syntax)
            elif pc.transfer_syntax in UNCOMPRESSED:  # converted, or decoded when a codec can
                other = other or (pc.id, pc.transfer_syntax)
        return same or other

    def _payload(self, it: _Item, ts: str) -> tuple[FileRegion | memoryview, Any]:
        """The data set bytes to send: a view of the mapped file, or a conversion to ``ts``."""
        r = it.result
        if ts == r.transfer_syntax:
            f = open(r.path, "rb")  # noqa: SIM115 - closed with the response (see _close)
            try:
                size = os.fstat(f.fileno()).st_size
                if size <= it.body_start:
                    raise FastDicomError("no data set after the File Meta")
            except BaseException:
                f.close()
                raise
            # Sent from the page cache with sendfile: no mapping, no copy through user memory.
            return FileRegion(f.fileno(), it.body_start, size - it.body_start), f
        little, explicit, deflated = _uid.encoding_of(ts)
        if deflated:
            raise FastDicomError("conversion to the deflated syntax is not offered")
        ds = read(r.path)
        if _uid.is_encapsulated(r.transfer_syntax or ""):
            # The peer refused the compressed syntax: decode (never strip) when a codec can.
            ds = transcode(ds, ts)
        body = b"".join(bytes(c) for c in encode_dataset(ds, little, explicit))
        return memoryview(body), None

    def _send(self, channel: DimseChannel, it: _Item, outstanding: dict) -> None:
        r = it.result
        found = self._context_for(channel.association, r)
        if found is None:
            r.error = f"no accepted presentation context for {r.transfer_syntax} (transcoding needs a codec)"
            self._done(it)
            return
        ctx, ts = found
        try:
            data, mapping = self._payload(it, ts)
        except (FastDicomError, OSError) as exc:
            r.error = f"not sent: {exc}"
            self._done(it)
            return
        mid = channel.next_message_id()
        r.attempts += 1
        r.sent_as = ts
        r.bytes = len(data)
        outstanding[mid] = (it, time.perf_counter(), mapping)
        try:
            channel.send_message(
                ctx,
                {
                    "CommandField": dimse.C_STORE_RQ,
                    "MessageID": mid,
                    "Priority": 0,
                    "AffectedSOPClassUID": r.sop_class_uid,
                    "AffectedSOPInstanceUID": r.sop_instance_uid,
                },
                data,
            )
        finally:
            if isinstance(data, memoryview):
                data.release()

    def worker(self) -> None:
        assoc: Association | None = None
        window = 1
        outstanding: dict[int, tuple[_Item, float, Any]] = {}
        try:
            while True:
                if assoc is None:
                    if self._idle():
                        break
                    assoc = self._connect()  # holding no item while waiting for the peer
                    if assoc is None:
                        break
                    channel = DimseChannel(assoc)
                    if self.async_ops:  # never more than we proposed, whatever the peer answered
                        answered = assoc.agreement.async_ops[0]
                        window = max(1, min(self.async_ops, answered) if answered else self.async_ops)
                    else:
                        window = 1
                try:
                    while len(outstanding) < window:
                        it = self._take(block=not outstanding)
                        if it is None:
                            break
                        try:
                            self._send(channel, it, outstanding)
                        except (AssociationAborted, NetworkError):
                            raise
                        except Exception as exc:  # noqa: BLE001 - one object's surprise is reported, not lost
                            if not any(entry[0] is it for entry in outstanding.values()):
                                it.result.error = f"not sent: {type(exc).__name__}: {exc}"
                                self._done(it)
                            else:
                                raise
                    if not outstanding:
                        if self._idle():
                            break
                        continue
                    rsp = channel.receive_message()
                    mid = rsp.command.get("MessageIDBeingRespondedTo")
                    entry = outstanding.pop(mid, None) if mid is not None else None
                    if entry is None:
                        raise NetworkError(f"response to unknown message ID {mid}")
                    it, t0, mapping = entry
                    _close(mapping)
                    r = it.result
                    r.latency = time.perf_counter() - t0
                    r.status = int(rsp.command.get("Status", 0xFFFF))
                    r.error_comment = rsp.command.get("ErrorComment")
                    if 0xA700 <= r.status <= 0xA7FF:  # out of resources: try again later
                        self._retry(it, f"status 0x{r.status:04X}")
                    else:
                        self._done(it)
                except (AssociationAborted, NetworkError) as exc:
                    for it, _t0, mapping in outstanding.values():
                        _close(mapping)
                        self._retry(it, f"network: {exc}")
                    outstanding.clear()
                    assoc.abort()
                    assoc = None
                    self._lost()
        finally:
            for it, _t0, mapping in outstanding.values():
                _close(mapping)
                it.result.error = it.result.error or "not answered"
                self._done(it)
            if assoc is not None:
                try:
                    assoc.release()
                except NetworkError:
                    assoc.abort()
                self._lost()

    def _idle(self) -> bool:
        """Nothing left for this worker: the queue is empty, or a fatal error stopped the pipeline."""
        with self.lock:
            return not self.queue or self.fatal is not None

    def run(self) -> None:
        threads = [
            threading.Thread(target=self.worker, name=f"fastdicom-store-{i}", daemon=True) for i in range(self.n)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Anything left (a fatal error stopped the workers) is reported, not dropped.
        while self.queue:
            it = self.queue.popleft()
            it.result.error = it.result.error or f"network: {self.fatal or 'not sent'}"
            self.on_result(it.result)


def store(
    sources,
    address: str,
    *,
    associations: int = 4,
    calling_ae: str = "FASTDICOM",
    async_ops: int | None = 8,
    retries: int = 3,
    backoff: float = 0.5,
    max_pdu: int = 1 << 20,
    timeout: float = 60.0,
    tls=None,
    log: str | None = None,
    progress: bool | None = None,
    user_identity: pdu.UserIdentity | None = None,
) -> StoreReport:
    """Send DICOM files (paths, folders) to a Storage SCP; return a :class:`StoreReport`.

    Parameters
    ----------
    associations : int
        Parallel associations draining one queue.
    async_ops : int, optional
        Propose an asynchronous operations window of this many outstanding
        requests (default 8; pipelined up to what the peer accepts, which for
        most peers is one). None sends no such item, for peers that drop
        associations carrying it.
    retries, backoff : int, float
        Attempts after the first for A7xx statuses, transient rejections and
        dropped associations, waiting ``backoff * 2**k`` seconds.
    log : str, optional
        Write one JSON line per instance to this file.
    progress : bool, optional
        Draw a progress line on stderr (default: when stderr is a terminal).
    """
    t0 = time.perf_counter()
    items = _scan(_expand(sources))
    report = StoreReport()
    results_lock = threading.Lock()
    log_file = open(log, "w") if log else None  # noqa: SIM115
    total = len(items)
    done = [0, 0]
    show = sys.stderr.isatty() if progress is None else progress

    def on_result(r: InstanceResult) -> None:
        with results_lock:
            report.results.append(r)
            done[0] += 1
            done[1] += r.bytes if r.ok else 0
            if log_file is not None:
                log_file.write(json.dumps(r.as_json()) + "\n")
            if show:
                secs = max(time.perf_counter() - t0, 1e-9)
                sys.stderr.write(
                    f"\r{done[0]}/{total} objects  {done[1] / 1e6:,.1f} MB  {done[1] / 1e6 / secs:,.1f} MB/s "
                )
                sys.stderr.flush()

    try:
        for it in items:
            if it.result.error is not None:
                on_result(it.result)
        for contexts in _contexts(items):
            pipe = _Pipeline(
                [it for it in items if it.result.error is None],
                contexts,
                address,
                associations=associations,
                calling_ae=calling_ae,
                async_ops=async_ops,
                retries=retries,
                backoff=backoff,
                max_pdu=max_pdu,
                timeout=timeout,
                tls=tls,
                on_result=on_result,
                user_identity=user_identity,
            )
            pipe.run()
            report.associations += pipe.associations
    finally:
        if log_file is not None:
            log_file.close()
        if show:
            sys.stderr.write("\n")
    order = {it.result.path: k for k, it in enumerate(items)}
    report.results.sort(key=lambda r: order.get(r.path, 0))
    report.seconds = time.perf_counter() - t0
    return report


__all__ = ["InstanceResult", "StoreReport", "echo", "parse_address", "store", "queue"]
