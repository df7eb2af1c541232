"""Reasoning is split out of answers the same way for every teacher."""

from __future__ import annotations

import pytest

from kakugo_core.reasoning import reasoning_from_message, split_reasoning


@pytest.mark.parametrize(
    ("text", "reasoning", "answer"),
    [
        ("Plain answer.", "", "Plain answer."),
        ("<think>step 1\nstep 2</think>\n\nSugeng enjing!", "step 1\nstep 2", "Sugeng enjing!"),
        # the chat template opened <think> in the prompt, so the reply starts inside it
        ("first I consider...</think>Answer", "first I consider...", "Answer"),
        ("<think>cut off before the end", "cut off before the end", ""),
        (
            "<|channel|>analysis<|message|>User greets.<|end|><|start|>assistant"
            "<|channel|>final<|message|>Halo!<|return|>",
            "User greets.",
            "Halo!",
        ),
        ("analysisUser greets. Reply in Javanese.assistantfinalSugeng rawuh!",
         "User greets. Reply in Javanese.", "Sugeng rawuh!"),
        ("", "", ""),
    ],
)
def test_split_reasoning_forms(text: str, reasoning: str, answer: str) -> None:
    assert split_reasoning(text) == (reasoning, answer)


def test_harmony_with_several_analysis_messages_and_constrain() -> None:
    text = (
        "<|channel|>analysis<|message|>one<|end|>"
        "<|start|>assistant<|channel|>commentary to=functions.x<|message|>two<|end|>"
        "<|start|>assistant<|channel|>final <|constrain|>json<|message|>{\"a\": 1}<|end|>"
    )
    assert split_reasoning(text) == ("one\n\ntwo", '{"a": 1}')


def test_harmony_without_final_channel_is_all_reasoning() -> None:
    assert split_reasoning("<|channel|>analysis<|message|>still thinking") == (
        "still thinking", "")


def test_message_fields_win_and_inline_markers_are_still_removed() -> None:
    assert reasoning_from_message({"content": "Answer", "reasoning_content": " why "}) == (
        "why", "Answer")
    assert reasoning_from_message({"content": "Answer", "reasoning": "because"}) == (
        "because", "Answer")
    assert reasoning_from_message(
        {"content": "<think>inline</think>Answer", "reasoning_content": "field"}
    ) == ("field\n\ninline", "Answer")
    assert reasoning_from_message({"content": None, "reasoning": "only thoughts"}) == (
        "only thoughts", "")
    assert reasoning_from_message(
        {"content": [{"type": "text", "text": "<think>a</think>"}, {"type": "text", "text": "b"}]}
    ) == ("a", "b")
