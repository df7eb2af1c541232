"""`kakugo store merge`: stores from real `kakugo bench` runs (and one written by Kakugo 0.1.0)
merge into one without losing or duplicating a result; conflicting values are listed and refused
unless a policy is chosen, and a refused merge leaves OUT byte-identical."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kakugo_core.cli import cli
from kakugo_core.errors import KakugoError
from kakugo_core.store import ENGINE_VERSION, ResultsStore
from kakugo_core.store_merge import MergeConflictError, merge_stores

REPO = Path(__file__).resolve().parent.parent
V0 = REPO / "tests" / "fixtures" / "stores" / "results_v0.sqlite"  # written by Kakugo 0.1.0
KEY = ("model", "revision", "benchmark", "language", "n_shot", "prompt_hash", "metric", "engine")


def _bench(model: Path, languages: str, db: Path, preds: Path | None = None) -> None:
    args = ["bench", "-m", str(model), "-b", "sib200", "-l", languages, "--limit", "6",
            "--n-shot", "0", "--db", str(db), "--no-progress"]
    if preds:
        args += ["--predictions-dir", str(preds)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output


def _rows(db: Path) -> dict[tuple, tuple]:
    with ResultsStore(db, readonly=True) as store:
        return {tuple(getattr(r, k) for k in KEY): (r.value, r.stderr, r.n)
                for r in store.rows()}


def _kakugo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kakugo_core", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})


def _files(folder: Path) -> list[str]:
    """The folder's files, less SQLite's -wal/-shm beside a WAL database that was read."""
    return sorted(n for n in os.listdir(folder) if not n.endswith(("-wal", "-shm")))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def machines(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two stores from two 'machines' with one cell in common, scored by real bench runs."""
    folder = tmp_path_factory.mktemp("machines")
    one, two = folder / "one.sqlite", folder / "two.sqlite"
    _bench(tiny_model, "jav_Latn,sun_Latn", one)
    _bench(tiny_model, "sun_Latn,yor_Latn", two)
    return {"one": one, "two": two, "model": tiny_model}


@pytest.mark.slow
def test_merging_real_stores_keeps_every_result_once(machines, tmp_path):
    out = tmp_path / "merged.sqlite"
    old = tmp_path / "old.sqlite"
    shutil.copy(V0, old)
    sources = [machines["one"], machines["two"], old]
    before = {p: _digest(p) for p in sources}
    proc = _kakugo("store", "merge", str(out), *map(str, sources))
    assert proc.returncode == 0, proc.stderr
    assert "10 row(s) added, 2 duplicate(s) skipped" in proc.stdout  # sun_Latn twice
    expected = {**_rows(machines["one"]), **_rows(machines["two"]), **_rows(old)}
    assert _rows(out) == expected and len(expected) == 10
    assert {p: _digest(p) for p in sources} == before  # sources are only read (v0 too)
    assert _files(tmp_path) == ["merged.sqlite", "old.sqlite"]  # no temp left
    conn = sqlite3.connect(out)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()

    again = _kakugo("store", "merge", str(out), *map(str, sources))  # idempotent
    assert again.returncode == 0 and "0 row(s) added, 12 duplicate(s)" in again.stdout
    assert _rows(out) == expected

    # the merged store serves bench: nothing of the merged cells is scored again
    preds = tmp_path / "preds"
    _bench(machines["model"], "jav_Latn,sun_Latn,yor_Latn", out, preds)
    assert not list(preds.rglob("*.jsonl"))


@pytest.mark.slow
def test_merging_into_an_unversioned_store_migrates_it(machines, tmp_path):
    out = tmp_path / "old.sqlite"
    shutil.copy(V0, out)
    expected = {**_rows(out), **_rows(machines["one"])}
    report = merge_stores(out, [machines["one"]])
    assert report.added == 4 and not report.created
    assert _rows(out) == expected
    with ResultsStore(out, readonly=True) as store:
        assert store.schema_version == 1


