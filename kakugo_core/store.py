"""The results store: one SQLite row per model, revision, benchmark, language, n-shot, prompt hash
and metric. Leaderboards, model cards and comparisons are all queries over it.

The default database lives in the user's data directory (``KAKUGO_DB`` or ``--db`` change it).
Writes are single transactions, so a crash never leaves half a result.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kakugo_core.errors import KakugoError

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
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
    PRIMARY KEY (model, revision, benchmark, language, n_shot, prompt_hash, metric)
);
"""


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

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def default_db_path() -> Path:
    """``$KAKUGO_DB``, else ``results.sqlite`` in the user's data directory."""
    env = os.environ.get("KAKUGO_DB")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("kakugo")) / "results.sqlite"


class ResultsStore:
    """A thin, typed layer over the SQLite results table."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else default_db_path()
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                conn = sqlite3.connect(self.path)
                conn.executescript(SCHEMA)
            except sqlite3.DatabaseError as exc:
                raise KakugoError(f"{self.path}: not a Kakugo results database ({exc})") from None
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------
    def has(
        self, model: str, revision: str, benchmark: str, language: str, n_shot: int,
        prompt_hash: str,
    ) -> bool:
        """Whether this cell was already computed."""
        cur = self._connect().execute(
            "SELECT 1 FROM results WHERE model=? AND revision=? AND benchmark=? AND language=?"
            " AND n_shot=? AND prompt_hash=? LIMIT 1",
            (model, revision, benchmark, language, n_shot, prompt_hash),
        )
        return cur.fetchone() is not None

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
    ) -> None:
        """Store (metric, value, stderr, n) scores of one cell in one transaction, replacing
        any earlier ones for the same key."""
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        rows = [
            (model, revision, benchmark, language, n_shot, prompt_hash, metric, float(value),
             None if stderr is None else float(stderr), int(n), created,
             json.dumps(versions or {}, sort_keys=True))
            for metric, value, stderr, n in scores
        ]
        conn = self._connect()
        with conn:
            conn.executemany(
                "INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows
            )

    def put_result(self, model: str, revision: str, result: Any, versions: dict[str, str]) -> None:
        """Store a :class:`kakugo_core.interfaces.BenchmarkResult`."""
        self.put(
            model, revision, result.benchmark, result.language, result.n_shot,
            result.prompt_hash, [(s.metric, s.value, s.stderr, s.n) for s in result.scores],
            versions,
        )

    # -- reading ---------------------------------------------------------------------------
    def rows(
        self,
        models: Sequence[str] | None = None,
        benchmarks: Sequence[str] | None = None,
        languages: Sequence[str] | None = None,
        metrics: Sequence[str] | None = None,
    ) -> list[ResultRow]:
        """Stored rows, filtered by any of the given lists, newest cell per key."""
        where: list[str] = []
        args: list[Any] = []
        for column, values in (
            ("model", models), ("benchmark", benchmarks), ("language", languages),
            ("metric", metrics),
        ):
            if values:
                where.append(f"{column} IN ({','.join('?' * len(values))})")
                args.extend(values)
        sql = "SELECT * FROM results"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY model, benchmark, language, metric, created"
        out = []
        for row in self._connect().execute(sql, args):
            (model, revision, benchmark, language, n_shot, prompt_hash, metric, value, stderr, n,
             created, versions) = row
            out.append(ResultRow(model, revision, benchmark, language, n_shot, prompt_hash, metric,
                                 value, stderr, n, created, json.loads(versions)))
        return out

    def models(self) -> list[str]:
        """Every model with at least one result."""
        cur = self._connect().execute("SELECT DISTINCT model FROM results ORDER BY model")
        return [r[0] for r in cur]
