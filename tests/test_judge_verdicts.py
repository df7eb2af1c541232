"""The judging engine's pure parts: verdict parsing, the both-orders rule, Wilson intervals,
prompt files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from kakugo_core.errors import KakugoError
from kakugo_core.judging import (
    combine_verdicts,
    judge_request,
    load_prompts,
    parse_verdict,
    position_bias,
    preference_scores,
    rubric_text,
    wilson_interval,
)


@pytest.mark.parametrize(("reply", "verdict"), [
    ("Answer 1 is fluent.\nVerdict: [[1]]", "1"),
    ("Verdict: [[2]]", "2"),
    ("Both fine.\nVerdict: [[TIE]]", "tie"),
    ("Earlier I said [[1]] but on reflection\nVerdict: [[2]]", "2"),
    ("**Verdict:** answer 2", "2"),
    ("Verdict: 1", "1"),
    ("I prefer the second answer.", None),
    ("", None),
    ("Verdict: [[3]]", None),
])
def test_parse_verdict(reply: str, verdict: str | None) -> None:
    assert parse_verdict(reply) == verdict


@pytest.mark.parametrize(("a_first", "b_first", "outcome"), [
    ("1", "2", "win"),    # A preferred in both orders
    ("1", "tie", "win"),  # win + tie
    ("2", "1", "loss"),   # B preferred in both orders
    ("tie", "1", "loss"),
    ("1", "1", "tie"),    # always the first position: no information
    ("2", "2", "tie"),    # always the second position
    ("tie", "tie", "tie"),
    (None, "2", None),    # an unparsed order leaves the pair out
    ("1", None, None),
])
def test_both_orders_rule(a_first: str | None, b_first: str | None, outcome: str | None) -> None:
    assert combine_verdicts(a_first, b_first) == outcome


def test_wilson_interval_matches_known_values() -> None:
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and math.isclose(high, 0.27753, abs_tol=1e-4)
    low, high = wilson_interval(10, 10)
    assert math.isclose(low, 0.72247, abs_tol=1e-4) and high == 1.0
    low, high = wilson_interval(5, 10)
    assert math.isclose(low, 0.23659, abs_tol=1e-4) and math.isclose(high, 0.76341, abs_tol=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_preference_scores() -> None:
    scores = {s.metric: s for s in preference_scores(["win", "win", "tie", "loss", None])}
    assert scores["win_rate"].value == 0.5 and scores["win_rate"].n == 4
    assert scores["tie_rate"].value == 0.25 and scores["loss_rate"].value == 0.25
    assert scores["unparsed"].value == 1 and scores["unparsed"].n == 5
    low, high = wilson_interval(2, 4)
    assert math.isclose(scores["win_rate"].stderr, (high - low) / (2 * 1.959963984540054))
    with pytest.raises(ValueError):
        preference_scores(["draw"])


def test_judge_request_carries_rubric_language_and_both_answers() -> None:
    request = judge_request("Apa kabar?", "Apik.", "", "Javanese", max_tokens=100)
    system, user = (content for _role, content in request.messages)
    assert system == rubric_text().replace("{language}", "Javanese")
    assert "fluent speaker of Javanese" in system and "Verdict: [[tie]]" in system
    assert "[Answer 1]\nApik.\n" in user and "[Answer 2]\n(empty answer)\n" in user
    assert request.temperature == 0.0 and request.max_tokens == 100


def test_load_prompts_formats_and_errors(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "prompt": "Terjemahna.", "context": "Sugeng enjing."},
        {"question_id": 81, "turns": ["Tulisen crita.", "Saiki luwih cekak."]},
        {"prompt": "Apa kabar?"},
    ]
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    items = load_prompts(path)
    assert [(i.id, i.text) for i in items] == [
        ("a", "Sugeng enjing.\n\nTerjemahna."), ("81", "Tulisen crita."), ("3", "Apa kabar?")]
    assert len(load_prompts(path, limit=2)) == 2
    as_json = tmp_path / "prompts.json"
    as_json.write_text(json.dumps(rows))
    assert load_prompts(as_json) == items

    for text, message in [
        ('{"prompt": "x"}\nnot json\n', "line 2 is not JSON"),
        ('{"text": "x"}\n', "row 1 has no 'prompt'"),
        ('{"id": 1, "prompt": "x"}\n{"id": 1, "prompt": "y"}\n', "repeats id"),
        ("\n", "no prompts"),
    ]:
        path.write_text(text)
        with pytest.raises(KakugoError, match=message):
            load_prompts(path)
    with pytest.raises(KakugoError, match="no such prompts file"):
        load_prompts(tmp_path / "absent.jsonl")


def test_position_bias_diagnostics() -> None:
    # a first-position judge: never consistent, always picks the first answer
    assert position_bias([("1", "1"), ("1", "1")]) == {
        "consistent": 0, "pairs": 2, "first_chosen": 4, "decisive": 4}
    # a consistent judge: A shown first wins as "1", A shown second wins as "2"
    assert position_bias([("1", "2"), ("tie", "tie"), ("2", "1"), (None, "2")]) == {
        "consistent": 3, "pairs": 3, "first_chosen": 2, "decisive": 5}


def test_prompts_from_a_datasets_validation_split(tmp_path: Path) -> None:
    from datasets import Dataset, DatasetDict

    def rows(texts: list[tuple[str, str]]) -> Dataset:
        return Dataset.from_list([
            {"generation_method": method, "system": "Think first.",
             "messages": [{"role": "user", "content": text},
                          {"role": "assistant", "content": "..."}]}
            for method, text in texts
        ])

    folder = tmp_path / "dataset"
    DatasetDict({
        "train": rows([("topic", "Trained on, never a judge prompt.")]),
        "validation": rows([("topic", "Apa kabar?"), ("translate", "Translated turn."),
                            ("scenario", "Critakna Yogya.")]),
    }).save_to_disk(str(folder))
    items = load_prompts(folder)
    assert [(i.id, i.text) for i in items] == [
        ("validation:0", "Apa kabar?"), ("validation:2", "Critakna Yogya.")]
    assert len(load_prompts(folder, limit=1)) == 1
    DatasetDict({"train": rows([("topic", "x")])}).save_to_disk(str(tmp_path / "no-val"))
    with pytest.raises(KakugoError, match="validation split"):
        load_prompts(tmp_path / "no-val")
