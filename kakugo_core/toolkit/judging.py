"""Helpers for judge benchmarks: prompts to judge, answering them with both models, pairwise
verdicts from a teacher (both orders) and the preference scores they add up to."""

from __future__ import annotations

from kakugo_core.judging import (
    PromptItem,
    answer_prompts,
    judge_pairs,
    load_prompts,
    preference_scores,
    prompts_digest,
    rubric_digest,
)

__all__ = [
    "PromptItem", "answer_prompts", "judge_pairs", "load_prompts", "preference_scores",
    "prompts_digest", "rubric_digest",
]
