"""Services: what each SOP class does, for both roles, over the protocol of :mod:`fastdicom.net`.

- :mod:`~fastdicom.services.base`: the :class:`Service` interface (SOP classes
  served, a sink for an announced data set, handling a batch of requests);
- :mod:`~fastdicom.services.dispatch`: :class:`Dispatcher`, the requests of an
  association to their services, answers in order;
- :mod:`~fastdicom.services.verification`: C-ECHO, both roles (:func:`echo`);
- :mod:`~fastdicom.services.storage`: C-STORE SCP into an archive, and
  :class:`StorageSCP` (a server with Verification and Storage);
- :mod:`~fastdicom.services.store`: the C-STORE SCU pipeline (:func:`store`).
"""

from .base import Request, Service, parse_address
from .dispatch import Dispatcher
from .storage import StorageSCP, StorageService, StoreStatus
from .store import Instance, InstanceResult, StoreOptions, StoreReport, store
from .verification import VerificationService, echo

__all__ = [
    "Dispatcher",
    "Instance",
    "InstanceResult",
    "Request",
    "Service",
    "StorageSCP",
    "StorageService",
    "StoreOptions",
    "StoreReport",
    "StoreStatus",
    "VerificationService",
    "echo",
    "parse_address",
    "store",
]
