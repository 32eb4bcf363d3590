"""Pure-Python twin of ``fastdicom._rust.pdata_recv`` (crate ``fastdicom-net``).

Same arguments, results and stopping points: whole PDUs are read (never a
byte past one), the data fragments of one data set on ``context_id`` are
appended to ``fd`` (-1 drains them), and it returns
``(bytes, errno, stop, extra)`` with ``stop`` a :class:`~fastdicom.net.dataplane.Stop`:
at the last fragment (``DONE``), at a PDV the association must handle
(``PDVS``), at a PDU header that is not P-DATA-TF or exceeds ``max_pdu``
(``HEADER``, body unread) or at a malformed body (``MALFORMED``). A write
error is remembered (its errno) and the rest of the data set drained. Works
on TLS sockets too.
"""

from __future__ import annotations

import errno as _errno
import os
import socket
import struct
import time

from .dataplane import Stop
from .pdu import PDataTF, PDUError, PduType
from .pdu import decode as decode_pdu


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


def pdata_recv(sock: socket.socket, context_id: int, max_pdu: int, fd: int, timeout: float | None, hasher=None):
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
            if kind != PduType.P_DATA_TF or length > max_pdu:
                return received, error, Stop.HEADER, bytes(header)
            if length > len(body):
                body = bytearray(length)
            view = memoryview(body)[:length]
            _read_exact(sock, view, deadline)
            try:
                pdata = decode_pdu(PduType.P_DATA_TF, view)
            except PDUError as exc:
                return received, error, Stop.MALFORMED, str(exc)
            assert isinstance(pdata, PDataTF)
            pdvs = pdata.pdvs
            for k, pdv in enumerate(pdvs):
                value = pdv.value
                if pdv.context_id != context_id or pdv.is_command:
                    return received, error, Stop.PDVS, [(c, f, bytes(v)) for c, f, v in pdvs[k:]]
                received += len(value)
                if fd >= 0 and not error:
                    try:
                        while len(value):
                            n = os.write(fd, value)
                            if hasher is not None:
                                hasher.update(value[:n])
                            value = value[n:]
                    except OSError as exc:
                        error = exc.errno or _errno.EIO
                if pdv.is_last:
                    return received, error, Stop.DONE, [(c, f, bytes(v)) for c, f, v in pdvs[k + 1 :]]
    finally:
        sock.settimeout(previous)
