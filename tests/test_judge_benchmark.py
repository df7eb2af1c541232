"""The judge benchmark end to end: two real tiny models answer, a judge over real HTTP (the
OpenAI-compatible test server and the ``openai`` teacher plugin) compares them in both orders."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from kakugo_core.config import load_config
from kakugo_core.errors import KakugoError
from kakugo_core.judging import load_prompts
from kakugo_core.plugins import create
from kakugo_core.store import ResultsStore
from kakugo_core.teacher_server import OpenAICompatServer

pytestmark = pytest.mark.slow

JAVANESE_PROMPTS = [
    "Critakna babagan kutha Yogyakarta.",
    "Kepiye carane masak sega goreng?",
    "Apa gunane sinau basa Jawa?",
    "Tulisen geguritan cekak babagan udan.",
    "Sebutna telung panganan khas Jawa Timur.",
    "Kenapa wit-witan penting kanggo urip?",
]
ANSWER = re.compile(r"\[Answer (1|2)\]\n(.*?)\n\[End of answer \1\]", re.DOTALL)


def make_talkative(folder: Path) -> Path:
    """Stop a random tiny model from answering only newlines or end-of-turn: suppress the
    tokens that decode to whitespace (a real ``generation_config.json`` setting)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    silent = [i for i in range(len(tok)) if not tok.decode([i], skip_special_tokens=True).strip()]
    path = folder / "generation_config.json"
    config = json.loads(path.read_text())
    config["suppress_tokens"] = silent
    path.write_text(json.dumps(config))
    return folder


def build_model_pair(tiny_model: Path, sib200_dir: Path, root: Path) -> tuple[Path, Path]:
    """Model A (a copy of the ``tiny_model`` fixture) and model B (the same recipe, another
    seed), both made talkative."""
    from kakugo_core.testing import build_tiny_model, read_sib200_texts

    model_a = Path(shutil.copytree(tiny_model, root / "model-a"))
    texts = read_sib200_texts(sib200_dir, ["eng_Latn", "jav_Latn"])
    model_b = build_tiny_model(root / "model-b", texts, seed=1)
    return make_talkative(model_a), make_talkative(model_b)


def write_prompts(path: Path, prompts: list[str] = JAVANESE_PROMPTS) -> Path:
    path.write_text("".join(
        json.dumps({"id": f"p{i}", "prompt": p}, ensure_ascii=False) + "\n"
        for i, p in enumerate(prompts)
    ), "utf-8")
    return path


def answers_of(model: Path, prompts: list[str], max_new_tokens: int) -> list[str]:
    """What ``model`` answers, computed here directly through the backend."""
    from kakugo_core.interfaces import GenerationRequest

    backend = create("backends", "transformers", model=str(model))
    try:
        requests = [GenerationRequest(backend.apply_chat_template(p), stop=(),
                                      max_new_tokens=max_new_tokens) for p in prompts]
        return [a.strip() for a in backend.generate(requests)]
    finally:
        backend.close()


def shown_answers(body: dict[str, Any]) -> tuple[str, str]:
    user = body["messages"][-1]["content"]
    found = dict(ANSWER.findall(user))
    return found["1"], found["2"]


def teacher_config(server: OpenAICompatServer) -> dict[str, Any]:
    config = load_config()
    config["teacher"].update(base_url=server.base_url, model="judge-under-test",
                             concurrency=4, max_retries=0, api_key_env="")
    return config


MAX_NEW = 10


