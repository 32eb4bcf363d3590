"""Storage Commitment transactions, persisted in the archive's SQLite database (table ``storage_commitment``).

A Storage Commitment SCP answers the N-ACTION at once and reports later
(N-EVENT-REPORT), possibly on another association, possibly after a restart.
So each transaction is written here before the N-ACTION is answered, its
verified outcome before the report is sent, and it is marked reported only
once the requestor answered the N-EVENT-REPORT. A server that starts again
reads :meth:`CommitmentStore.pending` and reports what is left. Orthanc keeps
these in memory only.

The table lives in the archive's database file (``Archive.database_path``)
under its own connection; nothing here knows the index tables. A path of
``":memory:"`` keeps them in memory (a server without an index).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from typing import NamedTuple

#: The states of a transaction: received (N-ACTION answered), verified (outcome known), reported (the
#: requestor answered the N-EVENT-REPORT), abandoned (no report could be delivered; logged loudly).
RECEIVED, VERIFIED, REPORTED, ABANDONED = "received", "verified", "reported", "abandoned"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS storage_commitment (
    transaction_uid TEXT PRIMARY KEY,
    calling_ae TEXT NOT NULL,
    called_ae TEXT NOT NULL,
    state TEXT NOT NULL,
    refs TEXT NOT NULL,
    failures TEXT,
    transfer_syntax TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS storage_commitment_state ON storage_commitment(state);
"""


class Transaction(NamedTuple):
    """One Storage Commitment request and what became of it."""

    transaction_uid: str
    #: The requestor (the AE to report to) and the AE title it called (ours).
    calling_ae: str
    called_ae: str
    state: str
    #: The referenced instances, (SOP Class UID, SOP Instance UID), in the order requested.
    references: list[tuple[str, str]]
    #: Once verified: the failed ones, (SOP Class UID, SOP Instance UID, Failure Reason).
    failures: list[tuple[str, str, int]] | None
    #: The transfer syntax of the N-ACTION's context (the report uses it on the same association).
    transfer_syntax: str | None
    attempts: int
    next_attempt: float
    last_error: str | None
    created: float


class CommitmentStore:
    """The ``storage_commitment`` table, on its own connection (safe to use from several threads)."""

    def __init__(self, database_path: str) -> None:
        self.database_path = database_path
        self._db = sqlite3.connect(database_path, timeout=60.0, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            if database_path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # a transaction answered must survive a power cut
            self._db.executescript(_SCHEMA)

    def _run(self, sql: str, args: Sequence[object] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, args)

    def add(
        self,
        transaction_uid: str,
        calling_ae: str,
        called_ae: str,
        references: Iterable[tuple[str, str]],
        transfer_syntax: str | None = None,
    ) -> None:
        """Record a request (durable when this returns). The same Transaction UID again starts it afresh."""
        now = time.time()
        refs = json.dumps([[c, i] for c, i in references])
        self._run(
            "INSERT OR REPLACE INTO storage_commitment (transaction_uid, calling_ae, called_ae, state, refs,"
            " failures, transfer_syntax, attempts, next_attempt, last_error, created, updated)"
            " VALUES (?, ?, ?, ?, ?, NULL, ?, 0, 0, NULL, ?, ?)",
            (transaction_uid, calling_ae, called_ae, RECEIVED, refs, transfer_syntax, now, now),
        )

    def set_verified(self, transaction_uid: str, failures: Iterable[tuple[str, str, int]]) -> None:
        """Record the outcome of the checks (the report will say exactly this, whenever it is sent)."""
        data = json.dumps([[c, i, int(r)] for c, i, r in failures])
        self._run(
            "UPDATE storage_commitment SET state = ?, failures = ?, updated = ? WHERE transaction_uid = ?",
            (VERIFIED, data, time.time(), transaction_uid),
        )

    def set_reported(self, transaction_uid: str) -> None:
        self._run(
            "UPDATE storage_commitment SET state = ?, last_error = NULL, updated = ? WHERE transaction_uid = ?",
            (REPORTED, time.time(), transaction_uid),
        )

    def set_attempt(self, transaction_uid: str, error: str, next_attempt: float) -> None:
        """A report that could not be delivered: count it, and when to try again."""
        self._run(
            "UPDATE storage_commitment SET attempts = attempts + 1, last_error = ?, next_attempt = ?, updated = ?"
            " WHERE transaction_uid = ?",
            (error, next_attempt, time.time(), transaction_uid),
        )

    def set_abandoned(self, transaction_uid: str, error: str) -> None:
        self._run(
            "UPDATE storage_commitment SET state = ?, last_error = ?, updated = ? WHERE transaction_uid = ?",
            (ABANDONED, error, time.time(), transaction_uid),
        )

    def get(self, transaction_uid: str) -> Transaction | None:
        rows = self._rows("WHERE transaction_uid = ?", (transaction_uid,))
        return rows[0] if rows else None

    def pending(self) -> list[Transaction]:
        """The transactions still to verify or to report, oldest first."""
        return self._rows("WHERE state IN (?, ?) ORDER BY created", (RECEIVED, VERIFIED))

    def all(self) -> list[Transaction]:
        return self._rows("ORDER BY created", ())

    def _rows(self, where: str, args: Sequence[object]) -> list[Transaction]:
        cur = self._run(
            "SELECT transaction_uid, calling_ae, called_ae, state, refs, failures, transfer_syntax, attempts,"
            f" next_attempt, last_error, created FROM storage_commitment {where}",
            args,
        )
        out = []
        for uid, calling, called, state, refs, failures, ts, attempts, nxt, err, created in cur.fetchall():
            out.append(
                Transaction(
                    uid,
                    calling,
                    called,
                    state,
                    [(c, i) for c, i in json.loads(refs)],
                    None if failures is None else [(c, i, int(r)) for c, i, r in json.loads(failures)],
                    ts,
                    attempts,
                    nxt,
                    err,
                    created,
                )
            )
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()
