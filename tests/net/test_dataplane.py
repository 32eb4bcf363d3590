"""The data plane's receive and sendfile halves: Rust and its Python twins give the same results."""

from __future__ import annotations

import errno
import os
import socket
import struct
import threading
import time

import pytest

from fastdicom.net import pdu

from ..conftest import implementations


def _impls(capability: str):
    out = [(name, getattr(mod, capability)) for name, mod in implementations(capability)]
    assert out
    return out


RECEIVERS = _impls("pdata_recv")
SENDFILES = _impls("pdata_sendfile")


def _pdu(*pdvs: tuple[int, int, bytes]) -> bytes:
    return pdu.encode(pdu.PDataTF([(c, f, v) for c, f, v in pdvs]))


def _feed(wire: bytes, close: bool = True):
    """A socket pair: the peer writes ``wire`` from a thread (and closes when ``close``)."""
    a, b = socket.socketpair()

    def writer():
        b.sendall(wire)
        if close:
            b.shutdown(socket.SHUT_WR)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    return a, b, t


def _receive(recv, wire: bytes, tmp_path, *, context=3, max_pdu=1 << 20, close=True, timeout=10.0):
    a, b, t = _feed(wire, close)
    path = tmp_path / f"out{time.monotonic_ns()}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        result = recv(a, context, max_pdu, fd, timeout)
        rest = b""
        a.setblocking(False)
        try:
            rest = a.recv(1 << 20)
        except BlockingIOError:
            pass
    finally:
        os.close(fd)
        t.join()
        a.close()
        b.close()
    return result, path.read_bytes(), rest


@pytest.mark.parametrize("name,recv", RECEIVERS, ids=[n for n, _ in RECEIVERS])
def test_receive_writes_one_data_set_and_keeps_what_follows(name, recv, tmp_path):
    payload = os.urandom(3_000_001) + b"x"  # even
    wire = b"".join(_pdu((3, 0, payload[i : i + 16378])) for i in range(0, len(payload) - 2, 16378))
    wire += _pdu((3, 0x02, b"zz"), (3, 0x03, b"next-command"))
    release = pdu.encode(pdu.ReleaseRQ())
    (n, err, stop, extra), written, rest = _receive(recv, wire + release, tmp_path)
    assert (n, err, stop) == (len(payload) + 2, 0, "done")
    assert written == payload + b"zz"
    assert [tuple(x) for x in extra] == [(3, 3, b"next-command")]
    assert rest == release  # nothing past the last PDU was consumed


@pytest.mark.parametrize("name,recv", RECEIVERS, ids=[n for n, _ in RECEIVERS])
def test_receive_stops_where_the_association_must_decide(name, recv, tmp_path):
    # a PDV on another context: it and the rest of its PDU come back
    (n, err, stop, extra), written, _ = _receive(
        recv, _pdu((3, 0, b"ab")) + _pdu((5, 0, b"cd"), (3, 2, b"ef")), tmp_path
    )
    assert (n, stop, written) == (2, "pdvs", b"ab")
    assert [tuple(x) for x in extra] == [(5, 0, b"cd"), (3, 2, b"ef")]
    # a command fragment in the middle of the data set
    (n, err, stop, extra), written, _ = _receive(recv, _pdu((3, 1, b"cmd!")), tmp_path)
    assert (n, stop, [tuple(x) for x in extra]) == (0, "pdvs", [(3, 1, b"cmd!")])
    # an A-ABORT: its header only, the body is left on the socket
    abort = pdu.encode(pdu.Abort(2, 0))
    (n, err, stop, extra), written, rest = _receive(recv, _pdu((3, 0, b"ab")) + abort, tmp_path)
    assert (n, stop, extra, written, rest) == (2, "header", abort[:6], b"ab", abort[6:])
    # a P-DATA-TF beyond the limit: header only
    big = _pdu((3, 0, bytes(200)))
    (n, err, stop, extra), written, rest = _receive(recv, big, tmp_path, max_pdu=100)
    assert (n, stop, extra, rest) == (0, "header", big[:6], big[6:])
    # a PDV that lies about its length
    bad = struct.pack(">BBLLBB", 4, 0, 8, 9, 3, 0) + b"ab"
    (n, err, stop, extra), written, _ = _receive(recv, bad, tmp_path)
    assert stop == "malformed" and "PDV length" in extra