@pytest.fixture(scope="module")
def models(
    tiny_model: Path, sib200_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    return build_model_pair(tiny_model, sib200_dir, tmp_path_factory.mktemp("judge-models"))


@pytest.fixture(scope="module")
def answers_a(models: tuple[Path, Path]) -> set[str]:
    answers = answers_of(models[0], JAVANESE_PROMPTS, MAX_NEW)
    answers_b = answers_of(models[1], JAVANESE_PROMPTS, MAX_NEW)
    assert all(answers) and not set(answers) & set(answers_b), "models must answer differently"
    return set(answers)


def prefers_model_a(answers_a: set[str]):  # type: ignore[no-untyped-def]
    """A consistent judge: always picks model A's answer, recognised from its content."""
    def respond(body: dict[str, Any]) -> str:
        first, second = shown_answers(body)
        assert (first in answers_a) != (second in answers_a), "each pair holds one answer of A"
        return f"Answer in good Javanese.\nVerdict: [[{'1' if first in answers_a else '2'}]]"
    return respond


def options(tmp_path: Path, models: tuple[Path, Path], server: OpenAICompatServer,
            **extra: Any) -> dict[str, Any]:
    return {
        "prompts": str(write_prompts(tmp_path / "heldout.jsonl")),
        "opponent": str(models[1]),
        "config": teacher_config(server),
        "cache_file": str(tmp_path / "judge-cache.jsonl"),
        "max_new_tokens": MAX_NEW,
        **extra,
    }


def run_judge(models: tuple[Path, Path], opts: dict[str, Any]) -> Any:
    from kakugo_core.languages import resolve

    backend = create("backends", "transformers", model=str(models[0]))
    try:
        return create("benchmarks", "judge").evaluate(backend, resolve("Javanese"), opts)
    finally:
        backend.close()


def by_metric(result: Any) -> dict[str, Any]:
    return {s.metric: s for s in result.scores}


def test_consistent_judge_through_run_bench_wins_every_pair_and_is_stored(
    tmp_path: Path, models: tuple[Path, Path], answers_a: set[str]
) -> None:
    from kakugo_core.scoring import run_bench

    n = len(JAVANESE_PROMPTS)
    with OpenAICompatServer(prefers_model_a(answers_a)) as server, \
            ResultsStore(tmp_path / "results.sqlite") as store:
        opts = options(tmp_path, models, server)
        [result] = run_bench([str(models[0])], ["judge"], ["Javanese"], store=store,
                             progress=False, benchmark_options=opts)
        rows = {r.metric: r for r in store.rows(benchmarks=["judge"])}

    assert len(server.requests) == 2 * n
    # every prompt's pair was shown in both orders
    orders: dict[str, list[tuple[str, str]]] = {}
    for body in server.requests:
        question = body["messages"][-1]["content"].split("\n")[1]
        orders.setdefault(question, []).append(shown_answers(body))
        assert body["model"] == "judge-under-test" and body["temperature"] == 0.0
        assert "fluent speaker of Javanese" in body["messages"][0]["content"]
    assert set(orders) == set(JAVANESE_PROMPTS)
    for (first, second), (first_again, second_again) in orders.values():
        assert (first, second) == (second_again, first_again)

    scores = by_metric(result)
    assert scores["win_rate"].value == 1.0 and scores["win_rate"].n == n
    assert scores["tie_rate"].value == 0.0 and scores["loss_rate"].value == 0.0
    assert scores["unparsed"].value == 0
    assert 0 < scores["win_rate"].stderr < 0.2  # Wilson: not zero even at 100 %
    assert rows["win_rate"].value == 1.0 and rows["win_rate"].n == n
    assert rows["loss_rate"].stderr is not None
    assert rows["win_rate"].language == "jav_Latn" and rows["win_rate"].model == str(models[0])

    from kakugo_core.leaderboard import render_store

    table = render_store(tmp_path / "results.sqlite", fmt="markdown")
    assert "judge win_rate (%)" in table and "100.0" in table and "unparsed" not in table


def test_opponent_is_part_of_the_result_key(
    tmp_path: Path, models: tuple[Path, Path]
) -> None:
    from kakugo_core.languages import resolve

    judge = create("benchmarks", "judge")
    with OpenAICompatServer(lambda body: "Verdict: [[tie]]") as server:
        opts = options(tmp_path, models, server)
        one = judge.prepare(resolve("jav_Latn"), opts).prompt_hash
        other = judge.prepare(resolve("jav_Latn"), {**opts, "opponent": str(models[0])})
    assert one != other.prompt_hash


def test_position_biased_judge_yields_only_ties(
    tmp_path: Path, models: tuple[Path, Path]
) -> None:
    with OpenAICompatServer(lambda body: "The first one reads better.\nVerdict: [[1]]") as server:
        result = run_judge(models, options(tmp_path, models, server))
    scores = by_metric(result)
    assert scores["tie_rate"].value == 1.0
    assert scores["win_rate"].value == 0.0 and scores["loss_rate"].value == 0.0
    assert scores["tie_rate"].n == len(JAVANESE_PROMPTS)
    assert result.versions["opponent"] == str(models[1])
    assert all(p["outcome"] == "tie" for p in result.predictions)


def test_unparsable_judge_answers_are_counted_not_fatal(
    tmp_path: Path, models: tuple[Path, Path], answers_a: set[str]
) -> None:
    consistent = prefers_model_a(answers_a)
    garbled = JAVANESE_PROMPTS[:2]

    def respond(body: dict[str, Any]) -> str:
        user = body["messages"][-1]["content"]
        first, _second = shown_answers(body)
        if any(p in user for p in garbled) and first not in answers_a:
            return "Both answers have merits; I cannot say."  # no verdict line
        return consistent(body)

    with OpenAICompatServer(respond) as server:
        result = run_judge(models, options(tmp_path, models, server))
    scores = by_metric(result)
    assert scores["unparsed"].value == 2 and scores["unparsed"].n == 2 * len(JAVANESE_PROMPTS)
    assert scores["win_rate"].value == 1.0
    assert scores["win_rate"].n == len(JAVANESE_PROMPTS) - 2
    assert [p["outcome"] for p in result.predictions][:2] == [None, None]


def test_verdicts_are_cached_so_a_rerun_asks_nothing(
    tmp_path: Path, models: tuple[Path, Path], answers_a: set[str]
) -> None:
    with OpenAICompatServer(prefers_model_a(answers_a)) as server:
        opts = options(tmp_path, models, server)
        first = run_judge(models, opts)
        asked = len(server.requests)
        second = run_judge(models, opts)
        assert len(server.requests) == asked == 2 * len(JAVANESE_PROMPTS)
    assert by_metric(first)["win_rate"].value == by_metric(second)["win_rate"].value == 1.0
    lines = (tmp_path / "judge-cache.jsonl").read_text().splitlines()
    cached = [json.loads(line) for line in lines]
    assert len(cached) == asked and all("Verdict" in c["content"] for c in cached)


def test_judge_that_never_gives_a_verdict_is_a_clear_error(
    tmp_path: Path, models: tuple[Path, Path]
) -> None:
    with OpenAICompatServer(lambda body: "No idea.") as server, \
            pytest.raises(KakugoError, match="no pair was judged"):
        run_judge(models, options(tmp_path, models, server))


def test_missing_prompts_or_opponent_say_what_to_do(tmp_path: Path) -> None:
    from kakugo_core.languages import resolve

    judge = create("benchmarks", "judge")
    with pytest.raises(KakugoError, match="kakugo judge"):
        judge.prepare(resolve("jav_Latn"), {"opponent": "x", "config": load_config()})
    prompts = write_prompts(tmp_path / "p.jsonl")
    with pytest.raises(KakugoError, match="opponent"):
        judge.prepare(resolve("jav_Latn"), {"prompts": str(prompts), "config": load_config()})
    assert len(load_prompts(prompts)) == len(JAVANESE_PROMPTS)
