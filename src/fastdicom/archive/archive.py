"""``fastdicom.Archive``: a folder of DICOM files with its index, queried and fed without any network.

``root/<Study>/<Series>/<SOP>.dcm`` plus ``root/.fastdicom/index.sqlite``
(:mod:`fastdicom.archive.index`). :attr:`Archive.folder` is the durable write
path (:class:`~fastdicom.archive.FolderArchive`) that writes the index rows in
its commit; a Storage SCP stores through it. :meth:`Archive.find` answers
C-FIND identifiers with the one matcher (:mod:`fastdicom.query.matching`)
after an SQL prefilter (:func:`fastdicom.archive.index.prefilter`) that only
narrows the candidates.

Hierarchical queries (the default) match keys at the query level and above;
a matching key below the level is refused (:class:`~fastdicom.query.QueryError`,
PS3.4 C.4.1.2.2.1), a universal one is answered empty. Relational queries
(``MatchOptions(relational=True)``) match an entity when one chain of
entities below it matches every key.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from ..dataset.dataset import Dataset, Element
from ..dataset.read import read
from ..dictionary import entry, tag_of
from ..errors import FastDicomError
from ..query.matching import Kind, MatchOptions, Query, QueryError, compile_query
from .checksum import checksum_file, hasher
from .durable import fsync_dir
from .folder import FolderArchive
from .index import ALIAS, COLUMNS, PARENT_FK, Entry, Index, StoredInstance, prefilter, py_value
from .keys import KEYS, TABLES

log = logging.getLogger("fastdicom.archive")

#: The table of each Query/Retrieve level, per information model.
LEVEL_TABLES = {
    "patient": {"PATIENT": "patient", "STUDY": "study", "SERIES": "series", "IMAGE": "instance"},
    "study": {"STUDY": "study", "SERIES": "series", "IMAGE": "instance"},
}
#: How deep each table lies, per model (in the Study Root, patient attributes are study-level keys).
RANK = {
    "patient": {"patient": 0, "study": 1, "series": 2, "instance": 3},
    "study": {"patient": 1, "study": 1, "series": 2, "instance": 3},
}
_TEXT_VM1 = frozenset(("LT", "ST", "UT", "UR"))


class Difference(NamedTuple):
    """One difference between the index and the files: ``missing``, ``size``, ``checksum``, ``unreadable``
    or ``not indexed``; the path, the SOP Instance UID when indexed, and what differs."""

    kind: str
    path: str
    sop_instance_uid: str | None
    detail: str


class MatchLimitExceeded(FastDicomError):
    """More entities match than the limit allows (a C-FIND SCP answers 0xA700 with the limit in its comment)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"more than {limit} matches: refine the query")


def _identifier(identifier: Any) -> Dataset:
    """A Dataset identifier as given, or one built from a Mapping ``keyword or tag -> value``."""
    if isinstance(identifier, Dataset):
        return identifier
    if not isinstance(identifier, Mapping):
        raise TypeError("an identifier is a Dataset or a Mapping keyword -> value")
    ds = Dataset()
    for key, value in identifier.items():
        tag = key if isinstance(key, int) else tag_of(str(key))
        e = entry(tag) if tag is not None else None
        if tag is None or e is None:
            raise QueryError(f"unknown attribute {key!r}")
        vr = e[0].split(" or ")[0]
        if isinstance(value, str) and "\\" in value and vr not in _TEXT_VM1:
            value = value.split("\\")
        ds[tag] = Element(tag, vr, value if value is not None else "")
    return ds


class _Entity:
    """One candidate entity (and its ancestors) as the matcher reads it: index values, computed keys, or the
    header of one of its files for what the index does not hold."""

    __slots__ = ("_archive", "_values", "_pks", "_tables", "_header", "_computed")

    def __init__(self, archive: Archive, values: dict[int, Any], pks: dict[str, int], tables: tuple[str, ...]):
        self._archive = archive
        self._values = values
        self._pks = pks
        self._tables = tables
        self._header: Dataset | None | bool = False
        self._computed: dict[int, Any] = {}

    def get(self, key: Any, default: Any = None) -> Any:
        tag = key if isinstance(key, int) else tag_of(key)
        if tag is None:
            return default
        if tag in self._values:
            return self._values[tag]
        ik = KEYS.get(tag)
        if ik is not None:
            if ik.table not in self._tables:
                return default  # a key of a level below: not this entity's
            if ik.held == "computed":
                if tag not in self._computed:
                    self._computed[tag] = self._archive._computed(ik.keyword, self._pks)
                return self._computed[tag]
            if ik.held == "column":
                return default
        header = self._file()
        if header is None:
            return default
        return header.get(tag, default)

    def _lookup(self, tag: int) -> Element | None:
        ik = KEYS.get(tag)
        if ik is not None and (ik.held != "header" or ik.table not in self._tables):
            value = self.get(tag)
            return None if value is None else Element(tag, ik.vr, value)
        header = self._file()
        return header._lookup(tag) if header is not None else None

    def _file(self) -> Dataset | None:
        if self._header is False:
            self._header = self._archive._header(self._pks, self._tables[-1])
        return self._header if isinstance(self._header, Dataset) else None


