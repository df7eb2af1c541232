"""Many `kakugo bench` processes on one results store, a reader holding a read transaction
throughout, and one writer killed with SIGKILL: nothing lost, nothing duplicated, and a rerun
computes only the missing cells."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kakugo_core.store import ResultsStore

REPO = Path(__file__).resolve().parent.parent
LIMIT = "12"
KEY = "model, revision, benchmark, language, n_shot, prompt_hash, metric"

READER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)
conn.execute("BEGIN")
before = conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
print("holding", before, flush=True)
sys.stdin.readline()
after = conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
conn.execute("COMMIT")
print("released", after, flush=True)
"""


def _bench(model: Path, languages: list[str], db: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "kakugo_core", "bench", "-m", str(model), "-b", "sib200",
         "-l", ",".join(languages), "--limit", LIMIT, "--n-shot", "0", "--db", str(db),
         "--no-progress", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _cells(db: Path) -> dict[tuple[str, str], set[str]]:
    """(model, language) -> stored metrics, read without writing."""
    conn = sqlite3.connect(db.absolute().as_uri() + "?mode=ro", uri=True, timeout=30)
    try:
        out: dict[tuple[str, str], set[str]] = {}
        for model, language, metric in conn.execute(
                "SELECT model, language, metric FROM results"):
            out.setdefault((model, language), set()).add(metric)
        return out
    finally:
        conn.close()


def _all_rows(db: Path) -> set[tuple]:
    conn = sqlite3.connect(db)
    try:
        return set(conn.execute("SELECT * FROM results"))
    finally:
        conn.close()


@pytest.mark.slow
def test_concurrent_writers_a_reader_and_a_killed_writer(tiny_model: Path, tmp_path: Path):
    model_a, model_b = tmp_path / "model-a", tmp_path / "model-b"
    shutil.copytree(tiny_model, model_a)
    shutil.copytree(tiny_model, model_b)
    db = tmp_path / "results.sqlite"
    with ResultsStore(db) as store:  # the reader needs a store to hold open
        store.put("seed", "", "sib200", "eng_Latn", 0, "x",
                  [("acc", 0.5, 0.1, 4), ("macro_f1", 0.4, 0.1, 4)])
    reader = subprocess.Popen([sys.executable, "-c", READER, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert reader.stdout is not None and reader.stdin is not None
    assert reader.stdout.readline().split() == ["holding", "2"]

    victim_langs = ["swh_Latn", "yor_Latn", "eng_Latn", "jav_Latn", "sun_Latn"]
    writers = {
        "a1": (_bench(model_a, ["jav_Latn", "sun_Latn"], db), model_a, ["jav_Latn", "sun_Latn"]),
        "a2": (_bench(model_a, ["sun_Latn", "yor_Latn"], db), model_a, ["sun_Latn", "yor_Latn"]),
        "b1": (_bench(model_b, ["jav_Latn", "sun_Latn"], db), model_b, ["jav_Latn", "sun_Latn"]),
        "victim": (_bench(model_b, victim_langs, db), model_b, victim_langs),
    }
    victim = writers["victim"][0]
    deadline = time.monotonic() + 600
    while (str(model_b), "swh_Latn") not in _cells(db):  # its first cell is stored
        assert victim.poll() is None, victim.communicate()
        assert time.monotonic() < deadline, "the victim never stored a cell"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    assert victim.returncode == -signal.SIGKILL

    for name, (proc, _model, _langs) in writers.items():
        if name != "victim":
            out, err = proc.communicate(timeout=600)
            assert proc.returncode == 0, f"{name}: {err[-2000:]}"
            assert "Traceback" not in err
    reader.stdin.write("\n")
    reader.stdin.flush()
    released, err = reader.communicate(timeout=60)
    assert released.split() == ["released", "2"], err  # its snapshot held throughout

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute(f"SELECT {KEY}, COUNT(*) FROM results GROUP BY {KEY} "
                        "HAVING COUNT(*) > 1").fetchall() == []
    conn.close()
    cells = _cells(db)
    for name, (_proc, model, langs) in writers.items():
        if name != "victim":  # every cell of a finished writer is there, whole
            for lang in langs:
                assert cells.get((str(model), lang)) == {"acc", "macro_f1"}, (name, lang)
    assert all(metrics == {"acc", "macro_f1"} for metrics in cells.values())  # no half cell
    missing = [lang for lang in victim_langs if (str(model_b), lang) not in cells]
    assert missing, "the victim finished before the kill; nothing to resume"

    before = _all_rows(db)
    preds = tmp_path / "predictions"
    rerun = _bench(model_b, victim_langs, db, "--predictions-dir", str(preds))
    _out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err[-2000:]
    computed = sorted(p.stem for p in preds.rglob("*.jsonl"))
    assert computed == sorted(missing)  # only the missing cells were scored
    assert before <= _all_rows(db)  # stored rows untouched
    assert {lang for (model, lang) in _cells(db) if model == str(model_b)} == set(victim_langs)
