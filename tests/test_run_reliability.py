"""Issue 15's list, one test per item outside the results store: finished work is not lost,
a moved run folder stays up to date, secrets never reach stderr or files, retries and every
training attempt are accounted for, and benchmark data quirks are read right or refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kakugo_core.config import load_config
from kakugo_core.pipeline import RunFolder
from kakugo_core.plugins import Registration, get_host
from kakugo_core.run import RunOptions, run_language

SIB200 = Path(__file__).resolve().parent.parent / "kakugo_core" / "data" / "sib200"
SECRET = "sk-reliability-SECRET-93e1c0ffee"


class RecordingStudent:
    """A student plugin that writes a one-file "model" and records what it saw; ``interrupt``
    makes it stop half-way as a kill would."""

    calls: list[dict[str, Any]] = []
    interrupt = False
    version = "v1"

    def __init__(self, **_defaults: Any) -> None:
        pass

    def train(self, base_model: str, dataset_dir: Path, out_dir: Path,
              options: Any) -> Path:
        finished = Path(out_dir).parent / "model" / "weights.txt"
        RecordingStudent.calls.append({
            "out_dir": Path(out_dir),
            "finished_model": finished.read_text() if finished.exists() else None,
        })
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "weights.txt").write_text("half")
        if RecordingStudent.interrupt:
            raise KeyboardInterrupt
        (Path(out_dir) / "weights.txt").write_text(RecordingStudent.version)
        (Path(out_dir) / "training_summary.json").write_text(json.dumps(
            {"train_seconds": 1800.0, "train_seconds_all_attempts": 5400.0}))
        return Path(out_dir)


@pytest.fixture
def recording_run(monkeypatch: pytest.MonkeyPatch):
    """``run_language`` for the train stage with the recording student, the dataset stage
    taken as done (the train stage is what is under test)."""
    RecordingStudent.calls, RecordingStudent.interrupt = [], False
    get_host().registry("students").add(
        Registration("students", "recording", RecordingStudent, (), "tests", "tests"))
    real = RunFolder.is_current
    monkeypatch.setattr(RunFolder, "is_current", lambda self, stage, inputs:
                        True if stage == "dataset" else real(self, stage, inputs))
    lines: list[str] = []

    def run(run_dir: Path, *sets: str, force: tuple[str, ...] = ()) -> dict[str, Any]:
        config = load_config(overrides=["train.student=recording", "judge.in_run=false",
                                        *sets])
        return run_language("jav_Latn", config, RunOptions(
            run_dir=run_dir, stages=("train",), force=force, progress=False,
            gpu_price_per_hour=2.0, echo=lines.append))

    run.lines = lines  # type: ignore[attr-defined]
    return run


def test_force_train_keeps_the_finished_model_until_the_new_one_is_complete(
        tmp_path: Path, recording_run) -> None:
    run_dir = tmp_path / "run"
    recording_run(run_dir)
    model = run_dir / "train" / "model"
    assert (model / "weights.txt").read_text() == "v1"

    RecordingStudent.interrupt, RecordingStudent.version = True, "v2"
    with pytest.raises(KeyboardInterrupt):  # killed during the retrain
        recording_run(run_dir, force=("train",))
    assert RecordingStudent.calls[-1]["finished_model"] == "v1"  # there while retraining
    assert (model / "weights.txt").read_text() == "v1"  # and still there after the kill

    RecordingStudent.interrupt = False
    recording_run(run_dir, force=("train",))
    assert (model / "weights.txt").read_text() == "v2"
    assert sorted(p.name for p in (run_dir / "train").iterdir()) == ["manifest.json", "model"]


def test_a_moved_run_folder_is_still_up_to_date(tmp_path: Path, recording_run) -> None:
    first = tmp_path / "first" / "run"
    base = first / "inputs" / "base-model"  # as the demo keeps its base model in the run
    recording_run(first, f"train.base_model='{base}'")
    assert len(RecordingStudent.calls) == 1
    moved = tmp_path / "elsewhere" / "run"
    moved.parent.mkdir()
    first.rename(moved)
    recording_run(moved, f"train.base_model='{moved / 'inputs' / 'base-model'}'")
    assert len(RecordingStudent.calls) == 1, "the moved run trained again"
    assert "train: up to date, skipped" in " ".join(recording_run.lines)
    stored = json.loads((moved / "train" / "manifest.json").read_text())
    assert stored["config"]["train"]["base_model"] == "{run}/inputs/base-model"


def test_training_is_costed_over_every_attempt(tmp_path: Path, recording_run) -> None:
    run_dir = tmp_path / "run"
    recording_run(run_dir)
    cost = json.loads((run_dir / "cost.json").read_text())
    assert cost["train_seconds"] == 5400.0  # not the last attempt's 1800
    assert cost["train_cost_usd"] == pytest.approx(3.0)  # 1.5 h at $2/h


def test_attempt_clock_sums_a_killed_attempt_and_the_resumed_one(tmp_path: Path) -> None:
    from plugins.students._sft import _AttemptClock

    path = tmp_path / "attempt_seconds.json"
    killed = _AttemptClock(path, started=1000.0)
    killed.tick(force=True)  # as the callback does while the killed attempt ran
    first = json.loads(path.read_text())
    assert len(first) == 1 and list(first.values())[0] > 0
    resumed = _AttemptClock(path, started=2000.0)
    resumed.tick(force=True)
    assert len(json.loads(path.read_text())) == 2
    assert resumed.total() == pytest.approx(sum(json.loads(path.read_text()).values()))
    assert resumed.total() > list(first.values())[0]


# -- secrets ----------------------------------------------------------------------------------
@pytest.fixture
def echoing_401():
    """A teacher endpoint that refuses with 401 and echoes the Authorization header it got."""
    from kakugo_core.teacher_server import Fault, OpenAICompatServer

    def responder(body: dict) -> Fault:
        return Fault(status=401, message=f"bad credentials; got Authorization: Bearer {SECRET} "
                                         f"(key {SECRET})")

    with OpenAICompatServer(responder) as server:
        yield server.base_url


def _kakugo(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kakugo_core", *args], capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, **env}, timeout=600)


def test_a_401_echoing_the_key_leaks_it_nowhere(tmp_path: Path, echoing_401: str) -> None:
    # the variable's name does not look secret: the teacher registers the key it sends
    env = {"TEACHER_CREDENTIAL_VAR_X": "", "MY_TEACHER_VAR": SECRET,
           "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    sets = ["--set", f"teacher.base_url={echoing_401}", "--set",
            "teacher.api_key_env=MY_TEACHER_VAR", "--set", "teacher.max_retries=0"]
    done = _kakugo("run", "jav", "--stages", "generate", "--run-dir", "r", "--no-progress",
                   *sets, cwd=tmp_path, env=env)
    assert done.returncode == 2 and "HTTP 401" in done.stderr
    status = _kakugo("status", "r", "--json", cwd=tmp_path, env=env)
    assert status.returncode == 0 and "HTTP 401" in status.stdout
    teacher = _kakugo("teacher", *sets, cwd=tmp_path, env=env)
    assert teacher.returncode == 2 and "HTTP 401" in teacher.stderr
    for text in (done.stderr, done.stdout, status.stdout, teacher.stderr, teacher.stdout):
        assert SECRET not in text
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "summary.json" for p in written)
    assert any(p.name == "manifest.json" for p in written)
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), f"the key is in {path}"


def test_redact_masks_registered_and_environment_secrets(monkeypatch) -> None:
    from kakugo_core.secrets import redact, register_secret

    monkeypatch.setenv("SOME_API_KEY", "abcdef123456")
    register_secret("zzz-registered-zzz")
    text = "k=abcdef123456 r=zzz-registered-zzz h=Authorization: Bearer tok.en-123 done"
    assert redact(text) == "k=*** r=*** h=Authorization: Bearer *** done"


# -- teacher retries and failures are accounted -----------------------------------------------
def test_teacher_retries_and_failures_are_counted_in_the_summary(tmp_path: Path) -> None:
    from kakugo_core.generation import run_generation
    from kakugo_core.teacher_server import Fault, FaultPlan, OpenAICompatServer, echo_responder

    plan = FaultPlan(echo_responder, [Fault(status=500), Fault(status=503)])
    with OpenAICompatServer(plan) as server:
        config = load_config(overrides=[
            f"teacher.base_url={server.base_url}", "teacher.retry_base_s=0.01",
            "teacher.http_client=httpx", "generate.topic.general_seeds=1",
            "generate.topic.language_seeds=0"])
        run_generation("jav_Latn", config, tmp_path / "gen", generators=["topic"],
                       progress=False)
    summary = json.loads((tmp_path / "gen" / "summary.json").read_text())
    assert summary["usage"]["retries"] == 2 and summary["usage"]["failures"] == 0
    # resumed: answers come from the cache, the retries stay counted once
    with OpenAICompatServer(echo_responder) as server:
        config = load_config(overrides=[f"teacher.base_url={server.base_url}",
                                        "teacher.http_client=httpx",
                                        "generate.topic.general_seeds=1",
                                        "generate.topic.language_seeds=0"])
        run_generation("jav_Latn", config, tmp_path / "gen", generators=["topic"],
                       progress=False)
    again = json.loads((tmp_path / "gen" / "summary.json").read_text())
    assert again["usage"]["retries"] == 2


# -- benchmark data ----------------------------------------------------------------------------
def test_a_tsv_with_a_byte_order_mark_reads_like_one_without(tmp_path: Path) -> None:
    from kakugo_core.toolkit.data import read_rows

    plain = SIB200 / "jav_Latn" / "test.tsv"
    bom = tmp_path / "test.tsv"
    bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    columns = ("index_id", "category", "text")
    assert read_rows(bom, columns) == read_rows(plain, columns)
