"""generate → dataset through the real ``openai`` teacher client and the real OpenAI-compatible
server on 127.0.0.1, with HTTP faults and broken teacher answers on the way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_generate_support import ScriptedTeacher, reference_run, small_overrides

from kakugo_core.config import load_config
from kakugo_core.generation import read_rows, run_generation
from kakugo_core.teacher_server import Fault, FaultPlan, OpenAICompatServer


def _ids(work: Path, output: str) -> list[str]:
    return [row["id"] for row in read_rows(work, output)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, sib200_dir: Path) -> dict:
    return reference_run(tmp_path_factory.mktemp("reference"), sib200_dir)


def test_every_stage_writes_rows_and_counts_every_broken_answer(reference: dict) -> None:
    summary, script = reference["summary"], reference["script"]
    assert summary.complete and summary.language == "jav_Latn"
    assert summary.teacher == "openai" and summary.teacher_model == "scripted-teacher"
    rows = summary.rows
    for key in ("prompts:topic", "prompts:scenario", "prompts:context", "prompts:improved",
                "responses:topic", "responses:scenario", "responses:context",
                "translations:translate"):
        assert rows.get(key, 0) > 0, key
    # every answer the script broke is one reject, and nothing else is rejected
    broken = sum(script.broken.values())
    assert broken > 0
    assert sum(summary.rejects.values()) == broken
    assert summary.rejects["translate:turn_count"] == 1
    # one call per request the script answered; each prompt answered exactly once
    assert summary.usage["calls"] == reference["requests"] == sum(script.kinds.values())
    assert script.kinds["response"] == rows["responses:topic"] + rows["responses:scenario"] + \
        rows["responses:context"]
    prompts = read_rows(reference["base"] / "work", "prompts")
    answered = {r["prompt_id"] for r in read_rows(reference["base"] / "work", "responses")}
    improved = {r["original_id"] for r in prompts if r["prompt_type"] == "improved"}
    failed_improve = {r["id"].split(":", 1)[1]
                      for r in read_rows(reference["base"] / "work", "rejects")
                      if r["stage"] == "improve"}
    for row in prompts:
        if row["prompt_type"] == "improved":
            assert row["id"] in answered
        else:
            assert (row["id"] in answered) == (row["id"] not in improved), row["id"]
    assert failed_improve and not failed_improve & improved
    # translations: 10 of 14 source rows are eligible; 8 sampled, one broken by the script
    assert rows["translations:translate"] == 7
    summary_file = json.loads((reference["base"] / "work" / "summary.json").read_text())
    assert summary_file["rows"] == rows and summary_file["rejects"] == summary.rejects


def test_context_prompts_carry_the_corpus_text_and_rotate_tasks(reference: dict) -> None:
    rows = [r for r in read_rows(reference["base"] / "work", "prompts")
            if r["method"] == "context" and r["prompt_type"] == "original"]
    lines = Path(reference["corpus"]).read_text().splitlines()
    corpus = [json.loads(line)["text"] for line in lines]
    for row in rows:
        index = int(row["id"].split(":")[1])
        assert corpus[index].startswith(row["context"])  # cut to 40 tokens, never rewritten
        assert len(row["context"]) < len(corpus[index]) or len(corpus[index]) < 200
    tasks = {int(r["id"].split(":")[1]): r["task"] for r in rows}
    order = ["translate", "summarise", "improve", "classify", "answer", "answer", "answer",
             "answer"]
    assert all(task == order[i % 8] for i, task in tasks.items())
    contexts = {r["id"]: r["context"] for r in read_rows(reference["base"] / "work", "prompts")
                if r["method"] == "context"}
    responses = [r for r in read_rows(reference["base"] / "work", "responses")
                 if r["method"] == "context"]
    assert responses
    for response in responses:
        assert response["user"].startswith(contexts[response["prompt_id"]] + "\n\n")


def test_answers_cut_off_at_max_tokens_are_rejected(reference: dict, tmp_path: Path) -> None:
    script = ScriptedTeacher(truncate_every=3)
    with OpenAICompatServer(script) as server:
        config = load_config(None, small_overrides(server.base_url, reference["corpus"]))
        summary = run_generation("jav", config, tmp_path / "work", progress=False)
    truncated = script.broken["response"]
    assert truncated > 0 and summary.rejects["responses:truncated"] == truncated
    answered = sum(v for k, v in reference["summary"].rows.items() if k.startswith("responses:"))
    kept = sum(v for k, v in summary.rows.items() if k.startswith("responses:"))
    assert kept == answered - truncated
    responses = read_rows(tmp_path / "work", "responses")
    assert responses and not any("kepot" in r["response"] for r in responses)
    # the cache keeps the finish reason, so a resumed run rejects the same answers again
    cached = [json.loads(line) for path in (tmp_path / "work").rglob("*.jsonl")
              if "cache" in str(path) for line in path.read_text().splitlines()]
    assert sum(1 for c in cached if c.get("finish_reason") == "length") == truncated


def test_http_faults_are_retried_and_lose_nothing(reference: dict, tmp_path: Path) -> None:
    faults = [
        Fault(status=500, message="upstream exploded"),
        Fault(status=429, retry_after=0.2),
        Fault(delay=3.0),  # longer than teacher.timeout_s
        Fault(malformed=True),
        Fault(status=503),
        Fault(drop=True),
    ]
    plan = FaultPlan(ScriptedTeacher(), faults)
    with OpenAICompatServer(plan) as server:
        config = load_config(None, small_overrides(server.base_url, reference["corpus"]))
        summary = run_generation("jav", config, tmp_path / "work", progress=False)
        requests = len(server.requests)
    assert len(plan.used) == len(faults)
    assert summary.complete
    assert requests == reference["requests"] + len(faults)  # each fault cost one retry
    assert summary.usage["calls"] == reference["requests"]
    assert summary.rows == reference["summary"].rows
    assert summary.rejects == reference["summary"].rejects
    for output, ids in reference["ids"].items():  # the same rows, rejects included
        assert sorted(_ids(tmp_path / "work", output)) == sorted(ids)


def test_a_rerun_makes_no_call_and_writes_no_row(reference: dict, tmp_path: Path) -> None:
    import shutil

    work = tmp_path / "work"
    shutil.copytree(reference["base"] / "work", work)
    before = {o: (work / f"{o}.jsonl").read_bytes() for o in ("prompts", "responses", "rejects")}
    with OpenAICompatServer(ScriptedTeacher()) as server:
        config = load_config(None, small_overrides(server.base_url, reference["corpus"]))
        summary = run_generation("Javanese", config, work, progress=False)
        assert server.requests == []
    assert summary.this_run["calls"] == 0
    assert summary.rows == reference["summary"].rows
    assert summary.usage["calls"] == reference["summary"].usage["calls"]
    for output, data in before.items():
        assert (work / f"{output}.jsonl").read_bytes() == data


def test_teacher_sampling_settings_reach_every_request(reference: dict, tmp_path: Path) -> None:
    with OpenAICompatServer(ScriptedTeacher()) as server:
        config = load_config(None, small_overrides(
            server.base_url, reference["corpus"], "teacher.temperature=0.3", "teacher.top_p=0.9",
        ))
        run_generation("Javanese", config, tmp_path / "work", generators=["scenario"],
                       progress=False)
        bodies = list(server.requests)
    assert bodies
    assert {(b["temperature"], b["top_p"]) for b in bodies} == {(0.3, 0.9)}


def test_progress_shows_each_stage_with_its_calls(
    reference: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with OpenAICompatServer(ScriptedTeacher()) as server:
        config = load_config(None, small_overrides(server.base_url, reference["corpus"]))
        summary = run_generation("Javanese", config, tmp_path / "work",
                                 generators=["scenario", "improve"], progress=True)
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    calls = summary.usage["calls"]
    assert f"{calls} calls" in lines["improve"]  # run totals so far on the last bar
    scenario_calls = calls - int(lines["improve"].split("/")[1].split()[0])
    assert f"{scenario_calls}/{scenario_calls}" in lines["scenario"]
    assert f"{summary.rows['prompts:scenario']} rows" in lines["scenario"]
