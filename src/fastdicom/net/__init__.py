"""DICOM networking: the Upper Layer (PS3.8) and DIMSE (PS3.7); the services are in :mod:`fastdicom.services`.

The protocol: :mod:`~fastdicom.net.pdu` (PDUs), :mod:`~fastdicom.net.fsm` and
:mod:`~fastdicom.net.association` (the state machine on a socket),
:mod:`~fastdicom.net.dimse` (command sets, :class:`~fastdicom.net.dimse.DimseChannel`),
:mod:`~fastdicom.net.dataplane` (P-DATA in Rust or its twins),
:mod:`~fastdicom.net.negotiation` and :mod:`~fastdicom.net.server`.

For convenience this package also names the services' public functions
(resolved on first use; no module of this package imports the services):

- :func:`echo` runs C-ECHO;
- :func:`store` sends files over several associations and reports every instance;
- :class:`StorageSCP` receives them, streamed to disk and durable before success.
"""

from __future__ import annotations

from .._lazy import lazy_attributes
from .association import Association, AssociationAborted, AssociationRejected, NetworkError

#: Public names that live in fastdicom.services (module, name).
_SERVICES = {
    "StorageSCP": "fastdicom.services.storage",
    "echo": "fastdicom.services.verification",
    "parse_address": "fastdicom.services.base",
    "store": "fastdicom.services.store",
    "InstanceResult": "fastdicom.services.store",
    "StoreReport": "fastdicom.services.store",
}


__getattr__ = lazy_attributes(__name__, _SERVICES, globals())


__all__ = [
    "Association",
    "AssociationAborted",
    "AssociationRejected",
    "InstanceResult",
    "NetworkError",
    "StorageSCP",
    "StoreReport",
    "echo",
    "parse_address",
    "store",
]
