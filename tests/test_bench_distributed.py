"""``kakugo bench --executor ray|slurm``: the cells of 2 tiny models x 3 SIB-200 languages as
tasks on a real local Ray cluster (one worker killed mid-task, then a rerun) and on a Slurm array
(through a stand-in sbatch that runs the array tasks here, one lost); every result equals a
single-process run, item by item."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kakugo_core.distributed import merge_rows, plan_tasks, sbatch_script
from kakugo_core.scoring import model_slug, run_bench
from kakugo_core.store import ResultsStore

REPO = Path(__file__).resolve().parent.parent
LANGUAGES = ["jav_Latn", "sun_Latn", "yor_Latn"]
LIMIT = 40


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    from kakugo_core.testing import build_tiny_model, read_sib200_texts

    texts = read_sib200_texts(REPO / "kakugo_core" / "data" / "sib200", ["eng_Latn", "jav_Latn"])
    root = tmp_path_factory.mktemp("models")
    return [str(build_tiny_model(root / f"m{seed}", texts, seed=seed)) for seed in (0, 1)]


@pytest.fixture(scope="module")
def reference(models: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same cells scored by one process (run_bench), with per-item predictions."""
    root = tmp_path_factory.mktemp("single")
    with ResultsStore(root / "results.sqlite") as store:
        run_bench(models, ["sib200"], LANGUAGES, store=store, n_shot=1, limit=LIMIT,
                  predictions_dir=root / "preds", progress=False)
    return root


def _rows(db: Path) -> dict[tuple, tuple]:
    with ResultsStore(db) as store:
        return {(r.model, r.revision, r.benchmark, r.language, r.n_shot, r.prompt_hash, r.metric):
                (r.value, r.stderr, r.n) for r in store.rows()}


def _cells(db: Path) -> set[tuple[str, str]]:
    return {(k[0], k[3]) for k in _rows(db)} if db.exists() else set()


def assert_same_as_reference(root: Path, reference: Path, models: list[str]) -> None:
    assert _rows(root / "results.sqlite") == _rows(reference / "results.sqlite")
    for model in models:
        for lang in LANGUAGES:
            rel = Path(model_slug(model)) / "sib200" / f"{lang}.jsonl"
            got = [json.loads(x) for x in (root / "preds" / rel).read_text("utf-8").splitlines()]
            want = [json.loads(x) for x in (reference / "preds" / rel).read_text("utf-8")
                    .splitlines()]
            assert [g["pred"] for g in got] == [w["pred"] for w in want]
            for g, w in zip(got, want, strict=True):
                assert g["logprobs"] == pytest.approx(w["logprobs"], abs=1e-3)


def bench_command(models: list[str], root: Path, *extra: str) -> list[str]:
    cmd = [sys.executable, "-m", "kakugo_core", "bench", "-b", "sib200",
           "-l", ",".join(LANGUAGES), "--n-shot", "1", "--limit", str(LIMIT),
           "--db", str(root / "results.sqlite"), "--predictions-dir", str(root / "preds"),
           "--shard-dir", str(root / "shards"), "--no-progress", *extra]
    for model in models:
        cmd += ["-m", model]
    return cmd


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "KAKUGO_LOAD_PLUGINS": "",
            "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", **extra}


def _kill_first_busy_worker(shards: Path, proc: subprocess.Popen, deadline: float) -> dict:
    """SIGKILL the worker of the first task that has finished a cell but not all of them."""
    while time.monotonic() < deadline and proc.poll() is None:
        for progress in sorted(shards.glob("task-*.json")):
            try:
                state = json.loads(progress.read_text("utf-8"))
            except (OSError, ValueError):
                continue
            if state["computed"] and not state["finished"]:
                os.kill(state["pid"], signal.SIGKILL)
                return state
        time.sleep(0.02)
    raise AssertionError("no task was caught mid-way")


