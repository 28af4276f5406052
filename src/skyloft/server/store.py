"""Durable state in SQLite (WAL): apps, functions, calls, inputs and outputs.

The scheduler keeps its queues in memory for speed; this store is what lets
it rebuild them after a restart, so an accepted input is never lost.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .._proto import pb
from ..records import OutputRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS apps (
    app_id TEXT PRIMARY KEY, name TEXT NOT NULL, state TEXT NOT NULL,
    created_at REAL NOT NULL, stopped_at REAL
);
CREATE TABLE IF NOT EXISTS functions (
    function_id TEXT PRIMARY KEY, app_id TEXT NOT NULL, spec BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS calls (
    call_id TEXT PRIMARY KEY, function_id TEXT NOT NULL, created_at REAL NOT NULL,
    n_inputs INTEGER NOT NULL DEFAULT 0, inputs_closed INTEGER NOT NULL DEFAULT 0,
    cancelled INTEGER NOT NULL DEFAULT 0, is_map INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS inputs (
    call_id TEXT NOT NULL, idx INTEGER NOT NULL, args BLOB, args_blob TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (call_id, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outputs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, call_id TEXT NOT NULL, idx INTEGER NOT NULL,
    status INTEGER NOT NULL, data BLOB, data_blob TEXT, message TEXT, traceback TEXT,
    log_seq INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outputs_by_call ON outputs (call_id, seq);
CREATE INDEX IF NOT EXISTS outputs_by_input ON outputs (call_id, idx, status);
CREATE TABLE IF NOT EXISTS containers (
    container_id TEXT PRIMARY KEY, app_id TEXT NOT NULL, function_id TEXT NOT NULL,
    function_name TEXT NOT NULL, worker_id TEXT NOT NULL, state TEXT NOT NULL,
    started_at REAL NOT NULL, stopped_at REAL, pid INTEGER, reason TEXT
);
"""

log = logging.getLogger("skyloft.store")

_GEN_ITEM = pb.GEN_ITEM
_SEQ_GAP = 1 << 24
_MAX_SQL_PARAMS = 30_000
_WRITE_BEHIND_LIMIT = 100_000


@dataclass
class StoredInput:
    """An input that has no final output yet."""

    call_id: str
    idx: int
    args: bytes
    args_blob: str
    attempts: int


@dataclass
class StoredCall:
    call_id: str
    function_id: str
    n_inputs: int
    inputs_closed: bool
    cancelled: bool
    is_map: bool


