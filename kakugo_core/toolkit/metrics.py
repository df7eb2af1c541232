"""Metrics with standard errors: accuracy (binomial standard error, lm-eval's formula), macro-F1
and a bootstrap standard error for any statistic over items."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kakugo_core.interfaces import Score


def mean_stderr(values: Sequence[float]) -> float | None:
    """Standard error of a mean (lm-eval's formula: sample std with n-1, over sqrt(n)); for
    0/1 values this is the binomial standard error."""
    n = len(values)
    if n < 2:
        return None
    mu = sum(values) / n
    var = sum((v - mu) ** 2 for v in values) / (n - 1)
    return math.sqrt(var / n)


def macro_f1(golds: Sequence[str], preds: Sequence[str], labels: Sequence[str]) -> float:
    scores = []
    for label in labels:
        tp = sum(1 for g, p in zip(golds, preds, strict=True) if g == label and p == label)
        fp = sum(1 for g, p in zip(golds, preds, strict=True) if g != label and p == label)
        fn = sum(1 for g, p in zip(golds, preds, strict=True) if g == label and p != label)
        if tp + fp + fn == 0:
            continue  # a label absent from both: not part of the average (sklearn's labels=seen)
        scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores) if scores else 0.0


def bootstrap_stderr(
    n: int, statistic: Callable[[list[int]], float], resamples: int = 500, seed: int = 1234
) -> float | None:
    """Bootstrap standard error of ``statistic`` over item indices."""
    if n < 2:
        return None
    rng = random.Random(seed)
    values = [statistic([rng.randrange(n) for _ in range(n)]) for _ in range(resamples)]
    mu = sum(values) / len(values)
    return math.sqrt(sum((v - mu) ** 2 for v in values) / (len(values) - 1))


def accuracy_scores(predictions: Sequence[Mapping[str, Any]], metric: str = "acc") -> Score:
    hits = [1.0 if p["correct"] else 0.0 for p in predictions]
    return Score(metric, sum(hits) / len(hits) if hits else 0.0, mean_stderr(hits), len(hits))