@pytest.mark.parametrize("name,recv", RECEIVERS, ids=[n for n, _ in RECEIVERS])
def test_receive_drains_after_a_write_error(name, recv, tmp_path):
    payload = bytes(range(256)) * 4096
    wire = b"".join(_pdu((1, 0, payload[i : i + 65536])) for i in range(0, len(payload), 65536))
    wire += _pdu((1, 2, b"!!"))
    a, b, t = _feed(wire)
    ro = os.open(tmp_path / "ro", os.O_RDONLY | os.O_CREAT, 0o600)  # writes fail with EBADF
    try:
        n, err, stop, extra = recv(a, 1, 1 << 20, ro, 10.0)
    finally:
        os.close(ro)
        t.join()
        a.close()
        b.close()
    assert (n, err, stop, list(extra)) == (len(payload) + 2, errno.EBADF, "done", [])


@pytest.mark.parametrize("name,recv", RECEIVERS, ids=[n for n, _ in RECEIVERS])
def test_receive_closed_and_silent_peers(name, recv, tmp_path):
    with pytest.raises(ConnectionError):  # closed in the middle of a PDU
        _receive(recv, _pdu((3, 0, b"abcdef"))[:9], tmp_path)
    with pytest.raises(ConnectionError):  # closed between PDUs
        _receive(recv, _pdu((3, 0, b"ab")), tmp_path)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):  # the peer stops inside a PDU: the per-PDU deadline fires
        _receive(recv, _pdu((3, 0, b"abcdef"))[:9], tmp_path, close=False, timeout=0.3)
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize(
    "length,fragment",
    [(n, f) for n in (0, 2, 1000, 65538, 3 << 20) for f in (2, 16378, 1 << 20) if n // f <= 5000],
)
def test_sendfile_twins_put_the_same_bytes_on_the_wire_as_pdata_send(length, fragment, tmp_path):
    body = os.urandom(length)
    path = tmp_path / "obj"
    path.write_bytes(b"P" * 132 + body + b"tail")
    send = _impls("pdata_send")[-1][1]
    wires = []
    for _name, sendfile in SENDFILES + [("send", None)]:
        a, b = socket.socketpair()
        a.settimeout(10)
        got = bytearray()

        def reader(b=b, got=got):
            while chunk := b.recv(1 << 16):
                got.extend(chunk)

        t = threading.Thread(target=reader)
        t.start()
        if sendfile is None:
            send(a, memoryview(body), 7, False, fragment)
        else:
            with open(path, "rb") as f:
                sendfile(a, f.fileno(), 132, length, 7, fragment)
        a.close()
        t.join()
        b.close()
        wires.append(bytes(got))
    assert all(w == wires[-1] for w in wires)


@pytest.mark.parametrize("name,sendfile", SENDFILES, ids=[n for n, _ in SENDFILES])
def test_sendfile_refuses_a_file_that_ends_early_and_a_peer_that_stops(name, sendfile, tmp_path):
    path = tmp_path / "short"
    path.write_bytes(bytes(1000))
    a, b = socket.socketpair()
    a.settimeout(5)
    with open(path, "rb") as f, pytest.raises(OSError):
        sendfile(a, f.fileno(), 0, 2000, 1, 1 << 20)
    a.close()
    b.close()
    path.write_bytes(bytes(64 << 20))
    a, b = socket.socketpair()
    a.settimeout(0.3)
    t0 = time.monotonic()
    with open(path, "rb") as f, pytest.raises(OSError):  # TimeoutError is an OSError
        sendfile(a, f.fileno(), 0, 64 << 20, 1, 1 << 20)
    assert time.monotonic() - t0 < 10
    a.close()
    b.close()
    a, b = socket.socketpair()
    with open(path, "rb") as f, pytest.raises(ValueError):
        sendfile(a, f.fileno(), 0, 10, 1, 3)
    a.close()
    b.close()