class Archive:
    """A DICOM archive in a folder, with its SQLite index; see the module docstring.

    Parameters
    ----------
    root : str
        The folder (created with ``create=True``).
    checksum : {"xxh3", "sha256", "md5"}
        The checksum of stored files (xxh3-128 by default).
    duplicates : {"overwrite", "keep", "reject"}
        What a second copy of an SOP Instance does (see :mod:`fastdicom.archive.folder`).
    """

    def __init__(
        self, root: str | os.PathLike, *, checksum: str = "xxh3", duplicates: str = "overwrite", create: bool = True
    ) -> None:
        hasher(checksum)
        root = os.path.abspath(os.fspath(root))
        if create:
            os.makedirs(root, exist_ok=True)
        elif not os.path.isdir(root):
            raise FileNotFoundError(f"no archive at {root}")
        self.root = root
        self.checksum = checksum
        self.index = Index(root, create=create)
        self.database_path = self.index.path
        self.folder = FolderArchive(root, duplicates=duplicates, index=self.index, checksum=checksum)
        self.reconciled = self.reconcile()

    # -- start-up -------------------------------------------------------------------------------

    def reconcile(self) -> int:
        """Settle what a killed process left pending (only those rows); how many objects were indexed."""
        indexed = 0
        done = []
        for pk, staged, final, uid, _size, _digest, algorithm in self.index.pending():
            done.append(pk)
            if os.path.exists(staged):  # never renamed: never answered with success
                with contextlib.suppress(OSError):
                    os.unlink(staged)
                continue
            if not os.path.exists(final):
                continue
            try:
                ds = read(final, stop_before_pixels=True)
                if uid is not None and ds.get("SOPInstanceUID") != uid:
                    continue
                alg = algorithm or self.checksum
                digest = checksum_file(final, alg)  # the staged file is gone: this is the copy that is there
                entry = Entry(ds, staged, final, os.path.getsize(final), digest, alg, str(ds.transfer_syntax or ""))
                self.index.record([entry])
                indexed += 1
            except (FastDicomError, OSError) as exc:
                log.error("archive %s: cannot index %s left pending: %s", self.root, final, exc)
        self.index.forget_pending(done)
        if indexed:
            log.warning("archive %s: %d objects stored before a crash were indexed at start-up", self.root, indexed)
        return indexed

    # -- queries --------------------------------------------------------------------------------

    def find(
        self,
        level: str,
        identifier: Any,
        *,
        model: str = "study",
        options: MatchOptions | None = None,
        limit: int | None = None,
    ) -> Iterator[Dataset]:
        """The answers to a C-FIND identifier at ``level`` (see the module docstring).

        Each answer holds every key of the identifier (the index's value, or the file header's when the index
        does not hold it) and Query/Retrieve Level. With ``limit``, more matches raise
        :class:`MatchLimitExceeded` here, before anything is returned.
        """
        query, level = self._compile(level, identifier, options)
        entities = self._match(level, query, model, options)
        if limit is None:
            return (self._answer(query, level, e) for e in entities)
        found = []
        for e in entities:
            found.append(e)
            if len(found) > limit:
                raise MatchLimitExceeded(limit)
        return (self._answer(query, level, e) for e in found)

    def count(self, level: str, identifier: Any, *, model: str = "study", options: MatchOptions | None = None) -> int:
        """How many entities match (no answers built)."""
        query, level = self._compile(level, identifier, options)
        return sum(1 for _ in self._match(level, query, model, options))

    def instances(
        self, level: str, identifier: Any, *, model: str = "study", options: MatchOptions | None = None
    ) -> Iterator[StoredInstance]:
        """Every stored instance under the entities that match (for C-MOVE, C-GET, exports)."""
        query, level = self._compile(level, identifier, options)
        table = self._table(level, model)
        entities = self._match(level, query, model, options)
        where = f"{ALIAS[table]}.pk = ?"
        return (s for e in entities for s in self.index.instances_where(where, (e._pks[table],)))

    def lookup(self, sop_instance_uids: Iterable[str]) -> dict[str, StoredInstance]:
        """The stored instances among these SOP Instance UIDs."""
        return self.index.lookup(sop_instance_uids)

    def checksum_file(self, path_or_instance: str | os.PathLike | StoredInstance) -> str:
        """Re-read a file and return its checksum (the algorithm it was stored with)."""
        if isinstance(path_or_instance, StoredInstance):
            return checksum_file(path_or_instance.path, path_or_instance.checksum_algorithm or self.checksum)
        return checksum_file(path_or_instance, self.checksum)

    def _compile(self, level: str, identifier: Any, options: MatchOptions | None) -> tuple[Query, str]:
        level = str(level).strip().upper()
        return compile_query(_identifier(identifier), options or MatchOptions()), level

    @staticmethod
    def _table(level: str, model: str) -> str:
        tables = LEVEL_TABLES.get(model)
        if tables is None:
            raise QueryError(f"unknown information model {model!r}: 'patient' or 'study'")
        table = tables.get(level)
        if table is None:
            raise QueryError(f"unknown query level {level!r} for the {model} root model")
        return table

    def _match(self, level: str, query: Query, model: str, options: MatchOptions | None) -> Iterator[_Entity]:
        """The matching entities, lazily; what cannot be answered (level, model, keys) is raised here, now."""
        table = self._table(level, model)
        rank = RANK[model]
        relational = bool(getattr(options, "relational", False))
        deepest = table
        for k in query.matching_keys:
            ik = KEYS.get(k.tag)
            if ik is None or rank[ik.table] <= rank[table]:
                continue
            if not relational:
                raise QueryError(f"{ik.keyword} is a key below the {level} level (hierarchical query)", k.tag)
            if TABLES.index(ik.table) > TABLES.index(deepest):
                deepest = ik.table
        chain = TABLES[: TABLES.index(deepest) + 1]
        own = TABLES[: TABLES.index(table) + 1]
        select = [f"{ALIAS[t]}.pk" for t in chain]
        columns: list[tuple[str, Any]] = []
        for t in chain:
            for ik in COLUMNS[t]:
                select.append(f'{ALIAS[t]}."{ik.keyword}"')
                columns.append((t, ik))
        joins = [f"{deepest} {ALIAS[deepest]}"]
        for t in reversed(chain[1:]):
            parent = TABLES[TABLES.index(t) - 1]
            joins.append(f"JOIN {parent} {ALIAS[parent]} ON {ALIAS[t]}.{PARENT_FK[t]} = {ALIAS[parent]}.pk")
        where, params = [], []
        opts = options or MatchOptions()
        for k in query.matching_keys:
            ik = KEYS.get(k.tag)
            if ik is None or ik.table not in chain or k.tag in _paired(query):
                continue
            cond = prefilter(k, opts)
            if cond is not None:
                where.append(f"({cond[0]})")
                params.extend(cond[1])
        sql = f"SELECT {', '.join(select)} FROM {' '.join(joins)}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {ALIAS[table]}.pk" + (f", {ALIAS[deepest]}.pk" if deepest != table else "")
        return self._run(query, sql, params, table, deepest, chain, own, columns)

    def _run(
        self,
        query: Query,
        sql: str,
        params: list[Any],
        table: str,
        deepest: str,
        chain: tuple[str, ...],
        own: tuple[str, ...],
        columns: list[tuple[str, Any]],
    ) -> Iterator[_Entity]:
        conn = self.index.reader()
        try:
            cur = conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise QueryError(f"the index cannot answer: {exc}") from exc
        last = None
        n_pks = len(chain)
        while True:
            rows = cur.fetchmany(500)
            if not rows:
                return
            for row in rows:
                pks = dict(zip(chain, row[:n_pks]))
                if pks[table] == last:
                    continue
                values = {}
                for (_t, ik), v in zip(columns, row[n_pks:]):
                    values[ik.tag] = py_value(ik, v)
                candidate = _Entity(self, values, pks, chain)
                if not query.matches(candidate):
                    continue
                last = pks[table]
                if deepest != table:
                    keep = {tag: v for tag, v in values.items() if KEYS[tag].table in own}
                    candidate = _Entity(self, keep, {t: pks[t] for t in own}, own)
                yield candidate

    def _answer(self, query: Query, level: str, entity: _Entity) -> Dataset:
        ds = query.answer(entity)
        ds.QueryRetrieveLevel = level
        return ds

    def _computed(self, keyword: str, pks: dict[str, int]) -> Any:
        conn = self.index.reader()
        one: Callable[[str, int], Any] = lambda sql, pk: conn.execute(sql, (pk,)).fetchone()[0]  # noqa: E731
        if keyword == "NumberOfPatientRelatedStudies":
            return str(one("SELECT count(*) FROM study WHERE patient_fk = ?", pks["patient"]))
        if keyword == "NumberOfPatientRelatedSeries":
            sql = "SELECT count(*) FROM series se JOIN study st ON se.study_fk = st.pk WHERE st.patient_fk = ?"
            return str(one(sql, pks["patient"]))
        if keyword == "NumberOfPatientRelatedInstances":
            sql = (
                "SELECT count(*) FROM instance i JOIN series se ON i.series_fk = se.pk"
                " JOIN study st ON se.study_fk = st.pk WHERE st.patient_fk = ?"
            )
            return str(one(sql, pks["patient"]))
        if keyword == "NumberOfStudyRelatedSeries":
            return str(one("SELECT count(*) FROM series WHERE study_fk = ?", pks["study"]))
        if keyword == "NumberOfStudyRelatedInstances":
            sql = "SELECT count(*) FROM instance i JOIN series se ON i.series_fk = se.pk WHERE se.study_fk = ?"
            return str(one(sql, pks["study"]))
        if keyword == "NumberOfSeriesRelatedInstances":
            return str(one("SELECT count(*) FROM instance WHERE series_fk = ?", pks["series"]))
        if keyword == "ModalitiesInStudy":
            rows = conn.execute(
                'SELECT DISTINCT "Modality" FROM series WHERE study_fk = ? AND "Modality" IS NOT NULL ORDER BY 1',
                (pks["study"],),
            ).fetchall()
            return [r[0] for r in rows] or None
        if keyword == "SOPClassesInStudy":
            rows = conn.execute(
                'SELECT DISTINCT i."SOPClassUID" FROM instance i JOIN series se ON i.series_fk = se.pk'
                ' WHERE se.study_fk = ? AND i."SOPClassUID" IS NOT NULL ORDER BY 1',
                (pks["study"],),
            ).fetchall()
            return [r[0] for r in rows] or None
        if keyword == "AvailableTransferSyntaxUID":
            return one("SELECT transfer_syntax_uid FROM instance WHERE pk = ?", pks["instance"])
        raise AssertionError(keyword)

    def _header(self, pks: dict[str, int], table: str) -> Dataset | None:
        """The header of one stored file of the entity (None if it cannot be read)."""
        found = next(self.index.instances_where(f"{ALIAS[table]}.pk = ?", (pks[table],), 1), None)
        if found is None:
            return None
        try:
            return read(found.path, stop_before_pixels=True)
        except (FastDicomError, OSError) as exc:
            log.error("archive %s: cannot read %s: %s", self.root, found.path, exc)
            return None

    # -- changes --------------------------------------------------------------------------------

    def add(
        self,
        paths: Iterable[str | os.PathLike],
        *,
        checksum: bool = True,
        threads: int | None = None,
        progress: Callable[[int], Any] | None = None,
    ) -> dict:
        """Index files: those inside the archive where they are, others copied in through the durable write
        path. Counts: ``added``, ``failed`` (unreadable or without the UIDs to file them). ``checksum=False``
        leaves checksums unknown (:meth:`verify` fills them); ``progress(n)`` is called as files are done."""
        from ..dataset.scan import scan_headers

        inside: list[str] = []
        outside: list[str] = []
        for p in paths:
            ap = os.path.abspath(os.fspath(p))
            (inside if ap.startswith(self.root + os.sep) else outside).append(ap)
        counts = {"added": 0, "failed": 0}
        entries = []
        for result in scan_headers(inside, checksum=self.checksum if checksum else None, threads=threads):
            if progress is not None:
                progress(1)
            if result.error is not None or not _indexable(result.dataset):
                counts["failed"] += 1
                log.warning("archive %s: not indexed: %s: %s", self.root, result.path, result.error or "no UIDs")
                continue
            entries.append(
                Entry(
                    result.dataset,
                    result.path,
                    result.path,
                    result.size,
                    result.checksum,
                    self.checksum if checksum else "",
                    str(result.dataset.transfer_syntax or ""),
                )
            )
            if len(entries) >= 1000:
                self.index.record(entries)
                counts["added"] += len(entries)
                entries = []
        if entries:
            self.index.record(entries)
            counts["added"] += len(entries)
        for p in outside:
            try:
                staged = self.folder.stage()
                with open(p, "rb") as f:
                    while chunk := f.read(1 << 20):
                        staged.write(memoryview(chunk))
                outcome = self.folder.commit(staged)
            except OSError as exc:
                log.warning("archive %s: cannot add %s: %s", self.root, p, exc)
                counts["failed"] += 1
                continue
            counts["added" if outcome.ok else "failed"] += 1
            if progress is not None:
                progress(1)
        return counts

    def verify(
        self, *, fill: bool = True, threads: int | None = None, progress: Callable[[int], Any] | None = None
    ) -> Iterator[Difference]:
        """Compare the index with the files: every instance's presence, size and checksum (each file read
        whole, on a thread pool), then the files in the tree the index does not know. Unknown checksums are
        computed and, with ``fill``, written to the index. Yields each :class:`Difference`."""
        from concurrent.futures import ThreadPoolExecutor

        from ..dataset.scan import dicom_files

        workers = threads or min(16, os.cpu_count() or 1)
        known: set[str] = set()
        filled: list[tuple[str, str, str]] = []

        def check(s: StoredInstance) -> tuple[StoredInstance, Difference | None, str | None]:
            try:
                size = os.path.getsize(s.path)
            except OSError:
                return s, Difference("missing", s.path, s.sop_instance_uid, "in the index, not on disk"), None
            if size != s.size:
                return s, Difference("size", s.path, s.sop_instance_uid, f"index {s.size}, file {size}"), None
            try:
                digest = checksum_file(s.path, s.checksum_algorithm or self.checksum)
            except OSError as exc:
                return s, Difference("unreadable", s.path, s.sop_instance_uid, str(exc)), None
            if s.checksum is None:
                return s, None, digest
            if digest != s.checksum:
                detail = f"index {s.checksum}, file {digest} ({s.checksum_algorithm})"
                return s, Difference("checksum", s.path, s.sop_instance_uid, detail), None
            return s, None, None

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fastdicom-verify") as pool:
            window: list[Any] = []
            rows = self.index.instances_where("1", ())

            def drain(keep: int) -> Iterator[Difference]:
                while len(window) > keep:
                    s, diff, digest = window.pop(0).result()
                    if progress is not None:
                        progress(1)
                    if digest is not None:
                        filled.append((s.sop_instance_uid, digest, s.checksum_algorithm or self.checksum))
                    if diff is not None:
                        yield diff

            for s in rows:
                known.add(os.path.relpath(s.path, self.root))
                window.append(pool.submit(check, s))
                yield from drain(workers * 4)
            yield from drain(0)
        if fill and filled:
            self.index.set_checksum(filled)
        for path in dicom_files(self.root):
            if os.path.relpath(path, self.root) not in known:
                yield Difference("not indexed", path, None, "on disk, not in the index")

    def rebuild(
        self, *, checksum: bool = True, threads: int | None = None, progress: Callable[[int], Any] | None = None
    ) -> dict:
        """Index every file of the tree again (rows of files gone are dropped): counts as :meth:`add`."""
        from ..dataset.scan import dicom_files

        with self.index.transaction() as conn:
            for table in reversed(TABLES):
                conn.execute(f"DELETE FROM {table}")
        return self.add(list(dicom_files(self.root)), checksum=checksum, threads=threads, progress=progress)

    def remove(self, sop_instance_uids: Iterable[str]) -> int:
        """Remove instances (index rows, then files); how many were found."""
        paths = self.index.remove(list(sop_instance_uids))
        folders = set()
        for rel in paths:
            full = os.path.join(self.root, rel)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(full)
            folders.add(os.path.dirname(full))
        for folder in folders:
            with contextlib.suppress(OSError):
                fsync_dir(folder)
        return len(paths)

    def stats(self) -> dict:
        """Counts of patients, studies, series, instances, bytes stored, unknown checksums, the index's size."""
        out: dict[str, Any] = {"root": self.root, **self.index.counts()}
        out["index_bytes"] = sum(
            os.path.getsize(self.database_path + s)
            for s in ("", "-wal", "-shm")
            if os.path.exists(self.database_path + s)
        )
        out["checksum_algorithm"] = self.checksum
        return out

    def close(self) -> None:
        self.folder.close()
        self.index.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _paired(query: Query) -> frozenset[int]:
    """Tags matched together under combined date-time matching (their single prefilters do not apply)."""
    return frozenset(t for c in query.combined for t in (c.date.tag, c.time.tag))


def _indexable(ds: Any) -> bool:
    from .folder import safe_uid

    return ds is not None and all(
        safe_uid(ds.get(k)) for k in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
    )


__all__ = ["Archive", "Difference", "Kind", "MatchLimitExceeded", "StoredInstance"]
