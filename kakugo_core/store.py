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

import functools
import json
import logging
import math
import os
import random
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from kakugo_core.errors import KakugoError
from kakugo_core.toolkit.metrics import PROPORTION_METRICS

log = logging.getLogger("kakugo")

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

#: the prompt hash of rows imported from a Hub card; the only rows whose n may be 0 (a card that
#: gives no sample count)
IMPORTED = "imported"
#: the value range of a metric the door knows, by exact name or by a prefix ending in ``*``:
#: shares of items and F1 in [0, 1], chrF++ and BLEU in [0, 100]; any other metric need only
#: be finite
METRIC_RANGES: dict[str, tuple[float, float]] = {
    **dict.fromkeys(sorted(PROPORTION_METRICS | {"macro_f1", "f1"}), (0.0, 1.0)),
    "chrf*": (0.0, 100.0), "bleu*": (0.0, 100.0),
}
#: characters a benchmark, language or metric name may not hold: path separators (names become
#: file names of the site) and what HTML gives a meaning to
UNSAFE_NAME_CHARS = frozenset('/\\<>"&')

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


class BadRowError(KakugoError):
    """A row the store's door refuses: names where it was met, the row and the field."""

    def __init__(self, row: str, field: str, problem: str, where: str = "",
                 outcome: str = "") -> None:
        self.row, self.field, self.problem, self.where = row, field, problem, where
        self.outcome = outcome
        super().__init__(f"{where + ': ' if where else ''}bad row ({row}): {field} {problem}"
                         + (f"; {outcome}" if outcome else ""))

    def at(self, where: str | Path, outcome: str = "") -> BadRowError:
        """The same refusal, said of the store (or source) ``where`` with what came of it."""
        return BadRowError(self.row, self.field, self.problem, str(where), outcome)


