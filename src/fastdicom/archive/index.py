"""The archive index: SQLite tables of patients, studies, series and instances, written with the commit.

``<root>/.fastdicom/index.sqlite`` (WAL) holds one row per entity with the
keys of the Query/Retrieve models (:mod:`fastdicom.archive.keys`) as columns,
plus, per instance, its path (relative to the root), size and checksum.
One writer connection (behind a lock) writes; each reading thread has its own
connection, so queries run in parallel with the writer.

Writing follows the folder's commit (:class:`~fastdicom.archive.FolderArchive`):
:meth:`Index.intend` records a *pending* row per object (staged path, final
path, checksum) in one transaction before the renames (in the WAL, not
fsynced: it survives a killed process; after a power loss an object renamed
but never answered may be left unindexed, which ``fastdicom archive verify``
reports); after the renames and folder fsyncs :meth:`Index.record` writes the
entity rows and drops the pending ones in one fsynced transaction, before
success is answered.
:meth:`Index.reconcile` (at start-up) looks only at pending rows: a staged file
still there was never renamed (removed); a final file there without its row is
indexed from its header; nothing walks the tree.

Values are held as the header decodes them (text; several values joined by
backslashes; dates normalised to ``YYYYMMDD``), and the Patient's Name also
case-folded (``_pn_fold``) so that the SQL prefilter of a query can use an
index. The SQL only narrows the candidates; :mod:`fastdicom.query.matching`
decides (see :func:`prefilter`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

from ..query.matching import Key, Kind, MatchOptions, _date_point, _normal, _text
from .keys import COLUMNS, INDEXED, KEYS, TABLES, IndexKey

SCHEMA_VERSION = 1
DB_DIR = ".fastdicom"
DB_NAME = "index.sqlite"
#: Table aliases in SQL.
ALIAS = {"patient": "p", "study": "st", "series": "se", "instance": "i"}
PARENT_FK = {"study": "patient_fk", "series": "study_fk", "instance": "series_fk"}
#: Columns of the instance table beyond the keys.
FILE_COLUMNS = ("transfer_syntax_uid", "path", "size", "checksum", "checksum_algorithm", "stored_at")
#: VRs whose single values the SQL can compare (stored stripped, as the matcher compares them).
_SQL_TEXT_VRS = frozenset(("AE", "CS", "LO", "SH", "UI", "DA"))
_PN_FOLD = "_pn_fold"
_SERIES_KEY = KEYS[0x0020000E]
_TOP = "\U0010ffff"


def _q(name: str) -> str:
    return '"' + name + '"'


def _schema() -> list[str]:
    stmts = ["CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)"]
    for table in TABLES:
        cols = ["pk INTEGER PRIMARY KEY"]
        if table in PARENT_FK:
            parent = TABLES[TABLES.index(table) - 1]
            cols.append(f"{PARENT_FK[table]} INTEGER NOT NULL REFERENCES {parent}(pk)")
        for k in COLUMNS[table]:
            cols.append(_q(k.keyword))
        if table == "patient":
            cols.append(f"{_PN_FOLD} TEXT")
            cols.append('UNIQUE ("PatientID", "IssuerOfPatientID")')
        if table == "instance":
            cols += ["transfer_syntax_uid TEXT", "path TEXT NOT NULL", "size INTEGER", "checksum TEXT"]
            cols += ["checksum_algorithm TEXT", "stored_at REAL"]
        stmts.append(f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(cols)})")
        for k in COLUMNS[table]:
            if k.keyword in INDEXED:
                unique = "UNIQUE " if k.tag in (0x0020000D, 0x0020000E, 0x00080018) else ""
                stmts.append(f"CREATE {unique}INDEX IF NOT EXISTS {table}_{k.keyword} ON {table} ({_q(k.keyword)})")
        if table in PARENT_FK:
            stmts.append(f"CREATE INDEX IF NOT EXISTS {table}_{PARENT_FK[table]} ON {table} ({PARENT_FK[table]})")
    stmts.append(f"CREATE INDEX IF NOT EXISTS patient_{_PN_FOLD} ON patient ({_PN_FOLD})")
    stmts.append(
        "CREATE TABLE IF NOT EXISTS pending (pk INTEGER PRIMARY KEY, staged TEXT NOT NULL, final TEXT NOT NULL,"
        " sop_instance_uid TEXT, size INTEGER, checksum TEXT, checksum_algorithm TEXT, created REAL)"
    )
    return stmts


def db_value(key: IndexKey, value: Any) -> Any:
    """What a header value becomes in its column (None: absent or empty)."""
    if value is None or value == "":
        return None
    if isinstance(value, list):
        vals = [v for v in value if v is not None]
        if not vals:
            return None
        return "\\".join(str(_text(key.vr, v)) if isinstance(v, str) else str(v) for v in vals)
    if isinstance(value, int | float) and not isinstance(value, bool) and key.vr not in ("IS", "DS"):
        return value
    if isinstance(value, bytes):
        return None
    s = _text(key.vr, value) if isinstance(value, str) else str(value)
    if key.vr == "DA":
        with contextlib.suppress(ValueError):
            s = _date_point(s)
    return s or None


def py_value(key: IndexKey, value: Any) -> Any:
    """A column's value as the matcher and the answer take it: text, or a list of texts for several values."""
    if value is None:
        return None
    if isinstance(value, str) and key.vm != "1" and "\\" in value:
        return value.split("\\")
    return value


