"""Queries over DICOM data: the C-FIND matching rules (PS3.4 C.2.2.2), written once.

The Query/Retrieve SCP, QIDO-RS and the Modality Worklist all compile an
identifier with :func:`compile_query` and ask the result whether a data set
matches, and what to answer. See :mod:`fastdicom.query.matching`.
"""

from .matching import Key, Kind, MatchOptions, Query, QueryError, compile_query

__all__ = ["Key", "Kind", "MatchOptions", "Query", "QueryError", "compile_query"]
