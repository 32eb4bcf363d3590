"""The archive: where received objects become durable files, with no DIMSE in it.

- :mod:`~fastdicom.archive.durable`: fsync of files and folders, atomic
  writes (also used by :func:`fastdicom.write`);
- :mod:`~fastdicom.archive.folder`: :class:`FolderArchive` (stage into
  ``.incoming``, commit one object or a batch: fsync, checks, rename, folder
  fsync), :class:`Reason` and :class:`Outcome` (what a storage service maps
  to C-STORE statuses and an HTTP front end to its codes), and
  :class:`DiscardArchive` (check and drop);
- :mod:`~fastdicom.archive.index`: the SQLite index written with each commit;
- :mod:`~fastdicom.archive.archive`: :class:`Archive` (``fastdicom.Archive``):
  find, instances, lookup, add, remove, stats, usable without any network.
"""

from .archive import Archive, MatchLimitExceeded
from .durable import fsync_dir, make_dirs, write_atomic
from .folder import DiscardArchive, FolderArchive, Outcome, Reason, Staged, safe_uid
from .index import StoredInstance

__all__ = [
    "Archive",
    "DiscardArchive",
    "FolderArchive",
    "MatchLimitExceeded",
    "Outcome",
    "Reason",
    "Staged",
    "StoredInstance",
    "fsync_dir",
    "make_dirs",
    "safe_uid",
    "write_atomic",
]
