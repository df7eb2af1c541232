"""The results store's schema versions, migrations and one-line refusals: every database that
cannot be written is reported before any scoring, and reading commands never change a file."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kakugo_core.errors import KakugoError
from kakugo_core.store import APPLICATION_ID, ENGINE_VERSION, SCHEMA_VERSION, ResultsStore

REPO = Path(__file__).resolve().parent.parent
V0 = REPO / "tests" / "fixtures" / "stores" / "results_v0.sqlite"  # written by Kakugo 0.1.0


def _unprivileged() -> list[str]:
    """A command prefix under which file modes hold (root ignores them)."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: file modes cannot be tested")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


def _kakugo(*args: str, prefix: list[str] | None = None, **env: str
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*(prefix or []), sys.executable, "-m", "kakugo_core", *args], capture_output=True,
        text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO), **env})


def _bench(db: Path, *extra: str, prefix: list[str] | None = None, **env: str
           ) -> subprocess.CompletedProcess[str]:
    """Bench a model that does not exist: a store check that passes would fail on the model."""
    return _kakugo("bench", "-m", "no-such-model-here", "-b", "sib200", "-l", "jav_Latn",
                   "--limit", "2", "--db", str(db), "--no-progress", *extra, prefix=prefix,
                   **env)


def _digest(*paths: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.exists()}


