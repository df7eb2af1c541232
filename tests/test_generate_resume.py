"""Killing and stopping a generation run: a SIGKILLed ``kakugo generate`` resumes without repeating
a completed teacher call or losing a row, and ``--max-cost`` stops cleanly before spending more."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_generate_support import ScriptedTeacher, reference_run, small_overrides

from kakugo_core.cli import main
from kakugo_core.config import load_config
from kakugo_core.generation import read_rows, run_generation
from kakugo_core.teacher_server import OpenAICompatServer

CONCURRENCY = 4  # small_overrides' teacher.concurrency


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, sib200_dir: Path) -> dict:
    return reference_run(tmp_path_factory.mktemp("reference"), sib200_dir)


def _kakugo(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "KAKUGO_LOAD_PLUGINS": "", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "kakugo_core", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )


def _generate_args(work: Path, overrides: list[str]) -> list[str]:
    args = ["generate", "Javanese", "--teacher", "openai", "--work-dir", str(work), "--no-progress"]
    for item in overrides:
        args += ["--set", item]
    return args


def _cache_contents(work: Path) -> list[str]:
    path = work / "cache" / "teacher-cache.jsonl"
    contents = []
    for line in path.read_bytes().splitlines():
        try:
            contents.append(json.loads(line)["content"])
        except (ValueError, KeyError):
            pass  # a line torn by the kill
    return contents


def _assert_same_rows(work: Path, reference: dict) -> None:
    for output, ids in reference["ids"].items():
        got = [row["id"] for row in read_rows(work, output)]
        assert len(got) == len(set(got)), f"duplicate rows in {output}"
        assert sorted(got) == sorted(ids), output


@pytest.mark.slow
def test_a_killed_run_resumes_without_repeating_a_completed_call(
    reference: dict, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    script = ScriptedTeacher()
    with OpenAICompatServer(script, latency=0.05) as server:
        args = _generate_args(work, small_overrides(server.base_url, reference["corpus"]))
        proc = _kakugo(args)
        half = reference["requests"] // 2
        deadline = time.monotonic() + 120
        while len(server.requests) < half and proc.poll() is None:
            assert time.monotonic() < deadline, "the run never got half-way"
            time.sleep(0.005)
        assert proc.poll() is None, proc.communicate()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(0.3)  # let the handlers of the requests in flight finish
        first = [json.dumps(body["messages"], sort_keys=True) for body in server.requests]
        completed = set(_cache_contents(work))
        assert 0 < len(completed) < reference["requests"]
        assert proc.returncode == -signal.SIGKILL

        resumed = _kakugo(args)
        out, err = resumed.communicate(timeout=300)
        assert resumed.returncode == 0, err.decode()
        second = [json.dumps(body["messages"], sort_keys=True) for body in
                  server.requests[len(first):]]

    # nothing answered and cached before the kill was asked again; only calls in flight were
    answer = ScriptedTeacher()
    repeated = [m for m in second if m in set(first)]
    for messages in repeated:
        assert answer({"messages": json.loads(messages)}).content not in completed
    assert len(repeated) <= CONCURRENCY
    assert len(set(second)) == len(second)
    # and every distinct call was paid for exactly once overall
    assert len(set(first) | set(second)) == reference["requests"]
    assert len(_cache_contents(work)) == reference["requests"]
    _assert_same_rows(work, reference)
    summary = json.loads((work / "summary.json").read_text())
    assert summary["rows"] == reference["summary"].rows
    assert summary["rejects"] == reference["summary"].rejects
    assert "responses:topic" in out.decode()  # the summary table was printed


def test_max_cost_stops_before_spending_more_and_a_rerun_finishes(
    reference: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "work"
    batch = 4
    with OpenAICompatServer(ScriptedTeacher()) as server:
        overrides = small_overrides(
            server.base_url, reference["corpus"],
            "teacher.price_output_per_mtok=10000",  # $0.01 per completion token
            f"generate.batch_size={batch}",
        )
        with pytest.raises(SystemExit) as stop:
            main([*_generate_args(work, overrides), "--max-cost", "1.5"])
        assert stop.value.code == 3
        err = capsys.readouterr().err
        assert "max_cost $1.50 reached" in err and "run again" in err
        ledger = [json.loads(line) for line in (work / "usage.jsonl").read_text().splitlines()]
        assert len(server.requests) == len(ledger)  # every request sent is accounted for
        spent, crossed_at = 0.0, len(ledger)
        for position, row in enumerate(ledger):
            spent += row["cost"]
            if spent >= 1.5:
                crossed_at = position
                break
        # once the limit was crossed only the rest of that batch finished; no batch started
        assert len(ledger) - (crossed_at + 1) < batch
        assert spent >= 1.5
        summary = json.loads((work / "summary.json").read_text())
        assert summary["stopped"].startswith("max_cost") and summary["usage"]["cost"] >= 1.5

        # the limit holds across runs: the same limit again makes no call at all
        before = len(server.requests)
        with pytest.raises(SystemExit):
            main([*_generate_args(work, overrides), "--max-cost", "1.5"])
        assert len(server.requests) == before

        config = load_config(None, overrides)  # max_cost 0: no limit
        final = run_generation("Javanese", config, work, progress=False)
    assert final.complete
    _assert_same_rows(work, reference)
    assert final.usage["calls"] == reference["requests"]


def test_generators_run_in_steps_and_in_the_order_given(reference: dict, tmp_path: Path) -> None:
    work = tmp_path / "work"
    with OpenAICompatServer(ScriptedTeacher()) as server:
        config = load_config(None, small_overrides(server.base_url, reference["corpus"]))
        first = run_generation("Javanese", config, work, generators=["topic"], progress=False)
        assert set(first.rows) == {"prompts:topic"}
        second = run_generation(
            "Javanese", config, work, generators=["improve", "responses"], progress=False
        )
    assert second.rows["prompts:topic"] == reference["summary"].rows["prompts:topic"]
    assert second.rows["responses:topic"] == reference["summary"].rows["responses:topic"]
    assert "prompts:scenario" not in second.rows


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", "Klingonese"], "unknown language 'Klingonese'"),
        (["generate", "jav", "--generators", "topik"], "unknown generator 'topik'"),
        (["generate", "jav", "--set", "generate.topic.bogus=1"], "unknown key"),
        (["generate", "jav", "--generators", "topic",
          "--set", "generate.topic.general_seeds=99"], "only 10 general seeds"),
        (["generate", "jav", "--generators", "context",
          "--set", "generate.context.source=/nonexistent/corpus"], "does not exist"),
        (["dataset", "jav"], "does not exist; run `kakugo generate` first"),
    ],
)
def test_bad_input_is_one_line_and_a_nonzero_exit(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    with OpenAICompatServer(ScriptedTeacher()) as server:
        with pytest.raises(SystemExit) as exit_info:
            main([*args, "--set", f"teacher.base_url={server.base_url}"]
                 if args[0] == "generate" else args)
        assert server.requests == []
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_a_second_run_in_the_same_folder_is_refused(reference: dict, tmp_path: Path) -> None:
    import fcntl

    from kakugo_core.errors import KakugoError

    work = tmp_path / "work"
    work.mkdir()
    with OpenAICompatServer(ScriptedTeacher()) as server:
        config = load_config(None, small_overrides(server.base_url, reference["corpus"]))
        with open(work / ".lock", "a+") as held:  # what a running `kakugo generate` holds
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            with pytest.raises(KakugoError, match="another `kakugo generate` is running"):
                run_generation("Javanese", config, work, generators=["topic"], progress=False)
            assert server.requests == []
            fcntl.flock(held, fcntl.LOCK_UN)
        summary = run_generation("Javanese", config, work, generators=["topic"], progress=False)
    assert summary.rows["prompts:topic"] == reference["summary"].rows["prompts:topic"]


def test_a_teacher_that_gives_up_stops_the_run_and_a_rerun_resumes(
    reference: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kakugo_core.teacher_server import Fault, FaultPlan

    work = tmp_path / "work"
    failing = FaultPlan(
        ScriptedTeacher(), [Fault(status=503)] * 1000,
        when=lambda body: "Rewrite it into a better prompt" in body["messages"][-1]["content"],
    )
    with OpenAICompatServer(failing) as server:
        overrides = small_overrides(server.base_url, reference["corpus"], "teacher.max_retries=1")
        with pytest.raises(SystemExit) as stop:
            main(_generate_args(work, overrides))
    assert stop.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines()
              if line.startswith("kakugo: error:")]  # retries before it are warnings
    assert len(errors) == 1 and "503" in errors[0] and "run again" in errors[0], errors
    summary = json.loads((work / "summary.json").read_text())
    assert summary["stopped"].startswith("error:")
    # the stages before improve are complete and kept
    for key in ("prompts:topic", "prompts:scenario", "prompts:context"):
        assert summary["rows"][key] == reference["summary"].rows[key]
    with OpenAICompatServer(ScriptedTeacher()) as server:
        config = load_config(None, small_overrides(server.base_url, reference["corpus"]))
        final = run_generation("Javanese", config, work, progress=False)
        kinds = {
            "improve" if "Rewrite it into a better prompt" in body["messages"][-1]["content"]
            else "translate" if "Translate the following" in body["messages"][-1]["content"]
            else "responses" if body["messages"][0]["role"] == "system"
            else "earlier stage"
            for body in server.requests
        }
    assert kinds == {"improve", "responses", "translate"}  # finished stages were not re-asked
    assert final.complete
    _assert_same_rows(work, reference)
