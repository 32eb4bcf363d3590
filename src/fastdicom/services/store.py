"""The Storage service, SCU role: many objects over several associations, every outcome reported.

``store(instances, "AET@host:port", associations=4)``:

1. takes any iterable of instances: paths (files and folders, whose headers
   are read once, here, for SOP Class, SOP Instance, transfer syntax and
   where the data set starts), :class:`~fastdicom.dataset.dataset.Dataset`
   objects, or :class:`Instance` records (path or bytes, SOP Class, SOP
   Instance, transfer syntax: what an archive feeding a C-MOVE knows);
2. proposes for each SOP class its objects' own transfer syntaxes, each with
   Explicit and Implicit VR Little Endian behind it; sets needing more than
   128 presentation contexts are split over successive groups of
   associations;
3. ``associations`` worker threads each open an association and drain one
   shared queue; a file's data set goes from the file to the socket with
   ``sendfile`` between the PDU headers (zero-copy from the page cache, the
   GIL released, see :class:`~fastdicom.net.dataplane.FileRegion`);
4. an object is sent in its own transfer syntax when accepted; otherwise it
   is converted to an accepted uncompressed syntax (decoded first when it is
   compressed and a codec can, see :func:`fastdicom.transcode`), and when
   nothing can, reported as failed: pixel data is never stripped;
5. out-of-resources statuses (A7xx), transient rejections and dropped
   associations are retried on a new association, waiting
   :meth:`StoreOptions.delay` (one exponential backoff); an object whose
   C-STORE succeeded is never sent again;
6. when the peer accepts an asynchronous operations window, requests are
   pipelined up to it (``async_ops`` proposes one; ``None`` never sends the
   item, for peers that drop associations carrying it).

The options are one :class:`StoreOptions` value. The report gives every
instance's status, warnings and error comment, and throughput and latency
percentiles.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .. import _backends
from ..dataset.dataset import Dataset
from ..dataset.read import read
from ..dataset.write import encode_dataset
from ..dictionary import uid as _uid
from ..errors import FastDicomError
from ..net import dimse, pdu
from ..net.association import Association, AssociationAborted, AssociationRejected, NetworkError
from ..net.dataplane import FileRegion
from ..net.dimse import Category, DimseChannel
from .base import parse_address
from .storage import out_of_resources

#: The syntaxes proposed behind an object's own, and the ones it may be converted to.
UNCOMPRESSED = (_uid.ExplicitVRLittleEndian, _uid.ImplicitVRLittleEndian)
#: How much of a file is read first for its header (grown when the header is longer).
HEAD = 1 << 16


class Instance(NamedTuple):
    """One object to send: where its bytes are, and what it is."""

    #: A path, the bytes of a Part 10 file (or of a bare data set), or a Dataset.
    source: Any
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    #: Where the data set starts in ``source`` (after the File Meta); None: found when it is sent.
    offset: int | None = None


@dataclass(frozen=True)
class StoreOptions:
    """How :func:`store` sends (see its parameters)."""

    associations: int = 4
    calling_ae: str = "FASTDICOM"
    async_ops: int | None = 8
    retries: int = 3
    backoff: float = 0.5
    max_pdu: int = 1 << 20
    timeout: float = 60.0
    tls: ssl.SSLContext | None = None
    user_identity: pdu.UserIdentity | None = None
    #: C-MOVE sub-operations: (Move Originator AE Title, Move Originator Message ID) on every C-STORE-RQ.
    move_originator: tuple[str, int] | None = None
    #: Asked before each object is taken: True stops sending (C-CANCEL of a C-MOVE); what is left is reported
    #: with the error "cancelled".
    cancelled: Callable[[], bool] | None = None

    def delay(self, attempt: int) -> float:
        """The one backoff: the wait before trying again after ``attempt`` attempts (1, 2...)."""
        return self.backoff * 2 ** (attempt - 1)


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
    #: C-STORE requests sent for it (the one attempt counter: retries stop past ``retries``).
    attempts: int = 0
    bytes: int = 0
    latency: float | None = None
    sent_as: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and dimse.status_category(self.status) in (Category.SUCCESS, Category.WARNING)

    def as_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
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

    def summary_rows(self) -> list[tuple[str, str]]:
        """The summary as (what, value) rows."""
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
        return rows

    def summary_table(self, title: str | None = None) -> Any:
        """The summary as a :class:`rich.table.Table` (what ``fastdicom send`` prints)."""
        return two_column_table(self.summary_rows(), title)

    def summary(self) -> str:
        """The summary as plain text, one aligned row a line."""
        rows = self.summary_rows()
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def two_column_table(rows: Sequence[tuple[str, str]], title: str | None = None) -> Any:
    """A borderless rich table of (what, value) rows: the CLI's summaries (plain text where not a terminal)."""
    from rich.table import Table

    table = Table(title=title, show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(no_wrap=True)
    for key, value in rows:
        table.add_row(key, value)
    return table


@dataclass
class _Item:
    """An instance in the queue, with its result and when it may go again."""

    instance: Instance
    result: InstanceResult
    not_before: float = 0.0


# -- what to send ----------------------------------------------------------------------------------


def data_set_offset(head: memoryview | bytes) -> int:
    """Where the data set starts in a Part 10 file's first bytes (after preamble and File Meta)."""
    return int(_backends.resolve("parse")[1].open_dataset(memoryview(head), True).body_start)


#: (0008,0016) SOP Class UID, (0008,0018) SOP Instance UID.
_SOP_CLASS, _SOP_INSTANCE = 0x00080016, 0x00080018


def _scan_table(parse: Any, head: bytes) -> tuple[str, str, str, int] | None:
    """SOP Class, SOP Instance, transfer syntax and data set offset straight from the parser's element table
    (no Dataset, no dictionary); None when the file needs the general path (no File Meta, deflated, a UID
    that is not plain text, or not in ``head``)."""
    try:
        opened = parse.open_dataset(memoryview(head), True)
    except FastDicomError:
        return None
    table, ts = opened.body_table, opened.transfer_syntax
    if table is None or not ts:
        return None
    sop_class = table.value(head, _SOP_CLASS, opened.little_endian, None)
    sop_instance = table.value(head, _SOP_INSTANCE, opened.little_endian, None)
    if not (isinstance(sop_class, str) and isinstance(sop_instance, str) and sop_class and sop_instance):
        return None
    return str(sop_class), str(sop_instance), str(ts), int(opened.body_start)


def _scan(path: str) -> Instance:
    """The header of a file, read once: SOP Class, SOP Instance, transfer syntax and the data set's offset."""
    parse = _backends.resolve("parse")[1]
    head, _complete = parse.read_prefix(path, HEAD)
    found = _scan_table(parse, head)
    if found is not None:
        return Instance(path, *found)
    size = HEAD
    while True:
        head, complete = parse.read_prefix(path, size)
        try:
            ds = read(memoryview(head), stop_before_pixels=True)
            sop_class, sop_instance = ds.get("SOPClassUID"), ds.get("SOPInstanceUID")
            if complete or (sop_class and sop_instance):
                offset = data_set_offset(head)
                break
        except FastDicomError:
            if complete:
                raise
        size *= 4
    if not (sop_class and sop_instance):
        raise FastDicomError("no SOP Class or SOP Instance UID")
    return Instance(path, sop_class, sop_instance, ds.transfer_syntax or _uid.ExplicitVRLittleEndian, offset)


def _of_dataset(ds: Dataset) -> Instance:
    sop_class, sop_instance = ds.get("SOPClassUID"), ds.get("SOPInstanceUID")
    if not (sop_class and sop_instance):
        raise FastDicomError("no SOP Class or SOP Instance UID")
    return Instance(ds, sop_class, sop_instance, ds.transfer_syntax or _uid.ExplicitVRLittleEndian)


def _of_bytes(data: bytes) -> Instance:
    return _of_dataset(read(data, stop_before_pixels=True))._replace(source=data)


def _given(inst: Instance) -> Instance:
    return inst


def _expand(sources: Any) -> Iterator[tuple[str, Callable[[Any], Instance], Any]]:
    """``(name in the report, how to learn the instance, from what)`` for each source, folders walked in order."""
    if isinstance(sources, (str, os.PathLike, Dataset, Instance, bytes, bytearray, memoryview)):
        sources = [sources]
    for k, s in enumerate(sources):
        if isinstance(s, str):
            if os.path.isdir(s):
                yield from _walk(s)
            else:
                yield s, _scan, s
        elif isinstance(s, tuple):  # an Instance, or the four fields of one
            inst = Instance(*s)
            yield (inst.source if isinstance(inst.source, str) else f"<instance {k}>"), _given, inst
        elif isinstance(s, Dataset):
            yield (s.filename or f"<dataset {k}>"), _of_dataset, s
        elif isinstance(s, (bytes, bytearray, memoryview)):
            yield f"<bytes {k}>", _of_bytes, bytes(s)
        else:
            p = os.fspath(s)
            if os.path.isdir(p):
                yield from _walk(p)
            else:
                yield p, _scan, p


def _walk(folder: str) -> Iterator[tuple[str, Callable[[Any], Instance], Any]]:
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for f in sorted(files):
            yield os.path.join(root, f), _scan, os.path.join(root, f)


def _items(sources: Any) -> list[_Item | InstanceResult]:
    """The instances to send, and the results of those that cannot be (unreadable)."""
    out: list[_Item | InstanceResult] = []
    for name, learn, source in _expand(sources):
        try:
            inst = learn(source)
        except (FastDicomError, OSError) as exc:
            out.append(InstanceResult(name, error=f"unreadable: {exc}"))
            continue
        r = InstanceResult(name, inst.sop_class_uid, inst.sop_instance_uid, inst.transfer_syntax)
        out.append(_Item(inst, r))
    return out


def _contexts(items: list[_Item]) -> list[list[pdu.PresentationContext]]:
    """Presentation contexts for the objects, in groups of at most 128."""
    wanted = dict.fromkeys((it.instance.sop_class_uid, it.instance.transfer_syntax) for it in items)
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


def payload(inst: Instance, ts: str) -> tuple[FileRegion | memoryview, Any]:
    """The data set to send in ``ts``, and what to close once it is answered (an open file, or None)."""
    src = inst.source
    if ts == inst.transfer_syntax and isinstance(src, str):
        f = open(src, "rb")  # noqa: SIM115 - closed with the response (see _Pipeline._close)
        try:
            fd = f.fileno()
            size = os.fstat(fd).st_size
            offset = inst.offset if inst.offset is not None else data_set_offset(os.pread(fd, HEAD, 0))
            if size <= offset:
                raise FastDicomError("no data set after the File Meta")
        except BaseException:
            f.close()
            raise
        # Sent from the page cache with sendfile: no mapping, no copy through user memory.
        return FileRegion(fd, offset, size - offset), f
    if ts == inst.transfer_syntax and isinstance(src, (bytes, bytearray, memoryview)):
        view = memoryview(src)
        return view[inst.offset if inst.offset is not None else data_set_offset(view) :], None
    little, explicit, deflated = _uid.encoding_of(ts)
    if deflated:
        raise FastDicomError("conversion to the deflated syntax is not offered")
    ds = src if isinstance(src, Dataset) else read(bytes(src) if not isinstance(src, str) else src)
    if ts != inst.transfer_syntax and _uid.is_encapsulated(inst.transfer_syntax):
        # The peer refused the compressed syntax: decode (never strip) when a codec can.
        from ..transcode import transcode  # (numpy and the codecs: loaded only when a conversion needs them)

        ds = transcode(ds, ts)
    return memoryview(b"".join(bytes(c) for c in encode_dataset(ds, little, explicit))), None


# -- the pipeline ----------------------------------------------------------------------------------


class _Pipeline:
    """Workers draining one queue of items over their associations, one group of contexts at a time.

    One condition (``_cond``) guards the queue, the counters and the reports.
    """

    def __init__(self, address: str, options: StoreOptions, report: Callable[[InstanceResult], None]) -> None:
        self.called, self.host, self.port = parse_address(address)
        self.options = options
        self._report = report
        self._cond = threading.Condition(threading.Lock())
        self.queue: deque[_Item] = deque()
        self.contexts: list[pdu.PresentationContext] = []
        self.in_flight = 0
        self.associations = 0
        self.live = 0
        self.fatal: str | None = None

    def run(self, items: list[_Item], contexts: list[pdu.PresentationContext]) -> None:
        """Send the items that belong to this group of contexts (each belongs to exactly one group)."""
        pairs = {(pc.abstract_syntax, pc.transfer_syntaxes[0]) for pc in contexts}
        with self._cond:
            self.contexts = contexts
            self.queue = deque(it for it in items if (it.instance.sop_class_uid, it.instance.transfer_syntax) in pairs)
            self.live, self.fatal = 0, None
        threads = [
            threading.Thread(target=self._worker, name=f"fastdicom-store-{i}", daemon=True)
            for i in range(self.options.associations)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with self._cond:  # anything left (a fatal error stopped the workers) is reported, not dropped
            while self.queue:
                it = self.queue.popleft()
                why = "cancelled" if self.fatal == "cancelled" else f"network: {self.fatal or 'not sent'}"
                it.result.error = it.result.error or why
                self._report(it.result)

    # -- queue ---------------------------------------------------------------------------------
    def _take(self, block: bool) -> _Item | None:
        """The next item ready to go; None when the queue is empty (or, not blocking, nothing is ready yet).

        A worker never waits for items other workers hold: whoever holds an
        item retries it itself, so an idle worker can leave.
        """
        with self._cond:
            while True:
                if self.options.cancelled is not None and self.fatal is None and self.options.cancelled():
                    self.fatal = "cancelled"
                if self.fatal == "cancelled":
                    return None
                now = time.monotonic()
                for _ in range(len(self.queue)):
                    it = self.queue.popleft()
                    if it.not_before <= now:
                        self.in_flight += 1
                        return it
                    self.queue.append(it)
                if not block or not self.queue or self.fatal is not None:
                    return None
                self._cond.wait(0.05)

    def _done(self, it: _Item) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify_all()
            self._report(it.result)

    def _retry(self, it: _Item, why: str) -> None:
        """Try again later, if attempts are left; else report it failed."""
        r = it.result
        if r.attempts > self.options.retries:
            r.error = r.error or why
            self._done(it)
            return
        it.not_before = time.monotonic() + self.options.delay(r.attempts)
        with self._cond:
            self.in_flight -= 1
            self.queue.append(it)
            self._cond.notify_all()

    def _idle(self) -> bool:
        """Nothing left for this worker: the queue is empty, or a fatal error stopped the pipeline."""
        with self._cond:
            return not self.queue or self.fatal is not None

    # -- one worker ----------------------------------------------------------------------------
    def _connect(self) -> Association | None:
        o = self.options
        for attempt in range(1, o.retries + 2):
            try:
                a = Association.request(
                    self.host,
                    self.port,
                    calling_ae=o.calling_ae,
                    called_ae=self.called,
                    contexts=[
                        pdu.PresentationContext(pc.id, pc.abstract_syntax, list(pc.transfer_syntaxes))
                        for pc in self.contexts
                    ],
                    async_ops=None if o.async_ops is None else (o.async_ops, 1),
                    max_pdu=o.max_pdu,
                    network_timeout=o.timeout,
                    tls=o.tls,
                    user_identity=o.user_identity,
                )
                with self._cond:
                    self.associations += 1
                    self.live += 1
                return a
            except AssociationRejected as exc:
                if not exc.transient:
                    with self._cond:
                        self.fatal = str(exc)
                    return None
                why = str(exc)
            except NetworkError as exc:
                why = str(exc)
            if attempt > o.retries:
                with self._cond:
                    # Others still sending (the peer limits associations): this worker just leaves.
                    if self.live == 0:
                        self.fatal = why
                return None
            time.sleep(o.delay(attempt))
        return None

    def _lost(self) -> None:
        with self._cond:
            self.live -= 1

    @staticmethod
    def _context_for(assoc: Association, inst: Instance) -> tuple[int, str] | None:
        same, other = None, None
        for pc in assoc.agreement.contexts.values():
            if pc.abstract_syntax != inst.sop_class_uid or pc.transfer_syntax is None:
                continue
            if pc.transfer_syntax == inst.transfer_syntax:
                same = (pc.id, pc.transfer_syntax)
            elif pc.transfer_syntax in UNCOMPRESSED:  # converted, or decoded when a codec can
                other = other or (pc.id, pc.transfer_syntax)
        return same or other

    @staticmethod
    def _close(held: Any) -> None:
        if held is not None:
            held.close()

    def _send(self, channel: DimseChannel, it: _Item, outstanding: dict[int, tuple[_Item, float, Any]]) -> None:
        r, inst = it.result, it.instance
        found = self._context_for(channel.association, inst)
        if found is None:
            r.error = f"no accepted presentation context for {inst.transfer_syntax} (transcoding needs a codec)"
            self._done(it)
            return
        ctx, ts = found
        try:
            data, held = payload(inst, ts)
        except (FastDicomError, OSError) as exc:
            r.error = f"not sent: {exc}"
            self._done(it)
            return
        mid = channel.next_message_id()
        r.attempts += 1
        r.sent_as = ts
        r.bytes = len(data)
        outstanding[mid] = (it, time.perf_counter(), held)
        command = {
            "CommandField": dimse.C_STORE_RQ,
            "MessageID": mid,
            "Priority": 0,
            "AffectedSOPClassUID": inst.sop_class_uid,
            "AffectedSOPInstanceUID": inst.sop_instance_uid,
        }
        if self.options.move_originator is not None:
            command["MoveOriginatorApplicationEntityTitle"], command["MoveOriginatorMessageID"] = (
                self.options.move_originator
            )
        try:
            channel.send_message(ctx, command, data)
        finally:
            if isinstance(data, memoryview):
                data.release()

    def _window(self, assoc: Association) -> int:
        asked = self.options.async_ops
        if not asked:
            return 1
        answered = assoc.agreement.async_ops[0]  # never more than we proposed, whatever the peer answered
        return max(1, min(asked, answered) if answered else asked)

    def _worker(self) -> None:
        assoc: Association | None = None
        channel: DimseChannel | None = None
        window = 1
        outstanding: dict[int, tuple[_Item, float, Any]] = {}
        try:
            while True:
                if assoc is None or channel is None:
                    if self._idle():
                        break
                    assoc = self._connect()  # holding no item while waiting for the peer
                    if assoc is None:
                        break
                    channel = DimseChannel(assoc)
                    window = self._window(assoc)
                try:
                    while len(outstanding) < window:
                        it = self._take(block=not outstanding)
                        if it is None:
                            break
                        try:
                            self._send(channel, it, outstanding)
                        except (AssociationAborted, NetworkError):
                            raise
                        except Exception as exc:  # one object's surprise is reported, not lost
                            if any(entry[0] is it for entry in outstanding.values()):
                                raise
                            it.result.error = f"not sent: {type(exc).__name__}: {exc}"
                            self._done(it)
                    if not outstanding:
                        if self._idle():
                            break
                        continue
                    rsp = channel.receive_message()
                    mid = rsp.command.get("MessageIDBeingRespondedTo")
                    entry = outstanding.pop(mid, None) if mid is not None else None
                    if entry is None:
                        raise NetworkError(f"response to unknown message ID {mid}")
                    it, t0, held = entry
                    self._close(held)
                    r = it.result
                    r.latency = time.perf_counter() - t0
                    r.status = int(rsp.command.get("Status", 0xFFFF))
                    r.error_comment = rsp.command.get("ErrorComment")
                    if out_of_resources(r.status):  # try again later
                        self._retry(it, f"status 0x{r.status:04X}")
                    else:
                        self._done(it)
                except (AssociationAborted, NetworkError) as exc:
                    for it, _t0, held in outstanding.values():
                        self._close(held)
                        self._retry(it, f"network: {exc}")
                    outstanding.clear()
                    assoc.abort()
                    assoc = channel = None
                    self._lost()
        finally:
            for it, _t0, held in outstanding.values():
                self._close(held)
                it.result.error = it.result.error or "not answered"
                self._done(it)
            if assoc is not None:
                try:
                    assoc.release()
                except NetworkError:
                    assoc.abort()
                self._lost()


def store(
    sources: Any,
    address: str,
    *,
    associations: int = 4,
    calling_ae: str = "FASTDICOM",
    async_ops: int | None = 8,
    retries: int = 3,
    backoff: float = 0.5,
    max_pdu: int = 1 << 20,
    timeout: float = 60.0,
    tls: ssl.SSLContext | None = None,
    log: str | None = None,
    progress: bool | None = None,
    user_identity: pdu.UserIdentity | None = None,
    options: StoreOptions | None = None,
    on_result: Callable[[InstanceResult], None] | None = None,
) -> StoreReport:
    """Send DICOM instances to a Storage SCP; return a :class:`StoreReport`.

    Parameters
    ----------
    sources : path, Dataset, Instance or iterable of them
        Files and folders (walked in order), data sets, or :class:`Instance`
        records (``(path or bytes, SOP Class UID, SOP Instance UID, transfer syntax)``).
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
    options : StoreOptions, optional
        All the sending options in one value (the keyword arguments above are ignored then).
    on_result : callable, optional
        ``on_result(InstanceResult)`` as each instance is settled (from the sending threads, under a lock:
        keep it short).
    """
    if options is None:
        options = StoreOptions(
            associations=associations,
            calling_ae=calling_ae,
            async_ops=async_ops,
            retries=retries,
            backoff=backoff,
            max_pdu=max_pdu,
            timeout=timeout,
            tls=tls,
            user_identity=user_identity,
        )
    t0 = time.perf_counter()
    entries = _items(sources)
    report = StoreReport()
    log_file = open(log, "w") if log else None  # noqa: SIM115 - closed below
    total = len(entries)
    done = [0, 0]
    show = sys.stderr.isatty() if progress is None else progress

    def settled(r: InstanceResult) -> None:  # called under the pipeline's lock
        report.results.append(r)
        if on_result is not None:
            on_result(r)
        done[0] += 1
        done[1] += r.bytes if r.ok else 0
        if log_file is not None:
            log_file.write(json.dumps(r.as_json()) + "\n")
        if show:
            secs = max(time.perf_counter() - t0, 1e-9)
            sys.stderr.write(f"\r{done[0]}/{total} objects  {done[1] / 1e6:,.1f} MB  {done[1] / 1e6 / secs:,.1f} MB/s ")
            sys.stderr.flush()

    items = [e for e in entries if isinstance(e, _Item)]
    try:
        for e in entries:
            if isinstance(e, InstanceResult):
                settled(e)
        groups = _contexts(items)
        if groups:
            pipeline = _Pipeline(address, options, settled)
            for contexts in groups:
                pipeline.run(items, contexts)
            report.associations = pipeline.associations
    finally:
        if log_file is not None:
            log_file.close()
        if show:
            sys.stderr.write("\n")
    order = {id(e if isinstance(e, InstanceResult) else e.result): k for k, e in enumerate(entries)}
    report.results.sort(key=lambda r: order.get(id(r), 0))
    report.seconds = time.perf_counter() - t0
    return report


__all__ = ["Instance", "InstanceResult", "StoreOptions", "StoreReport", "store"]