def _one_line(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line and "Traceback" not in line, line
    assert line.startswith("kakugo: error:"), line
    for word in words:
        assert word in line, line
    return line


def _store(path: Path) -> Path:
    with ResultsStore(path) as store:
        store.put("m", "", "sib200", "jav_Latn", 0, "h", [("acc", 0.5, 0.1, 4)])
    return path


# -- migrations ----------------------------------------------------------------------------------
def test_an_unversioned_store_is_read_as_it_is_and_migrated_on_the_first_write(tmp_path):
    db = tmp_path / "old.sqlite"
    shutil.copy(V0, db)
    before = _digest(db)
    with ResultsStore(db, readonly=True) as store:
        old_rows = store.rows()
        assert store.schema_version == 0 and len(old_rows) == 4
    assert _digest(db) == before  # reading changed nothing
    with ResultsStore(db) as store:
        store.check_writable()
        assert store.schema_version == SCHEMA_VERSION
        assert store.rows() == old_rows and {r.engine for r in store.rows()} == {1}
        assert store.has(old_rows[0].model, old_rows[0].revision, "sib200", "jav_Latn", 0,
                         old_rows[0].prompt_hash)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_two_processes_migrating_one_store_at_once(tmp_path):
    db = tmp_path / "old.sqlite"
    shutil.copy(V0, db)
    code = ("import sys; from kakugo_core.store import ResultsStore; "
            "s = ResultsStore(sys.argv[1]); s.check_writable(); print(len(s.rows()))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(db)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    assert [o.strip() for o, _e in outs] == ["4", "4", "4"]


def test_an_engine_version_is_part_of_the_key(tmp_path):
    with ResultsStore(tmp_path / "r.sqlite") as store:
        store.put("m", "", "sib200", "jav_Latn", 0, "h", [("acc", 0.5, 0.1, 4)])
        store.put("m", "", "sib200", "jav_Latn", 0, "h", [("acc", 0.6, 0.1, 4)],
                  engine=ENGINE_VERSION + 1)
        assert not store.has("m", "", "sib200", "jav_Latn", 0, "h", engine=ENGINE_VERSION + 2)
        rows = store.rows()
    assert [(r.engine, r.value) for r in rows] == [(ENGINE_VERSION, 0.5),
                                                   (ENGINE_VERSION + 1, 0.6)]  # newest last


# -- refusals, before any scoring ----------------------------------------------------------------
def _foreign(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()
    return path


def _other_results(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE results (id INTEGER, score REAL)")
    conn.commit()
    conn.close()
    return path


def _newer(path: Path) -> Path:
    _store(path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    return path


def _text(path: Path) -> Path:
    path.write_text("model,score\nm,0.5\n" * 200)
    return path


@pytest.mark.parametrize(("make", "words"), [
    (_foreign, ["not a Kakugo results database", "its tables: notes"]),
    (_other_results, ["not a Kakugo results database", "columns id, score"]),
    (_newer, ["newer Kakugo", f"schema {SCHEMA_VERSION + 1}", "upgrade"]),
    (_text, ["not a SQLite database"]),
])
def test_a_database_of_another_schema_is_refused_in_one_line(tmp_path, make, words):
    db = make(tmp_path / "other.sqlite")
    before = _digest(db)
    _one_line(_bench(db), *words)
    _one_line(_kakugo("leaderboard", "--db", str(db)), *words)
    _one_line(_kakugo("store", "info", str(db)), *words)
    assert _digest(db) == before


def test_judge_checks_the_store_before_judging(tmp_path):
    from test_judge_benchmark import write_prompts

    db = _foreign(tmp_path / "other.sqlite")
    before = _digest(db)
    _one_line(_kakugo("judge", "-m", "no-such-model", "--opponent", "no-such-opponent", "-p",
                      str(write_prompts(tmp_path / "prompts.jsonl")), "-l", "Javanese",
                      "--db", str(db), "--no-progress",
                      "--set", "teacher.base_url=http://127.0.0.1:9", "--set",
                      "teacher.api_key_env=", "--set", "teacher.model=never-asked"),
              "not a Kakugo results database")
    assert _digest(db) == before


def test_a_read_only_store_fails_before_scoring(tmp_path):
    prefix = _unprivileged()
    db = _store(tmp_path / "r.sqlite")
    db.chmod(0o444)
    before = _digest(db)
    _one_line(_bench(db, prefix=prefix), "r.sqlite", "read-only")
    assert _digest(db) == before
    # reading it is fine
    shown = _kakugo("leaderboard", "--db", str(db), "--format", "csv", prefix=prefix)
    assert shown.returncode == 0 and "m," in shown.stdout, shown.stderr


def test_a_store_in_a_read_only_folder_fails_before_scoring(tmp_path):
    prefix = _unprivileged()
    folder = tmp_path / "locked"
    folder.mkdir()
    db = _store(folder / "r.sqlite")
    folder.chmod(0o555)
    try:
        _one_line(_bench(db, prefix=prefix), "folder", "read-only")
        _one_line(_bench(folder / "new.sqlite", prefix=prefix), "folder", "read-only")
        assert sorted(p.name for p in folder.iterdir()) == ["r.sqlite"]
        shown = _kakugo("leaderboard", "--db", str(db), "--format", "csv", prefix=prefix)
        assert shown.returncode == 0 and "m," in shown.stdout, shown.stderr
    finally:
        folder.chmod(0o755)


def test_a_read_only_predictions_folder_fails_before_scoring(tmp_path):
    prefix = _unprivileged()
    db = _store(tmp_path / "r.sqlite")
    preds = tmp_path / "preds"
    preds.mkdir()
    preds.chmod(0o555)
    try:
        _one_line(_bench(db, "--predictions-dir", str(preds), prefix=prefix),
                  "cannot write predictions", "preds")
    finally:
        preds.chmod(0o755)


def _hold(db: Path, sql: str, seconds: float, ready: threading.Event,
          done: threading.Event | None = None) -> None:
    """Hold a transaction on ``db`` for ``seconds`` or until ``done``."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute(sql)
    conn.execute("SELECT COUNT(*) FROM results").fetchone()
    ready.set()
    (done or threading.Event()).wait(seconds)
    conn.execute("ROLLBACK")
    conn.close()


@pytest.mark.parametrize(("make", "sql"), [
    (lambda p: shutil.copy(V0, p), "BEGIN"),  # a reader of an unversioned (rollback) store
    (_store, "BEGIN IMMEDIATE"),  # a writer that does not let go
])
def test_a_locked_store_is_reported_as_locked(tmp_path, make, sql):
    db = tmp_path / "r.sqlite"
    make(db)
    ready, done = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold, args=(db, sql, 120, ready, done))
    holder.start()
    ready.wait(10)
    try:
        line = _one_line(_bench(db, KAKUGO_DB_TIMEOUT="1"), "locked by another process")
        assert "not a Kakugo" not in line
    finally:
        done.set()
        holder.join()


def test_a_write_waits_for_a_short_lock_instead_of_failing(tmp_path):
    db = _store(tmp_path / "r.sqlite")
    ready = threading.Event()
    holder = threading.Thread(target=_hold, args=(db, "BEGIN IMMEDIATE", 1.5, ready))
    holder.start()
    ready.wait(10)
    started = time.monotonic()
    with ResultsStore(db, timeout=60) as store:
        store.put("late", "", "sib200", "jav_Latn", 0, "h", [("acc", 0.1, 0.1, 4)])
        assert "late" in store.models()
    assert time.monotonic() - started >= 1.0  # it waited for the lock
    holder.join()


def test_a_bad_timeout_is_one_line(tmp_path):
    _one_line(_bench(tmp_path / "r.sqlite", KAKUGO_DB_TIMEOUT="soon"), "KAKUGO_DB_TIMEOUT")
    assert not (tmp_path / "r.sqlite").exists()


# -- reading never writes ------------------------------------------------------------------------
def test_leaderboard_on_an_empty_or_missing_file_changes_nothing(tmp_path):
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    _one_line(_kakugo("leaderboard", "--db", str(empty)), "no results yet")
    assert empty.read_bytes() == b"" and sorted(os.listdir(tmp_path)) == ["empty.sqlite"]
    missing = tmp_path / "missing.sqlite"
    _one_line(_kakugo("leaderboard", "--db", str(missing)), "no results database")
    _one_line(_kakugo("store", "info", str(missing)), "no results database")
    assert not missing.exists()


def test_reading_an_unversioned_store_leaves_it_byte_identical(tmp_path):
    db = tmp_path / "old.sqlite"
    shutil.copy(V0, db)
    before = _digest(db)
    shown = _kakugo("leaderboard", "--db", str(db), "--format", "csv")
    assert shown.returncode == 0 and "tiny" in shown.stdout, shown.stderr
    info = _kakugo("store", "info", str(db))
    assert info.returncode == 0 and "schema:       0 (older" in info.stdout, info.stderr
    assert "rows:         4 in 2 cell(s)" in info.stdout
    assert _digest(db) == before and sorted(os.listdir(tmp_path)) == ["old.sqlite"]


def test_store_info_reports_the_current_schema(tmp_path):
    db = _store(tmp_path / "r.sqlite")
    info = _kakugo("store", "info", str(db))
    assert info.returncode == 0, info.stderr
    assert f"schema:       {SCHEMA_VERSION} (current)" in info.stdout
    assert "journal mode: wal" in info.stdout and f"engines:      {ENGINE_VERSION} (1 rows)" in \
        info.stdout


def test_writing_through_a_read_only_store_is_refused(tmp_path):
    db = _store(tmp_path / "r.sqlite")
    with ResultsStore(db, readonly=True) as store, pytest.raises(KakugoError, match="read-only"):
        store.put("x", "", "sib200", "jav_Latn", 0, "h", [("acc", 0.1, 0.1, 4)])
