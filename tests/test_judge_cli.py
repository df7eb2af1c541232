"""``kakugo judge`` end to end: two tiny models, the judge over real HTTP, rows in the store."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_judge_benchmark import (
    JAVANESE_PROMPTS,
    build_model_pair,
    prefers_model_a,
    write_prompts,
)

from kakugo_core.cli import main
from kakugo_core.store import ResultsStore
from kakugo_core.teacher_server import OpenAICompatServer

pytestmark = pytest.mark.slow


def run_cli(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_kakugo_judge_stores_rates_with_the_opponent(
    tmp_path: Path, tiny_model: Path, sib200_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_judge_benchmark import answers_of

    model_a, model_b = build_model_pair(tiny_model, sib200_dir, tmp_path)
    prompts = write_prompts(tmp_path / "heldout.jsonl")
    db = tmp_path / "results.sqlite"
    answers_a = set(answers_of(model_a, JAVANESE_PROMPTS, 8))
    with OpenAICompatServer(prefers_model_a(answers_a)) as server:
        args = ["judge", "-m", str(model_a), "--opponent", str(model_b), "-p", str(prompts), "-l",
                "Javanese", "--max-new-tokens", "8", "--db", str(db), "--no-progress",
                "--cache-file", str(tmp_path / "verdicts.jsonl"),
                "--predictions", str(tmp_path / "pairs.jsonl"),
                "--set", f"teacher.base_url={server.base_url}", "--set", "teacher.api_key_env=",
                "--set", "teacher.model=judge-under-test", "--set", "teacher.max_retries=0"]
        assert run_cli(args) == 0
        assert len(server.requests) == 2 * len(JAVANESE_PROMPTS)
    out = capsys.readouterr().out
    assert "win_rate 1.000" in out and "unparsed judge answers: 0 of 12" in out
    assert "consistent across both orders on 6 of 6 pairs" in out
    assert "picked the first answer in 6 of 12 decisive verdicts" in out
    with ResultsStore(db) as store:
        rows = {r.metric: r for r in store.rows(benchmarks=["judge"])}
    assert rows["win_rate"].value == 1.0 and rows["win_rate"].n == len(JAVANESE_PROMPTS)
    assert rows["win_rate"].versions["opponent"] == str(model_b)
    assert rows["win_rate"].versions["judge"] == "openai:judge-under-test"
    assert rows["win_rate"].revision.startswith("sha256:")
    assert len((tmp_path / "pairs.jsonl").read_text().splitlines()) == len(JAVANESE_PROMPTS)


def test_kakugo_judge_without_prompts_is_one_clear_line(
    capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["judge", "-m", "a", "--opponent", "b", "-l", "jav"]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("kakugo: error:") and "--prompts" in err and "\n" not in err
