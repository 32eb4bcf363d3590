"""Pure-Python twin of ``fastdicom._rust.pdata_recv`` (crate ``fastdicom-net``).

Same arguments, results and stopping points: whole PDUs are read (never a
byte past one), the data fragments of one data set on ``context_id`` are
appended to ``fd`` (-1 drains them), and it returns
``(bytes, errno, stop, extra)`` at the last fragment (``"done"``), at a PDV the
association must handle (``"pdvs"``), at a PDU header that is not P-DATA-TF or
exceeds ``max_pdu`` (``"header"``, body unread) or at a malformed body
(``"malformed"``). A write error is remembered (its errno) and the rest of
the data set drained. Works on TLS sockets too.
"""

from __future__ import annotations

import errno as _errno
import os
import socket
import struct
import time

from .pdu import PDUError
from .pdu import decode as decode_pdu

P_DATA_TF = 0x04


def _read_exact(sock, view: memoryview, deadline: float | None) -> None:
    got = 0
    while got < len(view):
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out waiting for the peer")
            sock.settimeout(left)
        k = sock.recv_into(view[got:], len(view) - got)
        if k == 0:
            raise ConnectionError("connection closed by the peer")
        got += k


def pdata_recv(sock: socket.socket, context_id: int, max_pdu: int, fd: int, timeout: float | None):
    received = 0
    error = 0
    header = bytearray(6)
    body = bytearray()
    previous = sock.gettimeout()
    try:
        while True:
            deadline = None if timeout is None else time.monotonic() + timeout
            if timeout is None:
                sock.settimeout(None)
            _read_exact(sock, memoryview(header), deadline)
            kind, _, length = struct.unpack(">BBL", header)
            if kind != P_DATA_TF or length > max_pdu:
                return received, error, "header", bytes(header)
            if length > len(body):
                body = bytearray(length)
            view = memoryview(body)[:length]
            _read_exact(sock, view, deadline)
            try:
                pdvs = decode_pdu(P_DATA_TF, view).pdvs
            except PDUError as exc:
                return received, error, "malformed", str(exc)
            for k, (ctx, control, value) in enumerate(pdvs):
                if ctx != context_id or control & 0x01:
                    return received, error, "pdvs", [(c, f, bytes(v)) for c, f, v in pdvs[k:]]
                received += len(value)
                if fd >= 0 and not error:
                    try:
                        while len(value):
                            value = value[os.write(fd, value) :]
                    except OSError as exc:
                        error = exc.errno or _errno.EIO
                if control & 0x02:
                    return received, error, "done", [(c, f, bytes(v)) for c, f, v in pdvs[k + 1 :]]
    finally:
        sock.settimeout(previous)