class Store:
    """One SQLite connection shared by the server's threads under a lock."""

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # ---- apps and functions ----

    def add_app(self, app_id: str, name: str, state: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO apps VALUES (?, ?, ?, ?, NULL)", (app_id, name, state, time.time()))

    def set_app_state(self, app_id: str, state: str) -> None:
        stopped_at = time.time() if state == "stopped" else None
        with self.transaction() as db:
            db.execute("UPDATE apps SET state = ?, stopped_at = ? WHERE app_id = ?", (state, stopped_at, app_id))

    def apps(self) -> list[tuple[str, str, str, float]]:
        return self._query("SELECT app_id, name, state, created_at FROM apps ORDER BY created_at")

    def add_function(self, spec: pb.FunctionSpec) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO functions VALUES (?, ?, ?)",
                (spec.function_id, spec.app_id, spec.SerializeToString()),
            )

    def live_functions(self) -> list[pb.FunctionSpec]:
        """Functions of apps that were not stopped, to re-register after a restart."""
        rows = self._query(
            "SELECT f.spec FROM functions f JOIN apps a ON a.app_id = f.app_id WHERE a.state != 'stopped'"
        )
        return [pb.FunctionSpec.FromString(row[0]) for row in rows]

    def payload_blobs(self) -> set[str]:
        """The blobs holding stored arguments and results."""
        rows = self._query("SELECT args_blob FROM inputs WHERE args_blob != '' "
                           "UNION SELECT data_blob FROM outputs WHERE data_blob != ''")
        return {row[0] for row in rows}

    # ---- calls and inputs ----

    def get_call(self, call_id: str) -> StoredCall | None:
        rows = self._query(
            "SELECT call_id, function_id, n_inputs, inputs_closed, cancelled, is_map FROM calls WHERE call_id = ?",
            (call_id,),
        )
        if not rows:
            return None
        cid, fid, n, closed, cancelled, is_map = rows[0]
        return StoredCall(cid, fid, n, bool(closed), bool(cancelled), bool(is_map))

    def cancel_call(self, call_id: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE calls SET cancelled = 1 WHERE call_id = ?", (call_id,))

    def set_attempts(self, call_id: str, idx: int, attempts: int) -> None:
        with self.transaction() as db:
            db.execute("UPDATE inputs SET attempts = ? WHERE call_id = ? AND idx = ?", (attempts, call_id, idx))

    def unfinished_inputs(self) -> Iterable[tuple[str, StoredInput]]:
        """(function_id, input) for every input without a final output, oldest first."""
        rows = self._query(
            """SELECT c.function_id, i.call_id, i.idx, i.args, i.args_blob, i.attempts
               FROM inputs i JOIN calls c ON c.call_id = i.call_id
               WHERE c.cancelled = 0 AND NOT EXISTS (
                   SELECT 1 FROM outputs o WHERE o.call_id = i.call_id AND o.idx = i.idx AND o.status != ?)
               ORDER BY c.created_at, i.idx""",
            (_GEN_ITEM,),
        )
        for fid, call_id, idx, args, blob, attempts in rows:
            yield fid, StoredInput(call_id, idx, args or b"", blob or "", attempts)

    # ---- outputs ----

    def next_output_seq(self) -> int:
        """Where output numbering resumes after a start.

        Outputs are written behind (see `OutputWriter`), so a crash can lose
        the last few after callers saw their numbers; starting far past the
        highest stored number means no number is ever handed out twice.
        """
        rows = self._query("SELECT MAX(seq) FROM outputs")
        return (rows[0][0] or 0) + _SEQ_GAP

    def outputs_after(self, call_id: str, after_seq: int, limit: int) -> list[OutputRecord]:
        rows = self._query(
            "SELECT seq, call_id, idx, status, data, data_blob, message, traceback, log_seq FROM outputs "
            "WHERE call_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (call_id, after_seq, limit),
        )
        return [OutputRecord(s, c, i, st, d or b"", b or "", m or "", t or "", ls)
                for s, c, i, st, d, b, m, t, ls in rows]

    # ---- containers ----

    def add_container(self, container_id: str, app_id: str, function_id: str, function_name: str,
                      worker_id: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO containers VALUES (?, ?, ?, ?, ?, 'starting', ?, NULL, NULL, NULL)",
                (container_id, app_id, function_id, function_name, worker_id, time.time()),
            )

    def set_container_state(self, container_id: str, state: str, pid: int | None = None,
                            reason: str | None = None) -> None:
        stopped_at = time.time() if state == "stopped" else None
        with self.transaction() as db:
            db.execute(
                "UPDATE containers SET state = ?, pid = COALESCE(?, pid), reason = COALESCE(?, reason), "
                "stopped_at = COALESCE(?, stopped_at) WHERE container_id = ?",
                (state, pid, reason, stopped_at, container_id),
            )

    def mark_all_containers_stopped(self, reason: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE containers SET state = 'stopped', reason = ?, stopped_at = ? WHERE state != 'stopped'",
                (reason, time.time()),
            )

    def containers(self, app_id: str = "") -> list[tuple]:
        sql = ("SELECT container_id, app_id, function_name, worker_id, state, started_at, pid "
               "FROM containers WHERE (? = '' OR app_id = ?) ORDER BY started_at")
        return self._query(sql, (app_id, app_id))

    def container_app(self, container_id: str) -> str | None:
        rows = self._query("SELECT app_id FROM containers WHERE container_id = ?", (container_id,))
        return rows[0][0] if rows else None


def _insert_inputs(db: sqlite3.Connection, call_id: str, inputs: list[pb.Input]) -> None:
    _insert_rows(db, "inputs (call_id, idx, args, args_blob)",
                 [(call_id, i.idx, i.args.data, i.args.blob_id) for i in inputs])


def _insert_rows(db: sqlite3.Connection, target: str, rows: list) -> None:
    """Insert many rows with few statements.

    `executemany` runs one statement per row and hands the GIL back and
    forth for each; a multi-row VALUES list does the same work in one step.
    """
    if not rows:
        return
    width = len(rows[0])
    per_statement = max(1, _MAX_SQL_PARAMS // width)
    placeholder = "(" + ", ".join("?" * width) + ")"
    for start in range(0, len(rows), per_statement):
        chunk = rows[start:start + per_statement]
        db.execute(f"INSERT INTO {target} VALUES " + ", ".join([placeholder] * len(chunk)),
                   [value for row in chunk for value in row])


class StoreWriter:
    """One thread that writes calls, inputs and outputs, many operations per transaction.

    Accepted work is durable before it is acknowledged: `add_call` (when asked)
    and `add_inputs` wait for their transaction. Outputs are not waited for:
    callers get a result as soon as it arrives and it reaches the disk a moment
    later. If the server dies in between, the input has no stored output and
    runs again after the restart: at least once, never lost.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._queue: queue.Queue[_Write | None] = queue.Queue(_WRITE_BEHIND_LIMIT)
        self._thread = threading.Thread(target=self._run, name="skyloft-store-writer", daemon=True)
        self._thread.start()

    def add_call(self, call_id: str, function_id: str, inputs: list[pb.Input], closed: bool,
                 wait: bool = True) -> None:
        row = (call_id, function_id, time.time(), len(inputs), int(closed), 0, int(not closed))

        def write(db: sqlite3.Connection) -> None:
            db.execute("INSERT INTO calls VALUES (?, ?, ?, ?, ?, ?, ?)", row)
            _insert_inputs(db, call_id, inputs)

        self._submit(write, wait)

    def add_inputs(self, call_id: str, inputs: list[pb.Input], closed: bool) -> None:
        def write(db: sqlite3.Connection) -> None:
            _insert_inputs(db, call_id, inputs)
            db.execute("UPDATE calls SET n_inputs = n_inputs + ?, inputs_closed = ? WHERE call_id = ?",
                       (len(inputs), int(closed), call_id))

        self._submit(write, wait=True)

    def add_outputs(self, outputs: list[OutputRecord]) -> None:
        self._submit(lambda db: _insert_rows(
            db, "outputs (seq, call_id, idx, status, data, data_blob, message, traceback, log_seq)", outputs),
            wait=False)

    def _submit(self, apply: Callable[[sqlite3.Connection], None], wait: bool) -> None:
        item = _Write(apply, threading.Event() if wait else None)
        self._queue.put(item)
        if item.done is not None:
            item.done.wait()
            if item.error is not None:
                raise item.error

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = [first], False
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Write]) -> None:
        error: Exception | None = None
        try:
            with self._store.transaction() as db:
                for item in batch:
                    item.apply(db)
        except sqlite3.Error as exc:
            log.exception("writing to the state store failed")
            error = exc
        for item in batch:
            item.error = error
            if item.done is not None:
                item.done.set()

    def close(self) -> None:
        """Write what is queued, then stop."""
        self._queue.put(None)
        self._thread.join()


class _Write:
    __slots__ = ("apply", "done", "error")

    def __init__(self, apply: Callable[[sqlite3.Connection], None], done: threading.Event | None) -> None:
        self.apply = apply
        self.done = done
        self.error: Exception | None = None