def _conflicting_copy(src: Path, dst: Path, language: str, value: float, created: str) -> Path:
    shutil.copy(src, dst)
    conn = sqlite3.connect(dst)
    changed = conn.execute("UPDATE results SET value=?, created=? WHERE language=? AND "
                           "metric='acc'", (value, created, language)).rowcount
    conn.commit()
    conn.close()
    assert changed == 1
    return dst


@pytest.mark.slow
def test_conflicts_are_listed_and_refused_leaving_out_unchanged(machines, tmp_path):
    other = _conflicting_copy(machines["one"], tmp_path / "other.sqlite", "jav_Latn", 0.875,
                              "2030-01-01T00:00:00+00:00")
    out = tmp_path / "out.sqlite"
    proc = _kakugo("store", "merge", str(out), str(machines["one"]), str(other))
    assert proc.returncode == 2 and not out.exists()
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in proc.stderr
    assert lines[0].startswith("kakugo: conflict:") and "jav_Latn" in lines[0]
    assert "acc" in lines[0] and "0.875" in lines[0] and "one.sqlite" in lines[0]
    assert lines[1].startswith("kakugo: error: 1 conflicting cell(s)")
    assert "--on-conflict" in lines[1]
    assert _files(tmp_path) == ["other.sqlite"]

    # an existing OUT stays byte-identical, even an unversioned one that a write would migrate
    shutil.copy(V0, out)
    before = _digest(out)
    proc = _kakugo("store", "merge", str(out), str(machines["one"]), str(other))
    assert proc.returncode == 2 and _digest(out) == before
    with pytest.raises(MergeConflictError) as info:
        merge_stores(out, [other, machines["one"]])
    assert len(info.value.report.conflicts) == 1 and _digest(out) == before


@pytest.mark.slow
@pytest.mark.parametrize(("policy", "winner"), [("newest", "other"), ("first", "one"),
                                                 ("last", "other")])
def test_a_chosen_policy_resolves_whole_cells(machines, tmp_path, policy, winner):
    other = _conflicting_copy(machines["one"], tmp_path / "other.sqlite", "jav_Latn", 0.875,
                              "2030-01-01T00:00:00+00:00")
    out = tmp_path / "out.sqlite"
    proc = _kakugo("store", "merge", str(out), str(machines["one"]), str(other),
                   "--on-conflict", policy)
    assert proc.returncode == 0, proc.stderr
    assert "1 conflicting cell(s) resolved" in proc.stdout
    assert "kakugo: resolved conflict:" in proc.stderr
    chosen = machines["one"] if winner == "one" else other
    assert _rows(out) == _rows(chosen)  # every metric of the cell from the same evaluation


def test_hand_made_stores_dedup_by_engine_and_refuse_bad_sources(tmp_path):
    a, b = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    with ResultsStore(a) as store:
        store.put("m", "r1", "sib200", "jav_Latn", 3, "p", [("acc", 0.5, 0.1, 10)])
    with ResultsStore(b) as store:
        store.put("m", "r1", "sib200", "jav_Latn", 3, "p", [("acc", 0.7, 0.1, 10)],
                  engine=ENGINE_VERSION + 1)  # another engine: another result, no conflict
        store.put("m", "r1", "sib200", "jav_Latn", 3, "p", [("acc", 0.5, 0.2, 10)],
                  engine=ENGINE_VERSION)  # same value, other stderr: a conflict
    out = tmp_path / "out.sqlite"
    with pytest.raises(MergeConflictError) as info:
        merge_stores(out, [a, b])
    assert [c.metrics for c in info.value.report.conflicts] == [["acc"]]
    assert "se 0.2" in info.value.report.conflicts[0].describe()
    assert not out.exists()

    foreign = tmp_path / "foreign.sqlite"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE notes (x)")
    conn.commit()
    conn.close()
    for bad, words in ((foreign, "not a Kakugo results database"),
                       (tmp_path / "missing.sqlite", "no results database")):
        proc = _kakugo("store", "merge", str(out), str(a), str(bad))
        assert proc.returncode == 2 and words in proc.stderr, proc.stderr
        assert proc.stderr.count("\n") == 1 and not out.exists()
    with pytest.raises(KakugoError, match="OUT itself"):
        merge_stores(a, [a])
    with pytest.raises(KakugoError, match="unknown conflict policy"):
        merge_stores(out, [a], "mine")