def pn_fold(value: Any) -> str | None:
    """The Patient's Name as the case-insensitive matcher compares it (the key of ``_pn_fold``)."""
    if value is None or value == "":
        return None
    return str(_normal("PN", str(value), MatchOptions()))


class StoredInstance(NamedTuple):
    """One stored instance: its UIDs, where its file is, its size and checksum (None: unknown)."""

    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    patient_id: str | None
    study_instance_uid: str
    series_instance_uid: str
    path: str
    size: int
    checksum: str | None
    checksum_algorithm: str


#: SELECT list (and FROM) of StoredInstance rows.
INSTANCE_SELECT = (
    'SELECT i."SOPInstanceUID", i."SOPClassUID", i.transfer_syntax_uid, p."PatientID", st."StudyInstanceUID",'
    ' se."SeriesInstanceUID", i.path, i.size, i.checksum, i.checksum_algorithm, i.pk'
    " FROM instance i JOIN series se ON i.series_fk = se.pk JOIN study st ON se.study_fk = st.pk"
    " JOIN patient p ON st.patient_fk = p.pk"
)


class Entry(NamedTuple):
    """What the index needs of one committed object: its header, paths, size and checksum."""

    dataset: Any
    staged: str
    final: str
    size: int
    checksum: str | None
    checksum_algorithm: str
    transfer_syntax_uid: str


