"""Pure-Python twin of ``fastdicom._rust.pdata_send`` (crate ``fastdicom-net``).

Same arguments and the same bytes on the wire: one PDV per P-DATA-TF PDU,
even fragments of at most ``fragment`` bytes, the last-fragment bit on the
last, the command bit for command sets. Plain sockets get ``sendmsg`` of the
header and a view of the payload (no copy); TLS sockets get ``sendall``.
"""

from __future__ import annotations

import os
import socket
import ssl

from .pdu import Control, pdata_header


def pdata_send(sock, payload, context_id: int, command: bool, fragment: int) -> None:
    if fragment < 2 or fragment % 2:
        raise ValueError("fragment size must be even, at least 2")
    view = memoryview(payload).cast("B")
    tls = isinstance(sock, ssl.SSLSocket)
    n = len(view)
    pos = 0
    base = Control.COMMAND if command else Control(0)
    while True:
        end = min(pos + fragment, n)
        last = end == n
        header = pdata_header(context_id, base | Control.LAST_FRAGMENT if last else base, end - pos)
        chunk = view[pos:end]
        if tls:
            sock.sendall(header + bytes(chunk))
        else:
            sent = sock.sendmsg([header, chunk])
            if sent < len(header):
                sock.sendall(header[sent:])
                sock.sendall(chunk)
            elif sent < len(header) + len(chunk):
                sock.sendall(chunk[sent - len(header) :])
        pos = end
        if last:
            return


def pdata_sendfile(sock, file_fd: int, offset: int, length: int, context_id: int, fragment: int) -> None:
    """Twin of ``_rust.pdata_sendfile``: the file's bytes ``offset..offset+length`` as P-DATA-TF PDUs.

    Headers go out with ``MSG_MORE`` on plain sockets; fragments through
    ``socket.sendfile`` (``os.sendfile`` where it can, reads and sends on TLS).
    """
    if fragment < 2 or fragment % 2:
        raise ValueError("fragment size must be even, at least 2")
    tls = isinstance(sock, ssl.SSLSocket)
    more = getattr(socket, "MSG_MORE", 0)
    with os.fdopen(os.dup(file_fd), "rb", buffering=0) as f:
        pos, left = offset, length
        while True:
            n = min(left, fragment)
            last = n == left
            header = pdata_header(context_id, Control.LAST_FRAGMENT if last else 0, n)
            if tls:
                sock.sendall(header)
            else:
                sent = sock.send(header, more)
                if sent < len(header):
                    sock.sendall(header[sent:])
            if n and sock.sendfile(f, pos, n) != n:
                raise OSError("the file ended before its data set was sent")
            pos += n
            left -= n
            if last:
                return