def test_merging_into_a_store_being_written_keeps_both(tmp_path):
    """A merge is one transaction beside other writers, not a file swap under them."""
    out, src = tmp_path / "out.sqlite", tmp_path / "src.sqlite"
    with ResultsStore(src) as store:
        store.put("merged", "", "sib200", "jav_Latn", 0, "p", [("acc", 0.5, 0.1, 4)])
    writer = ResultsStore(out)
    writer.put("before", "", "sib200", "jav_Latn", 0, "p", [("acc", 0.1, 0.1, 4)])
    merge_stores(out, [src])
    writer.put("after", "", "sib200", "jav_Latn", 0, "p", [("acc", 0.2, 0.1, 4)])
    writer.close()
    with ResultsStore(out, readonly=True) as store:
        assert store.models() == ["after", "before", "merged"]


def test_tolerance_merges_last_digit_differences_and_still_refuses_real_ones(tmp_path):
    """The same evaluation on a CPU and a GPU: log-likelihood-based numbers differ in their last
    digits. Exact comparison calls that a conflict; --tolerance 1e-6 merges it, keeping the first
    input's numbers, while a real difference or another n still conflicts."""
    cpu, gpu = tmp_path / "cpu.sqlite", tmp_path / "gpu.sqlite"
    with ResultsStore(cpu) as store:
        store.put("m", "r1", "ll", "jav_Latn", 0, "p", [("perplexity", 12.34567891, 0.4123456, 40),
                                                        ("acc", 0.5, 0.08, 40)])
        store.put("m", "r1", "sib200", "sun_Latn", 0, "p", [("acc", 0.5, 0.08, 40)])
    with ResultsStore(gpu) as store:
        store.put("m", "r1", "ll", "jav_Latn", 0, "p", [("perplexity", 12.34567902, 0.4123457, 40),
                                                        ("acc", 0.5, 0.08, 40)])
    out = tmp_path / "out.sqlite"
    with pytest.raises(MergeConflictError):
        merge_stores(out, [cpu, gpu])
    proc = _kakugo("store", "merge", str(out), str(cpu), str(gpu), "--tolerance", "1e-6")
    assert proc.returncode == 0, proc.stderr
    assert "1 equal within --tolerance 1e-06" in proc.stdout and "conflict" not in proc.stderr
    assert _rows(out)[("m", "r1", "ll", "jav_Latn", 0, "p", "perplexity", ENGINE_VERSION)] == (
        12.34567891, 0.4123456, 40)  # the first input's
    assert len(_rows(out)) == 3

    with ResultsStore(gpu) as store:  # another n, or a real difference: still conflicts
        store.put("m", "r1", "sib200", "sun_Latn", 0, "p", [("acc", 0.5, 0.08, 41)])
        store.put("m", "r1", "ll", "yor_Latn", 0, "p", [("acc", 0.7, 0.08, 40)])
    with ResultsStore(cpu) as store:
        store.put("m", "r1", "ll", "yor_Latn", 0, "p", [("acc", 0.5, 0.08, 40)])
    with pytest.raises(MergeConflictError) as info:
        merge_stores(tmp_path / "out2.sqlite", [cpu, gpu], tolerance=1e-3)
    assert sorted(c.cell[3] for c in info.value.report.conflicts) == ["sun_Latn", "yor_Latn"]
    proc = _kakugo("store", "merge", str(out), str(cpu), "--tolerance", "2")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "--tolerance must be at least 0 and below 1" in proc.stderr