class Index:
    """The SQLite index of an archive rooted at ``root`` (see the module docstring)."""

    def __init__(self, root: str, *, create: bool = True) -> None:
        self.root = os.path.abspath(root)
        folder = os.path.join(self.root, DB_DIR)
        self.path = os.path.join(folder, DB_NAME)
        if not create and not os.path.exists(self.path):
            raise FileNotFoundError(f"no archive index at {self.path}")
        os.makedirs(folder, exist_ok=True)
        self._lock = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self._writer = self._connect()
        self._writer.execute("PRAGMA synchronous=FULL")  # a commit is durable before success is answered
        with self._lock, self._writer:
            for stmt in _schema():
                self._writer.execute(stmt)
            self._writer.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("PRAGMA temp_store=MEMORY")
        return conn

    # -- connections ----------------------------------------------------------------------------

    def reader(self) -> sqlite3.Connection:
        """This thread's reading connection."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise RuntimeError("the archive index is closed")
            conn = self._connect()
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    @contextlib.contextmanager
    def transaction(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """The writer connection inside ``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on an error); the
        commit is fsynced unless ``durable=False`` (then it survives the process, not a power loss)."""
        with self._lock:
            conn = self._writer
            conn.execute("PRAGMA synchronous=FULL" if durable else "PRAGMA synchronous=NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._readers_lock:
            readers, self._readers, self._closed = self._readers, [], True
        for conn in readers:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._writer.close()

    # -- writing --------------------------------------------------------------------------------

    def intend(self, entries: Sequence[Entry]) -> list[int]:
        """Pending rows for objects about to be renamed into place (one durable transaction); their ids."""
        if not entries:
            return []
        now = time.time()
        ids = []
        with self.transaction(durable=False) as conn:
            for e in entries:
                cur = conn.execute(
                    "INSERT INTO pending (staged, final, sop_instance_uid, size, checksum, checksum_algorithm, created)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        e.staged,
                        e.final,
                        e.dataset.get("SOPInstanceUID"),
                        e.size,
                        e.checksum,
                        e.checksum_algorithm,
                        now,
                    ),
                )
                ids.append(int(cur.lastrowid or 0))
        return ids

    def record(self, entries: Sequence[Entry], pending: Iterable[int] = ()) -> None:
        """Index rows for committed objects and the end of their pending rows, in one transaction."""
        with self.transaction() as conn:
            for e in entries:
                self._upsert(conn, e)
            ids = [(i,) for i in pending]
            if ids:
                conn.executemany("DELETE FROM pending WHERE pk = ?", ids)

    def forget_pending(self, pending: Iterable[int]) -> None:
        ids = [(i,) for i in pending]
        if ids:
            with self.transaction() as conn:
                conn.executemany("DELETE FROM pending WHERE pk = ?", ids)

    def _upsert(self, conn: sqlite3.Connection, e: Entry) -> int:
        """Write the rows of one object; the instance's pk.

        A new instance of a series already indexed adds its instance row only (the series, study and patient
        keep the values of the instance that created them: reading 50 values per object is most of the cost
        of indexing). A new series writes its study and patient rows too, and an instance stored again (a
        correction, with ``duplicates="overwrite"``) rewrites all four rows with its values.
        """
        ds = e.dataset
        uid = ds.get("SOPInstanceUID")
        old = conn.execute('SELECT pk FROM instance WHERE "SOPInstanceUID" = ?', (uid,)).fetchone()
        if old is None:
            found = conn.execute(
                'SELECT pk FROM series WHERE "SeriesInstanceUID" = ?', (db_value(_SERIES_KEY, ds.get(0x0020000E)),)
            ).fetchone()
            if found is not None:
                return self._instance_row(conn, e, int(found[0]), None)
        values = {t: [db_value(k, ds.get(k.tag)) for k in COLUMNS[t]] for t in TABLES}
        pat_cols = COLUMNS["patient"]
        pv = values["patient"]
        by_kw = {k.keyword: v for k, v in zip(pat_cols, pv)}
        pid, issuer = by_kw["PatientID"] or "", by_kw["IssuerOfPatientID"] or ""
        by_kw["PatientID"], by_kw["IssuerOfPatientID"] = pid, issuer
        names = [k.keyword for k in pat_cols]
        row = [by_kw[n] for n in names] + [pn_fold(by_kw["PatientName"])]
        patient_pk = self._upsert_row(
            conn, "patient", names + [_PN_FOLD], row, '"PatientID" = ? AND "IssuerOfPatientID" = ?', (pid, issuer)
        )
        parent = patient_pk
        for table in ("study", "series"):
            cols = COLUMNS[table]
            names = [PARENT_FK[table]] + [k.keyword for k in cols]
            uid_kw = "StudyInstanceUID" if table == "study" else "SeriesInstanceUID"
            row = [parent, *values[table]]
            uid = row[names.index(uid_kw)]
            parent = self._upsert_row(conn, table, names, row, f"{_q(uid_kw)} = ?", (uid,))
        return self._instance_row(conn, e, parent, values["instance"])

    def _instance_row(self, conn: sqlite3.Connection, e: Entry, series_pk: int, values: list | None) -> int:
        cols = COLUMNS["instance"]
        if values is None:
            values = [db_value(k, e.dataset.get(k.tag)) for k in cols]
        names = [PARENT_FK["instance"]] + [k.keyword for k in cols] + list(FILE_COLUMNS)
        rel = os.path.relpath(e.final, self.root)
        row = [series_pk, *values, e.transfer_syntax_uid, rel, e.size, e.checksum, e.checksum_algorithm]
        row.append(time.time())
        uid = row[names.index("SOPInstanceUID")]
        return self._upsert_row(conn, "instance", names, row, '"SOPInstanceUID" = ?', (uid,))

    @staticmethod
    def _upsert_row(conn: sqlite3.Connection, table: str, names: list[str], row: list, where: str, key: tuple) -> int:
        found = conn.execute(f"SELECT pk FROM {table} WHERE {where}", key).fetchone()
        if found is None:
            cur = conn.execute(
                f"INSERT INTO {table} ({', '.join(map(_q, names))}) VALUES ({', '.join('?' * len(names))})", row
            )
            return int(cur.lastrowid or 0)
        pk = int(found[0])
        conn.execute(f"UPDATE {table} SET {', '.join(_q(n) + ' = ?' for n in names)} WHERE pk = ?", (*row, pk))
        return pk

    def remove(self, sop_instance_uids: Iterable[str]) -> list[str]:
        """Drop the rows of these instances (and entities left empty); the relative paths of those found."""
        paths = []
        with self.transaction() as conn:
            for uid in sop_instance_uids:
                found = conn.execute('SELECT pk, series_fk, path FROM instance WHERE "SOPInstanceUID" = ?', (uid,))
                row = found.fetchone()
                if row is None:
                    continue
                pk, series_pk, path = row
                paths.append(path)
                conn.execute("DELETE FROM instance WHERE pk = ?", (pk,))
                self._prune(conn, series_pk)
        return paths

    @staticmethod
    def _prune(conn: sqlite3.Connection, series_pk: int) -> None:
        if conn.execute("SELECT 1 FROM instance WHERE series_fk = ? LIMIT 1", (series_pk,)).fetchone():
            return
        study_pk = conn.execute("SELECT study_fk FROM series WHERE pk = ?", (series_pk,)).fetchone()[0]
        conn.execute("DELETE FROM series WHERE pk = ?", (series_pk,))
        if conn.execute("SELECT 1 FROM series WHERE study_fk = ? LIMIT 1", (study_pk,)).fetchone():
            return
        patient_pk = conn.execute("SELECT patient_fk FROM study WHERE pk = ?", (study_pk,)).fetchone()[0]
        conn.execute("DELETE FROM study WHERE pk = ?", (study_pk,))
        if not conn.execute("SELECT 1 FROM study WHERE patient_fk = ? LIMIT 1", (patient_pk,)).fetchone():
            conn.execute("DELETE FROM patient WHERE pk = ?", (patient_pk,))

    def set_checksum(self, items: Iterable[tuple[str, str, str]]) -> None:
        """``(sop_instance_uid, checksum, algorithm)`` of instances whose checksum was unknown or recomputed."""
        with self.transaction() as conn:
            conn.executemany(
                'UPDATE instance SET checksum = ?, checksum_algorithm = ? WHERE "SOPInstanceUID" = ?',
                [(c, a, u) for u, c, a in items],
            )

    def pending(self) -> list[tuple[int, str, str, str | None, int | None, str | None, str | None]]:
        """The pending rows: ``(pk, staged, final, sop_instance_uid, size, checksum, algorithm)``."""
        conn = self.reader()
        return conn.execute(
            "SELECT pk, staged, final, sop_instance_uid, size, checksum, checksum_algorithm FROM pending ORDER BY pk"
        ).fetchall()

    # -- reading --------------------------------------------------------------------------------

    def instances_where(self, where: str, params: Sequence[Any], limit: int | None = None) -> Iterator[StoredInstance]:
        conn = self.reader()
        sql = f"{INSTANCE_SELECT} WHERE {where} ORDER BY i.pk" + (f" LIMIT {int(limit)}" if limit is not None else "")
        cur = conn.execute(sql, params)
        while True:
            rows = cur.fetchmany(1000)
            if not rows:
                return
            for r in rows:
                yield self.stored(r)

    def stored(self, r: Sequence[Any]) -> StoredInstance:
        return StoredInstance(
            r[0],
            r[1] or "",
            r[2] or "",
            r[3] or None,
            r[4],
            r[5],
            os.path.join(self.root, r[6]),
            int(r[7] or 0),
            r[8],
            r[9] or "",
        )

    def lookup(self, uids: Iterable[str]) -> dict[str, StoredInstance]:
        out: dict[str, StoredInstance] = {}
        chunk: list[str] = []

        def flush() -> None:
            for s in self.instances_where(
                'i."SOPInstanceUID" IN (SELECT value FROM json_each(?))', (json.dumps(chunk),)
            ):
                out[s.sop_instance_uid] = s
            chunk.clear()

        for uid in uids:
            chunk.append(str(uid))
            if len(chunk) >= 10_000:
                flush()
        if chunk:
            flush()
        return out

    def counts(self) -> dict[str, int]:
        conn = self.reader()
        out = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
        out["bytes"] = conn.execute("SELECT coalesce(sum(size), 0) FROM instance").fetchone()[0]
        out["unknown_checksums"] = conn.execute("SELECT count(*) FROM instance WHERE checksum IS NULL").fetchone()[0]
        out["pending"] = conn.execute("SELECT count(*) FROM pending").fetchone()[0]
        return out


# -- the SQL prefilter ------------------------------------------------------------------------------


def _literal_prefix(pattern: str) -> str:
    """The literal text a compiled wild card pattern (``re.escape`` + ``.*``/``.``) starts with."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(pattern[i + 1])
            i += 2
            continue
        if c in ".[](){}*+?|^$":
            break
        out.append(c)
        i += 1
    return "".join(out)


