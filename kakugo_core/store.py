"""The results store: one SQLite row per model, revision, benchmark, language, n-shot, prompt hash,
metric and scoring-engine version. Leaderboards, model cards and comparisons are all queries
over it.

The default database lives in the user's data directory (``KAKUGO_DB`` or ``--db`` change it).
Many processes may write one store at once: it runs in WAL mode (readers never block writers),
each cell is written in its own short ``BEGIN IMMEDIATE`` transaction, and a busy database is
waited for (SQLite's busy timeout, then retries with backoff, up to ``KAKUGO_DB_TIMEOUT``
seconds, 300 by default) instead of failing. The schema is versioned (``PRAGMA user_version``,
marked as Kakugo's by ``PRAGMA application_id``); older stores are migrated on the first write,
and a database of another program or of a newer Kakugo is refused in one line. Reading commands
open the file read-only, so they never create, migrate or rewrite it.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from kakugo_core.errors import KakugoError

#: the store's schema version (``PRAGMA user_version``); 0 is the unversioned first schema
SCHEMA_VERSION = 1
#: ``PRAGMA application_id`` of a Kakugo results database ("KKGO")
APPLICATION_ID = 0x4B4B474F
#: version of the scoring arithmetic (kakugo_core.scoring and the benchmarks' metrics): bump it
#: when a change makes the same model, data and prompt score differently, so old cells are
#: recomputed and merged stores keep both. Rows from unversioned stores count as engine 1.
ENGINE_VERSION = 1

LEGACY_COLUMNS = ("model", "revision", "benchmark", "language", "n_shot", "prompt_hash", "metric",
                  "value", "stderr", "n", "created", "versions")
COLUMNS = (*LEGACY_COLUMNS, "engine")
CELL_COLUMNS = ("model", "revision", "benchmark", "language", "n_shot", "prompt_hash", "engine")

_TABLE = """
CREATE TABLE results (
    model       TEXT NOT NULL,
    revision    TEXT NOT NULL DEFAULT '',
    benchmark   TEXT NOT NULL,
    language    TEXT NOT NULL,
    n_shot      INTEGER NOT NULL,
    prompt_hash TEXT NOT NULL,
    metric      TEXT NOT NULL,
    value       REAL NOT NULL,
    stderr      REAL,
    n           INTEGER NOT NULL,
    created     TEXT NOT NULL,
    versions    TEXT NOT NULL DEFAULT '{}',
    engine      INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (model, revision, benchmark, language, n_shot, prompt_hash, metric, engine)
)"""

T = TypeVar("T")


def _migrate_0_to_1(conn: sqlite3.Connection) -> None:
    """Unversioned store -> 1: the engine version joins the key (old rows are engine 1)."""
    conn.execute(_TABLE.replace("CREATE TABLE results", "CREATE TABLE results_v1"))
    cols = ", ".join(LEGACY_COLUMNS)
    conn.execute(f"INSERT INTO results_v1 ({cols}, engine) SELECT {cols}, 1 FROM results")
    conn.execute("DROP TABLE results")
    conn.execute("ALTER TABLE results_v1 RENAME TO results")


#: from-version -> the step to the next version, run inside one write transaction
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {0: _migrate_0_to_1}


@dataclass(frozen=True)
class ResultRow:
    """One stored score."""

    model: str
    revision: str
    benchmark: str
    language: str
    n_shot: int
    prompt_hash: str
    metric: str
    value: float
    stderr: float | None
    n: int
    created: str
    versions: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    engine: int = ENGINE_VERSION

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def as_tuple(self) -> tuple[Any, ...]:
        """The row in :data:`COLUMNS` order, as stored."""
        return (self.model, self.revision, self.benchmark, self.language, self.n_shot,
                self.prompt_hash, self.metric, float(self.value),
                None if self.stderr is None else float(self.stderr), int(self.n), self.created,
                json.dumps(self.versions or {}, sort_keys=True), int(self.engine))


def default_db_path() -> Path:
    """``$KAKUGO_DB``, else ``results.sqlite`` in the user's data directory."""
    env = os.environ.get("KAKUGO_DB")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("kakugo")) / "results.sqlite"


def default_timeout() -> float:
    """Seconds to wait for a busy database: ``$KAKUGO_DB_TIMEOUT``, else 300."""
    text = os.environ.get("KAKUGO_DB_TIMEOUT", "").strip()
    if not text:
        return 300.0
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise KakugoError(f"KAKUGO_DB_TIMEOUT must be a number of seconds >= 0, not {text!r}")
    return value


