"""Pure-Python twin of ``fastdicom._rust.pdata_send`` (crate ``fastdicom-net``).

Same arguments and the same bytes on the wire: one PDV per P-DATA-TF PDU,
even fragments of at most ``fragment`` bytes, the last-fragment bit on the
last, the command bit for command sets. Plain sockets get ``sendmsg`` of the
header and a view of the payload (no copy); TLS sockets get ``sendall``.
"""

from __future__ import annotations

import ssl

from .pdu import pdata_header


def pdata_send(sock, payload, context_id: int, command: bool, fragment: int) -> None:
    if fragment < 2 or fragment % 2:
        raise ValueError("fragment size must be even, at least 2")
    view = memoryview(payload).cast("B")
    tls = isinstance(sock, ssl.SSLSocket)
    n = len(view)
    pos = 0
    base = 0x01 if command else 0x00
    while True:
        end = min(pos + fragment, n)
        last = end == n
        header = pdata_header(context_id, base | (0x02 if last else 0x00), end - pos)
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