def prefilter(key: Key, options: MatchOptions) -> tuple[str, list[Any]] | None:
    """An SQL condition that every row the matcher would accept for ``key`` satisfies (None: none applies).

    It may let through rows the matcher refuses, never the reverse: it only
    narrows the candidates (the matcher decides). Columns hold values as
    :func:`db_value` writes them: stripped as the matcher compares them,
    dates as ``YYYYMMDD``, the Patient's Name also case-folded.
    """
    ik = KEYS.get(key.tag)
    if ik is None:
        return None
    col = f"{ALIAS[ik.table]}.{_q(ik.keyword)}"
    kind = key.kind
    if ik.keyword == "PatientName":
        if not options.pn_case_insensitive or options.fuzzy_pn:
            return None
        col = f"p.{_PN_FOLD}"
        if kind is Kind.SINGLE:
            return f"{col} = ?", [key.operand]
        if kind is Kind.WILDCARD:
            prefix = _literal_prefix(key.operand.pattern)
            return (f"{col} >= ? AND {col} < ?", [prefix, prefix + _TOP]) if prefix else None
        return None
    if ik.keyword == "ModalitiesInStudy":
        ops = _singles(key)
        if ops is None:
            return None
        marks = ", ".join("?" * len(ops))
        return f'EXISTS (SELECT 1 FROM series x WHERE x.study_fk = st.pk AND x."Modality" IN ({marks}))', ops
    if ik.held != "column":
        return None
    if kind is Kind.EMPTY:
        return f"({col} IS NULL OR {col} = '')", []
    if ik.vm != "1" or ik.vr not in _SQL_TEXT_VRS:
        return None
    if kind is Kind.UID_LIST:
        return f"{col} IN (SELECT value FROM json_each(?))", [json.dumps(sorted(key.operand))]
    if kind is Kind.RANGE and ik.vr == "DA":
        low, high = key.operand
        conds, params = [], []
        if low is not None:
            conds.append(f"{col} >= ?")
            params.append(low)
        if high is not None:
            conds.append(f"{col} <= ?")
            params.append(high)
        return " AND ".join(conds), params
    if kind is Kind.WILDCARD and ik.vr != "DA":
        prefix = _literal_prefix(key.operand.pattern)
        return (f"{col} >= ? AND {col} < ?", [prefix, prefix + _TOP]) if prefix else None
    ops = _singles(key)
    if ops is None:
        return None
    if len(ops) == 1:
        return f"{col} = ?", ops
    return f"{col} IN ({', '.join('?' * len(ops))})", ops


def _singles(key: Key) -> list[Any] | None:
    """The operands of a single-value key or of a multiple-value key made only of single values."""
    if key.kind is Kind.SINGLE and isinstance(key.operand, str):
        return [key.operand]
    if key.kind is Kind.UID_LIST:
        return sorted(key.operand)
    if key.kind is Kind.MULTIPLE and all(k.kind is Kind.SINGLE and isinstance(k.operand, str) for k in key.operand):
        return [k.operand for k in key.operand]
    return None
