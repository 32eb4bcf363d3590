"""The data plane: P-DATA-TF PDUs between a socket and memory or a file, without Python per fragment.

Three capabilities of the registry (:mod:`fastdicom._backends`) carry it:
``pdata_send`` (a message part from memory), ``pdata_sendfile`` (a data set
from a file, with ``sendfile``) and ``pdata_recv`` (one data set's fragments
from the socket to a file descriptor). The Rust implementations drive the
socket's descriptor with the GIL released; their twins are
:mod:`fastdicom.net._send_py` and :mod:`fastdicom.net._recv_py`. Which one a
socket gets is the registry's rule (:data:`fastdicom._backends.UNSUITABLE`:
a TLS socket takes the twins, which go through the ``ssl`` module).

:class:`Stop` says why ``pdata_recv`` returned; it mirrors the Rust enum
``fastdicom_net::Stop`` (the Rust binding returns its values as strings).
:class:`DataSink` is what receives a data set.
"""

from __future__ import annotations

import enum
import ssl
from collections.abc import Callable
from typing import Any, Protocol

from .. import _backends
from .pdu import Pdv


class Stop(str, enum.Enum):
    """Why the receiving data plane stopped (``fastdicom_net::Stop``)."""

    #: The data set's last fragment was written; ``extra``: the PDVs that followed it in its PDU.
    DONE = "done"
    #: A PDV that is not a data fragment of this data set; ``extra``: it and the rest of its PDU.
    PDVS = "pdvs"
    #: A PDU that is not P-DATA-TF or exceeds the limit; ``extra``: its 6-byte header (body unread).
    HEADER = "header"
    #: A P-DATA-TF body that does not parse; ``extra``: why.
    MALFORMED = "malformed"


_STOPS = {s.value: s for s in Stop}


class DataSink(Protocol):
    """Where the data set of a message goes, fragment by fragment.

    The association writes fragments it handles itself with :meth:`write`;
    the data plane appends the others to :meth:`data_plane_fd` (-1: it counts
    and drops them) and reports with :meth:`data_plane_done`.
    """

    def write(self, view: memoryview) -> None: ...

    def data_plane_fd(self) -> int: ...

    def data_plane_done(self, received: int, errno: int) -> None: ...


class FileRegion:
    """A data set held in a file: ``length`` bytes from ``offset`` of the open descriptor ``fd``.

    Sent with ``sendfile`` between the PDU headers (zero-copy). The
    descriptor stays the caller's to close.
    """

    __slots__ = ("fd", "offset", "length")

    def __init__(self, fd: int, offset: int, length: int) -> None:
        self.fd, self.offset, self.length = fd, offset, length

    def __len__(self) -> int:
        return self.length


class DataPlane:
    """The three data plane functions chosen for one socket (by the registry, once)."""

    __slots__ = ("send", "sendfile", "_recv", "_hasher_type")

    def __init__(self, sock: Any) -> None:
        traits = ("tls",) if isinstance(sock, ssl.SSLSocket) else ()
        self.send: Callable[..., None] = _backends.resolve_for("pdata_send", traits)[1].pdata_send
        self.sendfile: Callable[..., None] = _backends.resolve_for("pdata_sendfile", traits)[1].pdata_sendfile
        recv = _backends.resolve_for("pdata_recv", traits)[1]
        self._recv: Callable[..., tuple[int, int, str, Any]] = recv.pdata_recv
        #: The hasher class the native receiver feeds (None: the twin feeds any object with ``update``).
        self._hasher_type: type | None = getattr(recv, "Xxh3", None)

    def takes(self, hasher: Any) -> bool:
        """Whether :meth:`receive` can feed ``hasher`` the bytes it writes."""
        return self._hasher_type is None or isinstance(hasher, self._hasher_type)

    def receive(
        self, sock: Any, context_id: int, max_pdu: int, fd: int, timeout: float | None, hasher: Any = None
    ) -> tuple[int, int, Stop, Any]:
        """``pdata_recv``, its stop reason as a :class:`Stop` and PDVs as :class:`~fastdicom.net.pdu.Pdv`.
        ``hasher`` (one :meth:`takes`) is fed exactly the bytes written to ``fd``."""
        if hasher is None:
            n, err, stop, extra = self._recv(sock, context_id, max_pdu, fd, timeout)
        else:
            n, err, stop, extra = self._recv(sock, context_id, max_pdu, fd, timeout, hasher)
        why = _STOPS[stop]
        if why is Stop.DONE or why is Stop.PDVS:
            extra = [Pdv(*p) for p in extra]
        return n, err, why, extra
