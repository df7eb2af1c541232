"""Robust JSON extraction from teacher answers: the shapes real teachers produce, and the
reasons counted when an answer holds nothing usable."""

from __future__ import annotations

import pytest

from kakugo_core.errors import KakugoError
from kakugo_core.jsonparse import (
    JSONExtractionError,
    extract_json,
    extract_string,
    extract_string_list,
)


@pytest.mark.parametrize(
    "answer",
    [
        '["a", "b"]',
        '```json\n["a", "b"]\n```',
        '```\n["a", "b",]\n```',
        'Here are the topics:\n```json\n[\n  "a",\n  "b",\n]\n```\nLet me know!',
        'Sure! ["a", "b"] Hope this helps.',
        '<think>maybe ["x"] or {"y": 1}</think>["a", "b"]',
        "\u201ca\u201d is not JSON but [\u201ca\u201d, \u201cb\u201d] is after repair",
        '{"topics": ["a", "b"]}',
        '{"topics": [{"name": "a"}, {"name": "b"}]}',
        '```json\n["a", "b"]',  # an unclosed fence
    ],
)
def test_string_lists_are_found_in_every_common_shape(answer: str) -> None:
    assert extract_string_list(answer, key="topics") == ["a", "b"]


def test_brackets_inside_strings_do_not_confuse_the_scan() -> None:
    answer = 'Result: [{"role": "user", "content": "use ``` and ] and } freely"}] done'
    assert extract_json(answer) == [
        {"role": "user", "content": "use ``` and ] and } freely"}
    ]


def test_the_largest_json_value_wins_over_fragments() -> None:
    answer = 'I considered [1] but the answer is {"prompt": "Apa kabar?", "notes": [1, 2]}.'
    assert extract_string(answer, "prompt") == "Apa kabar?"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        (None, "empty"),
        ("Sorry, I can't help with that.", "no_json"),
        ('["cut off", "mid', "invalid_json"),
        ('{"a": 1', "invalid_json"),
    ],
)
def test_failures_carry_a_countable_reason(answer: str | None, reason: str) -> None:
    with pytest.raises(JSONExtractionError) as info:
        extract_string_list(answer)
    assert info.value.reason == reason
    assert isinstance(info.value, KakugoError)


@pytest.mark.parametrize(
    "answer",
    ['{"a": 1, "b": 2}', '{"x": ["a"], "y": ["b"]}', "[1, 2, 3]", '[""]', '"just a string"'],
)
def test_json_of_the_wrong_shape_is_its_own_reason(answer: str) -> None:
    with pytest.raises(JSONExtractionError) as info:
        extract_string_list(answer)
    assert info.value.reason == "wrong_shape"


def test_extract_string_wants_the_named_key() -> None:
    assert extract_string('[{"prompt": " Halo "}]', "prompt") == "Halo"
    with pytest.raises(JSONExtractionError) as info:
        extract_string('{"other": "x"}', "prompt")
    assert info.value.reason == "wrong_shape"