def _is_busy(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


class ResultsStore:
    """A thin, typed layer over the SQLite results table.

    ``readonly`` opens the file read-only (it must exist; it is never created or migrated);
    ``timeout`` is how long a busy database is waited for (default :func:`default_timeout`).
    """

    def __init__(
        self, path: str | Path | None = None, *, readonly: bool = False,
        timeout: float | None = None,
    ) -> None:
        self.path = Path(path) if path else default_db_path()
        self.readonly = readonly
        self.timeout = default_timeout() if timeout is None else float(timeout)
        self._conn: sqlite3.Connection | None = None
        self._version: int | None = None  # None: an empty database (no schema yet)

    # -- opening ---------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = self._open_readonly() if self.readonly else self._open_writable()
            try:
                self._version = self._retry(lambda: self._prepare(conn), "open")
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _open_writable(self) -> sqlite3.Connection:
        if self.path.is_dir():
            raise KakugoError(f"{self.path}: is a folder, not a results database")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise KakugoError(f"{self.path}: cannot create its folder ({exc.strerror or exc})"
                              ) from None
        busy_ms = int(min(self.timeout, 10.0) * 1000)
        try:
            return sqlite3.connect(self.path, timeout=busy_ms / 1000, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def _open_readonly(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise KakugoError(f"{self.path}: no results database there; run `kakugo bench` "
                              "first or pass --db")
        uri = self.path.absolute().as_uri() + "?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=min(self.timeout, 10.0),
                                   isolation_level=None, check_same_thread=False)
            try:
                conn.execute("PRAGMA user_version").fetchone()
            except sqlite3.OperationalError as exc:
                if _is_busy(exc) or not ("readonly" in str(exc) or "unable to open" in str(exc)):
                    return conn  # reported by the first real query
                # a WAL database in a read-only folder: nobody can write it, read it as it is
                conn.close()
                conn = sqlite3.connect(uri + "&immutable=1", uri=True, isolation_level=None,
                                       check_same_thread=False)
            return conn
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def _prepare(self, conn: sqlite3.Connection) -> int | None:
        """Check what the file holds; when writable, create or migrate it and turn on WAL."""
        version = self._inspect(conn)
        if self.readonly or version == SCHEMA_VERSION:
            if not self.readonly:
                self._enable_wal(conn)
            return version
        if version is None:
            self._enable_wal(conn)  # before the first transaction, so it already runs in WAL

        def upgrade(c: sqlite3.Connection) -> int:
            current = self._inspect(c)  # again, under the write lock: another process may
            if current is None:          # have created or migrated it meanwhile
                c.execute(_TABLE)
            else:
                while current < SCHEMA_VERSION:
                    MIGRATIONS[current](c)
                    current += 1
            c.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            return SCHEMA_VERSION

        version = self._in_transaction(conn, upgrade)
        self._enable_wal(conn)
        return version

    def _inspect(self, conn: sqlite3.Connection) -> int | None:
        """The schema version of a Kakugo store (0: unversioned), None for an empty database,
        else a one-line :class:`KakugoError`."""
        app = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
            " AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        where = f"{self.path}: not a Kakugo results database"
        hint = "; pass --db with another path"
        if app == APPLICATION_ID:
            if version > SCHEMA_VERSION:
                raise KakugoError(
                    f"{self.path}: written by a newer Kakugo (store schema {version}; this one "
                    f"knows up to {SCHEMA_VERSION}); upgrade Kakugo to use it")
            expected = COLUMNS if version >= 1 else LEGACY_COLUMNS
            if tables != ["results"] or self._columns(conn) != expected:
                raise KakugoError(f"{self.path}: a damaged Kakugo results database (schema "
                                  f"{version} without its results table){hint}")
            return version
        if app != 0:
            raise KakugoError(f"{where} (application id {app:#x}){hint}")
        if not tables and version == 0:
            return None
        if tables == ["results"] and version == 0 and self._columns(conn) == LEGACY_COLUMNS:
            return 0
        what = f"its tables: {', '.join(tables)}" if tables else f"user_version {version}"
        if tables == ["results"]:
            what = f"its results table has columns {', '.join(self._columns(conn))}"
        raise KakugoError(f"{where} ({what}){hint}")

    @staticmethod
    def _columns(conn: sqlite3.Connection) -> tuple[str, ...]:
        return tuple(r[1] for r in conn.execute("PRAGMA table_info(results)"))

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            self._retry(lambda: conn.execute("PRAGMA journal_mode=WAL").fetchone(), "open")

    # -- errors and retries ----------------------------------------------------------------
    def _error(self, exc: BaseException, waited: float | None = None) -> KakugoError:
        """A SQLite error as one line that says what is wrong with the file."""
        text = str(exc)
        folder = self.path.absolute().parent
        if _is_busy(exc):
            return KakugoError(
                f"{self.path}: the database is locked by another process (waited "
                f"{waited or 0:.0f} s); try again when it is done, or raise KAKUGO_DB_TIMEOUT")
        if "not a database" in text:
            return KakugoError(f"{self.path}: not a SQLite database, so not a Kakugo results "
                               "database; pass --db with another path")
        if "readonly" in text or "unable to open" in text or "permission" in text.lower():
            if self.path.exists() and not os.access(self.path, os.W_OK):
                return KakugoError(f"{self.path}: the results database is read-only; make it "
                                   "writable or pass --db with another path")
            if not os.access(folder, os.W_OK):
                return KakugoError(f"{self.path}: its folder {folder} is read-only (SQLite "
                                   "writes journal files beside the database); make it writable "
                                   "or pass --db with another path")
        return KakugoError(f"{self.path}: cannot use the results database ({text})")

    def _retry(self, work: Callable[[], T], what: str) -> T:
        """Run ``work``, retrying with jittered exponential backoff while the database is busy,
        up to ``timeout`` seconds; SQLite errors become one-line :class:`KakugoError`."""
        start = time.monotonic()
        delay = 0.05
        while True:
            try:
                return work()
            except sqlite3.Error as exc:
                waited = time.monotonic() - start
                if _is_busy(exc) and waited < self.timeout:
                    time.sleep(min(delay, self.timeout - waited) * (0.5 + random.random()))
                    delay = min(delay * 2, 2.0)
                    continue
                raise self._error(exc, waited) from None

    @staticmethod
    def _in_transaction(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
        conn.execute("BEGIN IMMEDIATE")
        try:
            out = work(conn)
            conn.execute("COMMIT")
            return out
        except BaseException:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise

    def transaction(self, work: Callable[[sqlite3.Connection], T], what: str = "write") -> T:
        """Run ``work(conn)`` in one ``BEGIN IMMEDIATE`` transaction (retried while busy);
        anything it raises rolls the whole transaction back."""
        if self.readonly:
            raise KakugoError(f"{self.path}: opened read-only, cannot {what}")
        conn = self._connect()
        return self._retry(lambda: self._in_transaction(conn, work), what)

    def check_writable(self) -> None:
        """Open (creating or migrating) the store and prove it can be written: a write that is
        rolled back. A one-line :class:`KakugoError` when it cannot; call it before long work."""

        class _Probe(Exception):
            pass

        def probe(conn: sqlite3.Connection) -> None:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")  # writes page 1
            raise _Probe

        try:
            self.transaction(probe, "write")
        except _Probe:
            pass

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int | None:
        """0: unversioned (older Kakugo), None: an empty database."""
        self._connect()
        return self._version

    # -- writing ---------------------------------------------------------------------------
    def has(
        self, model: str, revision: str, benchmark: str, language: str, n_shot: int,
        prompt_hash: str, engine: int = ENGINE_VERSION,
    ) -> bool:
        """Whether this cell was already computed (by this scoring engine)."""
        conn = self._connect()
        if self._version is None:
            return False
        sql = ("SELECT 1 FROM results WHERE model=? AND revision=? AND benchmark=? AND "
               "language=? AND n_shot=? AND prompt_hash=?")
        args: list[Any] = [model, revision, benchmark, language, n_shot, prompt_hash]
        if self._version >= 1:
            sql += " AND engine=?"
            args.append(engine)
        elif engine != 1:
            return False
        return self._retry(lambda: conn.execute(sql + " LIMIT 1", args).fetchone(),
                           "read") is not None

    def put(
        self,
        model: str,
        revision: str,
        benchmark: str,
        language: str,
        n_shot: int,
        prompt_hash: str,
        scores: Iterable[tuple[str, float, float | None, int]],
        versions: dict[str, str] | None = None,
        engine: int = ENGINE_VERSION,
    ) -> None:
        """Store (metric, value, stderr, n) scores of one cell in one transaction, replacing
        any earlier ones for the same key."""
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        rows = [
            ResultRow(model, revision, benchmark, language, n_shot, prompt_hash, metric,
                      value, stderr, n, created, dict(versions or {}), engine).as_tuple()
            for metric, value, stderr, n in scores
        ]
        self.transaction(lambda conn: conn.executemany(
            f"INSERT OR REPLACE INTO results ({', '.join(COLUMNS)}) VALUES "
            f"({','.join('?' * len(COLUMNS))})", rows))

    def put_result(self, model: str, revision: str, result: Any, versions: dict[str, str]) -> None:
        """Store a :class:`kakugo_core.interfaces.BenchmarkResult`."""
        self.put(
            model, revision, result.benchmark, result.language, result.n_shot,
            result.prompt_hash, [(s.metric, s.value, s.stderr, s.n) for s in result.scores],
            versions,
        )

    # -- reading ---------------------------------------------------------------------------
    def _select(self) -> str:
        cols = ", ".join(COLUMNS if (self._version or 0) >= 1 else (*LEGACY_COLUMNS, "1"))
        return f"SELECT {cols} FROM results"

    def rows(
        self,
        models: Sequence[str] | None = None,
        benchmarks: Sequence[str] | None = None,
        languages: Sequence[str] | None = None,
        metrics: Sequence[str] | None = None,
    ) -> list[ResultRow]:
        """Stored rows, filtered by any of the given lists; for each key the newest engine's
        and then the newest row comes last."""
        conn = self._connect()
        if self._version is None:
            return []
        where: list[str] = []
        args: list[Any] = []
        for column, values in (
            ("model", models), ("benchmark", benchmarks), ("language", languages),
            ("metric", metrics),
        ):
            if values:
                where.append(f"{column} IN ({','.join('?' * len(values))})")
                args.extend(values)
        sql = self._select()
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY model, benchmark, language, metric, 13, created"
        found = self._retry(lambda: conn.execute(sql, args).fetchall(), "read")
        out = []
        for row in found:
            (model, revision, benchmark, language, n_shot, prompt_hash, metric, value, stderr, n,
             created, versions, engine) = row
            out.append(ResultRow(model, revision, benchmark, language, n_shot, prompt_hash, metric,
                                 value, stderr, n, created, json.loads(versions), engine))
        return out

    def models(self) -> list[str]:
        """Every model with at least one result."""
        conn = self._connect()
        if self._version is None:
            return []
        return [r[0] for r in self._retry(lambda: conn.execute(
            "SELECT DISTINCT model FROM results ORDER BY model").fetchall(), "read")]

    def info(self) -> dict[str, Any]:
        """Schema version, journal mode and counts, for ``kakugo store info``."""
        conn = self._connect()
        out: dict[str, Any] = {
            "path": str(self.path), "schema": self._version, "current_schema": SCHEMA_VERSION,
            "journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
            "rows": 0, "cells": 0, "models": 0, "benchmarks": [], "languages": 0, "engines": {},
            "first_created": None, "last_created": None,
        }
        if self._version is None:
            return out

        def query() -> None:
            sub = self._select()
            out["rows"], out["models"], out["languages"], out["first_created"], \
                out["last_created"] = conn.execute(
                    f"SELECT COUNT(*), COUNT(DISTINCT model), COUNT(DISTINCT language), "
                    f"MIN(created), MAX(created) FROM ({sub})").fetchone()
            out["cells"] = conn.execute(
                f"SELECT COUNT(*) FROM (SELECT DISTINCT model, revision, benchmark, language, "
                f"n_shot, prompt_hash, {'engine' if self._version else '1'} FROM results)"
            ).fetchone()[0]
            out["benchmarks"] = [r[0] for r in conn.execute(
                "SELECT DISTINCT benchmark FROM results ORDER BY 1")]
            engine = "engine" if self._version else "1"
            out["engines"] = {str(e): c for e, c in conn.execute(
                f"SELECT {engine}, COUNT(*) FROM results GROUP BY 1 ORDER BY 1")}

        conn.execute("BEGIN")  # one snapshot for every count
        try:
            self._retry(query, "read")
        finally:
            conn.execute("COMMIT")
        return out
