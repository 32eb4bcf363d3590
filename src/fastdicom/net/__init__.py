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
- :class:`StorageSCP` receives them, streamed to disk and durable before success;
- :func:`commit` asks for Storage Commitment and reports every instance committed or failed.
- :func:`find`, :func:`move` and :func:`get` are the Query/Retrieve SCU.
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
    "commit": "fastdicom.services.commitment",
    "CommitReport": "fastdicom.services.commitment",
    "CommitResult": "fastdicom.services.commitment",
    "find": "fastdicom.services.query_retrieve_scu",
    "move": "fastdicom.services.query_retrieve_scu",
    "get": "fastdicom.services.query_retrieve_scu",
    "FindResponses": "fastdicom.services.query_retrieve_scu",
    "RetrieveResult": "fastdicom.services.query_retrieve_scu",
    "QueryRetrieveError": "fastdicom.services.query_retrieve_scu",
}


__getattr__ = lazy_attributes(__name__, _SERVICES, globals())


__all__ = [
    "Association",
    "AssociationAborted",
    "AssociationRejected",
    "CommitReport",
    "CommitResult",
    "FindResponses",
    "InstanceResult",
    "NetworkError",
    "QueryRetrieveError",
    "RetrieveResult",
    "StorageSCP",
    "StoreReport",
    "commit",
    "echo",
    "find",
    "get",
    "move",
    "parse_address",
    "store",
]