def _short(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters (one line, whatever the value holds)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _label(model: object, benchmark: object, language: object, metric: object) -> str:
    return (f"model {_short(model)}, benchmark {_short(benchmark)}, language "
            f"{_short(language)}, metric {_short(metric)}")


#: control characters (Unicode category Cc): never in a stored text
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def _name_problem(value: object, unsafe: bool) -> str | None:
    """What is wrong with a name (None: nothing); with ``unsafe``, :data:`UNSAFE_NAME_CHARS`
    and the path segments ``.`` and ``..`` are refused too."""
    if not isinstance(value, str):
        return "must be a non-empty text"
    return _text_problem(value, unsafe)


@functools.lru_cache(maxsize=4096)
def _text_problem(value: str, unsafe: bool) -> str | None:
    """:func:`_name_problem` of a text (cached: a store repeats its names on every row)."""
    if not value.strip():
        return "must be a non-empty text"
    if _control(value):
        return f"{_short(value)} holds a control character"
    if unsafe:
        bad = sorted(set(value) & UNSAFE_NAME_CHARS)
        if bad:
            return (f"{_short(value)} holds {' '.join(bad)} (a path separator or a character "
                    "HTML gives a meaning to)")
        if value in (".", ".."):
            return f"{_short(value)} is a path segment"
    return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite(value: object) -> bool:
    """A finite int or float (not a bool, not an int too large for a float)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


@functools.lru_cache(maxsize=1024)
def metric_range(metric: str) -> tuple[float, float] | None:
    """The range :data:`METRIC_RANGES` gives ``metric`` (None: any finite value)."""
    if metric in METRIC_RANGES:
        return METRIC_RANGES[metric]
    for name, span in METRIC_RANGES.items():
        if name.endswith("*") and metric.startswith(name[:-1]):
            return span
    return None


def _problem(row: ResultRow) -> tuple[str, str] | None:
    """The first (field, problem) of ``row``, None when the door lets it in."""
    for name in ("model", "benchmark", "language", "metric"):
        why = _name_problem(getattr(row, name), name != "model")
        if why:
            return name, why
    for name in ("revision", "prompt_hash", "created"):
        value = getattr(row, name)
        if not isinstance(value, str) or _control(value):
            return name, f"{_short(value)} must be a text without control characters"
    if not _is_int(row.n_shot) or row.n_shot < 0:
        return "n_shot", f"{_short(row.n_shot)} must be a whole number >= 0"
    if not _is_finite(row.value):
        return "value", f"{_short(row.value)} must be a finite number"
    span = metric_range(row.metric)
    if span and not span[0] <= row.value <= span[1]:
        return "value", (f"{_short(row.value)} is outside [{span[0]:g}, {span[1]:g}], the "
                         f"range of {row.metric}")
    if row.stderr is not None and (not _is_finite(row.stderr) or row.stderr < 0):
        return "stderr", f"{_short(row.stderr)} must be empty or a finite number >= 0"
    least = 0 if row.prompt_hash == IMPORTED else 1
    if not _is_int(row.n) or row.n < least:
        return "n", f"{_short(row.n)} must be a whole number >= {least}"
    if not isinstance(row.versions, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in row.versions.items()):
        return "versions", f"{_short(row.versions)} must be a JSON object of texts"
    if not _is_int(row.engine) or row.engine < 1:
        return "engine", f"{_short(row.engine)} must be a whole number >= 1"
    return None


def validate_row(row: ResultRow) -> None:
    """The store's one door: raise :class:`BadRowError` naming the row and the first field that
    breaks a rule (docs/store.md, "One door")."""
    found = _problem(row)
    if found:
        raise BadRowError(_label(row.model, row.benchmark, row.language, row.metric), *found)


def _parse(raw: Sequence[Any]) -> ResultRow:
    """A row as stored (:data:`COLUMNS` order) read through the door."""
    (model, revision, benchmark, language, n_shot, prompt_hash, metric, value, stderr, n,
     created, versions, engine) = raw
    try:
        parsed = json.loads(versions) if isinstance(versions, str) else versions
    except ValueError:
        raise BadRowError(_label(model, benchmark, language, metric), "versions",
                          f"{_short(versions)} is not JSON") from None
    row = ResultRow(model, revision, benchmark, language, n_shot, prompt_hash, metric, value,
                    stderr, n, created, parsed, engine)
    validate_row(row)
    return row


def _passes(raw: Sequence[Any]) -> bool:
    try:
        _parse(raw)
    except BadRowError:
        return False
    return True


#: stores already warned about in this process: one warning per store, even when a command
#: reads it twice (the leaderboard's site reads everything, then its models' rows again)
_WARNED: set[str] = set()


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
        """Whether this cell was already computed (by this scoring engine): a row of it that
        passes the door is stored (a bad one is scored again, and replaced)."""
        conn = self._connect()
        if self._version is None:
            return False
        sql = (self._select() + " WHERE model=? AND revision=? AND benchmark=? AND "
               "language=? AND n_shot=? AND prompt_hash=?")
        args: list[Any] = [model, revision, benchmark, language, n_shot, prompt_hash]
        if self._version >= 1:
            sql += " AND engine=?"
            args.append(engine)
        elif engine != 1:
            return False
        found = self._retry(lambda: conn.execute(sql, args).fetchall(), "read")
        return any(_passes(raw) for raw in found)

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
        self.insert_rows([
            ResultRow(model, revision, benchmark, language, n_shot, prompt_hash, metric,
                      value, stderr, n, created, dict(versions or {}), engine)
            for metric, value, stderr, n in scores
        ])

    def insert_rows(self, rows: Iterable[ResultRow], conn: sqlite3.Connection | None = None,
                    source: str = "") -> int:
        """The one way rows enter the store: every row passes :func:`validate_row` first (one
        bad row refuses them all, a one-line :class:`BadRowError` naming this store, the row and
        the field), then all are written, replacing rows of the same key. In their own
        transaction, or in the caller's (``conn``, from :meth:`transaction`). ``source`` says
        where the rows came from, in the refusal. Returns the number of rows written."""
        batch = list(rows)
        for row in batch:
            try:
                validate_row(row)
            except BadRowError as exc:
                where = f"{self.path}" + (f" (from {source})" if source else "")
                raise exc.at(where, "nothing was written") from None
        sql = (f"INSERT OR REPLACE INTO results ({', '.join(COLUMNS)}) VALUES "
               f"({','.join('?' * len(COLUMNS))})")
        values = [row.as_tuple() for row in batch]
        if conn is not None:
            conn.executemany(sql, values)
        elif values:
            self.transaction(lambda c: c.executemany(sql, values))
        return len(values)

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
        strict: bool = False,
    ) -> list[ResultRow]:
        """Stored rows, filtered by any of the given lists; for each key the newest engine's
        and then the newest row comes last. A row the door would refuse (written by an older
        Kakugo or by hand) is skipped with one warning that counts them; ``strict`` raises
        :class:`BadRowError` for the first instead."""
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
        return self._through_door(found, strict)

    def _through_door(self, found: Iterable[Sequence[Any]], strict: bool) -> list[ResultRow]:
        """Stored rows that pass the door; the others are skipped with one warning per store
        (or, ``strict``, the first raises)."""
        out: list[ResultRow] = []
        bad: list[BadRowError] = []
        for raw in found:
            try:
                out.append(_parse(raw))
            except BadRowError as exc:
                if strict:
                    raise exc.at(self.path) from None
                bad.append(exc)
        if bad and str(self.path.absolute()) not in _WARNED:
            _WARNED.add(str(self.path.absolute()))
            log.warning("%s: skipped %d bad row(s) that no command can use (the first: %s: %s "
                        "%s); see docs/store.md, \"One door\"", self.path, len(bad), bad[0].row,
                        bad[0].field, bad[0].problem)
        return out

    def models(self) -> list[str]:
        """Every model with at least one (good) result."""
        return sorted({row.model for row in self.rows()})

    def info(self) -> dict[str, Any]:
        """Schema version, journal mode and counts, for ``kakugo store info``."""
        conn = self._connect()
        out: dict[str, Any] = {
            "path": str(self.path), "schema": self._version, "current_schema": SCHEMA_VERSION,
            "journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
            "rows": 0, "cells": 0, "models": 0, "benchmarks": [], "languages": 0, "engines": {},
            "first_created": None, "last_created": None, "bad_rows": 0,
        }
        if self._version is None:
            return out

        def query() -> list[Any]:
            return conn.execute(self._select()).fetchall()

        conn.execute("BEGIN")  # one snapshot for every count
        try:
            found = self._retry(query, "read")
        finally:
            conn.execute("COMMIT")
        rows = self._through_door(found, strict=False)  # the counts are of what readers see
        engines: dict[int, int] = {}
        for row in rows:
            engines[row.engine] = engines.get(row.engine, 0) + 1
        created = sorted(row.created for row in rows)
        out.update({
            "rows": len(rows), "bad_rows": len(found) - len(rows),
            "cells": len({(r.model, r.revision, r.benchmark, r.language, r.n_shot,
                           r.prompt_hash, r.engine) for r in rows}),
            "models": len({r.model for r in rows}),
            "benchmarks": sorted({r.benchmark for r in rows}),
            "languages": len({r.language for r in rows}),
            "engines": {str(e): engines[e] for e in sorted(engines)},
            "first_created": created[0] if created else None,
            "last_created": created[-1] if created else None,
        })
        return out