def test_plan_and_merge_units(tmp_path: Path) -> None:
    tasks = plan_tasks(["a", "b"], ["x", "y", "z"], 2)
    assert [(t.model, t.languages) for t in tasks] == [
        ("a", ("x", "y")), ("a", ("z",)), ("b", ("x", "y")), ("b", ("z",))]
    script = sbatch_script(tmp_path, [1, 3], 4, {"kakugo_command": "kakugo"})
    assert "#SBATCH --array=1,3" in script
    assert 'kakugo bench --shard "${SLURM_ARRAY_TASK_ID}/4"' in script
    # a row that differs from a stored one is reported, never written over
    with ResultsStore(tmp_path / "a.sqlite") as a, ResultsStore(tmp_path / "b.sqlite") as b:
        a.put("m", "", "sib200", "jav_Latn", 1, "h", [("acc", 0.5, 0.1, 10)])
        b.put("m", "", "sib200", "jav_Latn", 1, "h", [("acc", 0.6, 0.1, 10)])
        b.put("m", "", "sib200", "sun_Latn", 1, "h", [("acc", 0.7, 0.1, 10)])
        report = merge_rows(b.rows(), a, source="b")
        assert report.added == 1 and len(report.conflicts) == 1
        assert {r.language: r.value for r in a.rows()} == {"jav_Latn": 0.5, "sun_Latn": 0.7}
        assert merge_rows(b.rows(), a, source="b").added == 0


@pytest.mark.slow
def test_ray_killed_worker_then_rerun_equals_single_process(
        models: list[str], reference: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    cmd = bench_command(models, tmp_path, "--executor", "ray", "--workers", "2",
                        "--max-retries", "0")
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path)
    try:
        killed = _kill_first_busy_worker(tmp_path / "shards", proc, time.monotonic() + 600)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, err
    assert "still missing" in err and "failed" in err
    first = _cells(tmp_path / "results.sqlite")
    everything = {(m, lang) for m in models for lang in LANGUAGES}
    missing = everything - first
    # the killed task kept the cells it had finished; the other task finished all of its own
    assert 0 < len(missing) < len(LANGUAGES)
    assert {tuple(c)[::2] for c in killed["computed"]} <= first
    assert all(m == killed["computed"][0][0] for m, _ in missing)
    stored_first = _rows(tmp_path / "results.sqlite")

    rerun = subprocess.run(cmd, env=_env(), capture_output=True, text=True, cwd=tmp_path,
                           timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert "1 task(s) with missing cells" in rerun.stderr
    assert f"{len(missing)} cell(s) computed in 1 task(s)" in rerun.stderr
    after = _rows(tmp_path / "results.sqlite")
    assert {k: after[k] for k in stored_first} == stored_first
    assert _cells(tmp_path / "results.sqlite") == everything
    assert not list((tmp_path / "shards").glob("task-*.sqlite"))  # merged, then removed
    assert_same_as_reference(tmp_path, reference, models)


@pytest.mark.slow
def test_slurm_array_lost_task_then_rerun_equals_single_process(
        models: list[str], reference: Path, tmp_path: Path) -> None:
    """One model (the Ray test covers two), two array tasks: languages 1-2 and 3."""
    sbatch = f"{sys.executable} {REPO / 'tests' / 'fixtures' / 'slurm' / 'sbatch'}"
    model = models[:1]
    cmd = bench_command(model, tmp_path, "--executor", "slurm", "--languages-per-task", "2")
    first = subprocess.run(cmd, env=_env(KAKUGO_SBATCH=sbatch, SBATCH_STANDIN_LOSE="1"),
                           capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert first.returncode != 0 and "1 cell(s) still missing" in first.stderr, first.stderr
    script = tmp_path / "shards" / "kakugo-bench.sbatch"
    assert "#SBATCH --array=0,1\n" in script.read_text("utf-8")
    assert _cells(tmp_path / "results.sqlite") == {(model[0], "jav_Latn"), (model[0], "sun_Latn")}

    rerun = subprocess.run(cmd, env=_env(KAKUGO_SBATCH=sbatch), capture_output=True, text=True,
                           cwd=tmp_path, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert "#SBATCH --array=1\n" in script.read_text("utf-8")  # only the lost task again
    assert "1 cell(s) computed in 1 task(s)" in rerun.stderr
    single = _rows(reference / "results.sqlite")
    assert _rows(tmp_path / "results.sqlite") == {k: v for k, v in single.items()
                                                  if k[0] == model[0]}
