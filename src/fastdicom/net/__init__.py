"""DICOM networking: the Upper Layer (PS3.8), DIMSE (PS3.7), Verification and Storage.

- :func:`echo` runs C-ECHO;
- :func:`store` sends files over several associations and reports every instance;
- :class:`StorageSCP` receives them, streamed to disk and durable before success.
"""

from .association import (
    Association,
    AssociationAborted,
    AssociationRejected,
    NetworkError,
)
from .scp import StorageSCP
from .scu import InstanceResult, StoreReport, echo, parse_address, store

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
