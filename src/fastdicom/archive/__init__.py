"""The archive: where received objects become durable files, with no DIMSE in it.

- :mod:`~fastdicom.archive.durable`: fsync of files and folders, atomic writes
  (also used by :func:`fastdicom.write`).
"""
