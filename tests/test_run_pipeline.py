"""Stage bookkeeping: manifests, skipping, re-running on changed inputs, failures, CLI errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kakugo_core.pipeline import Manifest, RunFolder, StageOutcome, fingerprint


def test_done_stage_with_same_inputs_is_skipped(tmp_path: Path) -> None:
    folder, calls = RunFolder(tmp_path), []

    def stage(stage_dir: Path) -> StageOutcome:
        calls.append(stage_dir)
        (stage_dir / "out.txt").write_text("x")
        return StageOutcome(counts={"rows": 3}, cost_usd=0.25)

    manifest, ran = folder.run_stage("generate", "h1", stage, {"a": 1}, {"kakugo": "0.1"})
    assert ran and manifest.status == "done" and manifest.counts == {"rows": 3}
    assert manifest.attempts == 1 and manifest.cost_usd == 0.25
    again, ran = folder.run_stage("generate", "h1", stage, {"a": 1}, {})
    assert not ran and again == manifest and len(calls) == 1
    changed, ran = folder.run_stage("generate", "h2", stage, {"a": 2}, {})
    assert ran and changed.attempts == 2 and len(calls) == 2
    _, ran = folder.run_stage("generate", "h2", stage, {"a": 2}, {}, force=True)
    assert ran and len(calls) == 3


def test_failure_is_recorded_and_the_stage_runs_again(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)

    def broken(stage_dir: Path) -> StageOutcome:
        raise ValueError("teacher said no")

    with pytest.raises(ValueError):
        folder.run_stage("train", "h", broken, {}, {})
    failed = folder.manifest("train")
    assert failed.status == "failed" and failed.error == "ValueError: teacher said no"
    assert not folder.is_current("train", "h")
    manifest, ran = folder.run_stage("train", "h", lambda d: StageOutcome(), {}, {})
    assert ran and manifest.status == "done" and manifest.attempts == 2


def test_unreadable_manifest_counts_as_not_done(tmp_path: Path) -> None:
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "manifest.json").write_text("{half a manif")
    assert Manifest.load(tmp_path / "bench").status == "failed"
    assert not RunFolder(tmp_path).is_current("bench", "")


def test_fingerprint_is_stable_and_sensitive() -> None:
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kakugo_core", *args], capture_output=True,
                          text=True, cwd=cwd)


@pytest.mark.parametrize(("args", "message"), [
    ([], "name a language"),
    (["Klingon"], "unknown language 'Klingon'"),
    (["jv", "--stages", "generate,tran"], "unknown stage 'tran'"),
    (["jv", "--set", "train.epoch=2"], "unknown key 'train.epoch'"),
    (["jv", "--stages", "bench"], "stage 'bench' needs an up-to-date 'train' stage"),
])
def test_run_bad_input_is_one_line_and_writes_nothing_finished(tmp_path: Path, args, message):
    result = _run("run", *args, "--no-progress", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("kakugo: error:")]
    assert len(errors) == 1 and message in errors[0]
    assert "Traceback" not in result.stderr


def test_status_of_a_missing_run_folder(tmp_path: Path) -> None:
    result = _run("status", str(tmp_path / "nope"), cwd=tmp_path)
    assert result.returncode == 2 and "is not a run folder" in result.stderr


def test_status_lists_every_stage(tmp_path: Path) -> None:
    RunFolder(tmp_path).run_stage("generate", "h", lambda d: StageOutcome({"rows": 5}, 0.5),
                                  {}, {})
    result = _run("status", str(tmp_path), "--json", cwd=tmp_path)
    stages = json.loads(result.stdout)
    assert [m["stage"] for m in stages] == ["generate", "dataset", "train", "bench", "release"]
    assert [m["status"] for m in stages] == ["done"] + ["pending"] * 4
    assert stages[0]["counts"] == {"rows": 5}


SLURM = Path(__file__).resolve().parent.parent / "scripts" / "fanout" / "slurm_array.sh"


def _slurm(index: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {"PATH": "/usr/bin:/bin", "KAKUGO": "echo", "SLURM_ARRAY_TASK_ID": index,
               "LANGUAGES": "jav_Latn sun_Latn yor_Latn", **env}
    return subprocess.run(["bash", str(SLURM)], capture_output=True, text=True, env=environ)


def test_slurm_array_runs_one_language_per_task() -> None:
    result = _slurm("1", TEACHER_URL="http://gpu:8000/v1", RUNS_DIR="/shared/runs")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["run", "sun_Latn", "--run-dir", "/shared/runs/sun_Latn",
                                     "--set", "teacher.base_url='http://gpu:8000/v1'"]
    past = _slurm("3")
    assert past.returncode == 2 and "past the 3 languages" in past.stderr


def test_a_skipped_stage_claims_no_duration() -> None:
    from kakugo_core.run import stage_message

    earlier = Manifest(stage="train", status="done", seconds=6057.9)
    assert stage_message(earlier, ran=False) == "train: up to date, skipped"
    assert stage_message(earlier, ran=True) == "train: done (6057.9s)"


def _status(run_dir: Path, columns: int = 120) -> str:
    import os

    env = {**os.environ, "COLUMNS": str(columns), "KAKUGO_LOAD_PLUGINS": ""}
    done = subprocess.run([sys.executable, "-m", "kakugo_core", "status", str(run_dir)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_status_never_sums_unrelated_numbers_and_shows_the_training_step(
    tmp_path: Path,
) -> None:
    from datetime import datetime, timedelta, timezone

    Manifest(stage="generate", status="done", seconds=420.0, counts={
        "rows": 1200, "usage": {"calls": 1500, "prompt_tokens": 300000,
                                "completion_tokens": 58000, "cost": 0.077}}).save(
        tmp_path / "generate")
    started = (datetime.now(timezone.utc) - timedelta(minutes=5)).isoformat(timespec="seconds")
    Manifest(stage="train", status="running", started=started, attempts=1).save(
        tmp_path / "train")
    work = tmp_path / "train" / ".model.partial" / "sft"
    work.mkdir(parents=True)
    (work / "progress.json").write_text(json.dumps({
        "title": "fine-tuning (full)", "step": 40, "max_steps": 200, "loss": 2.31,
        "tokens_per_second": 1234.0, "eta_seconds": 192.0}))
    out = _status(tmp_path, columns=300)  # wide: every count on one line
    assert "359500" not in out and "359501" not in out  # calls + tokens + dollars
    assert "calls 1500" in out and "prompt_tokens 300000" in out and "cost 0.077" in out
    assert "step 40/200" in out and "loss 2.3100" in out and "ETA 3m12s" in out
    assert "0.0 s" not in out  # not "running, 0.0 s"
    assert "5.0 min" in out
    narrow = _status(tmp_path, columns=80)
    assert max(len(line) for line in narrow.splitlines()) <= 80
