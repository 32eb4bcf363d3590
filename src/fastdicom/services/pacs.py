"""The PACS server of ``fastdicom serve``: Verification, Storage, Query/Retrieve (and Storage Commitment) on one port.

:class:`PacsServer` is an :class:`~fastdicom.net.server.AssociationServer`
whose :class:`~fastdicom.services.dispatch.Dispatcher` holds every service
over one :class:`fastdicom.archive.Archive` (folder + SQLite index): C-STORE
writes through ``archive.folder`` (durable and indexed before success is
answered), C-FIND/C-MOVE/C-GET read the index. Who may do what, the move
destinations and the limits come from one :class:`~fastdicom.config.ServerConfig`
(see :mod:`fastdicom.config` for the policy).

Storage Commitment (``services/commitment.py``, ``CommitmentService(archive, peers=...)``)
registers in :meth:`PacsServer._extra_services`, the one place for services
added beside these.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Sequence
from typing import Any

from ..config import ServerConfig
from ..net.server import AssociationInfo
from .base import Service
from .query_retrieve import QueryRetrieveService, requestor_scp_classes
from .storage import StorageSCP


class PacsServer(StorageSCP):
    """A small PACS on one port over the archive in ``directory`` (see the module): a
    :class:`~fastdicom.services.storage.StorageSCP` (so the same durability, operator's log, recovery, limits
    and graceful stop) over an :class:`~fastdicom.archive.Archive`, with Query/Retrieve and the services of
    :meth:`_extra_services` beside Verification and Storage.

    Parameters
    ----------
    directory : str
        The archive folder (created if missing); ``config.archive`` when None.
    config : ServerConfig, optional
        Local AE, port, peers and their rights, limits (:func:`fastdicom.config.load`).
        None: anyone may associate and store, query, retrieve; no move destinations.
    services : sequence of Service, optional
        More services on the same port.
    archive : Archive, optional
        An open archive to serve (``directory`` is then ignored; the caller closes it).
    durability, stop_after_failures :
        As for :class:`~fastdicom.services.storage.StorageSCP`.
    """

    def __init__(
        self,
        directory: str | None = None,
        *,
        config: ServerConfig | None = None,
        tls: ssl.SSLContext | None = None,
        duplicates: str = "overwrite",
        checksum: str = "xxh3",
        durability: str = "fsync",
        stop_after_failures: int = 0,
        services: Sequence[Service] = (),
        archive: Any = None,
        on_association: Callable[[AssociationInfo], Any] | None = None,
        on_store: Callable[[str | None, dict, AssociationInfo], Any] | None = None,
    ) -> None:
        self.config = config = config or ServerConfig()
        owns = archive is None
        if archive is None:
            from ..archive import Archive

            directory = directory or config.archive
            if not directory:
                raise ValueError("the PACS server needs an archive folder (a directory, or archive in the config)")
            archive = Archive(directory, checksum=checksum, duplicates=duplicates, durability=durability)
        self.query_retrieve = QueryRetrieveService(archive, config)
        self.archive = archive
        super().__init__(
            archive=archive,
            ae_title=config.ae_title,
            port=config.port,
            host=config.host,
            max_associations=config.limits.max_associations,
            network_timeout=config.limits.network_timeout,
            allowed_aes=config.allowed_aes,
            duplicates=duplicates,
            durability=durability,
            stop_after_failures=stop_after_failures,
            tls=tls,
            on_association=on_association,
            on_store=on_store,
            services=[self.query_retrieve, *self._extra_services(archive, tls), *services],
            requestor_scp=requestor_scp_classes(),
            config=config,
        )
        self._owns_archive = owns

    def _extra_services(self, archive: Any, tls: ssl.SSLContext | None) -> list[Service]:
        """Services that live in their own modules, registered here: Storage Commitment."""
        from .commitment import CommitmentService

        c = self.config
        service = CommitmentService(
            archive,
            peers=c.address_of,
            ae_title=c.ae_title,
            may=c.may,
            tls=tls,
            network_timeout=c.limits.network_timeout,
        )
        return [service]

    @property
    def stats(self) -> dict[str, int]:
        """Counters: stored, failed, bytes, queries, answers, moved, retrieved, associations, rejected."""
        qr = {k: v for k, v in self.query_retrieve.stats.items() if k != "failed"}
        return {**self.storage.stats, **qr, **self.counters}

    def start(self) -> PacsServer:
        super().start()
        return self

    def __enter__(self) -> PacsServer:
        return self.start()
