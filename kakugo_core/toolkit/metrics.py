"""Metrics with standard errors: accuracy (binomial standard error, lm-eval's formula), macro-F1,
a bootstrap standard error for any statistic over items, and the Wilson score interval that
tables show for a share of items."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kakugo_core.interfaces import Score

#: the two-sided 95 % normal quantile
Z95 = 1.959963984540054
#: metrics that are a share of n items (k/n): tables show them with a Wilson score interval,
#: which stays honest at 0 % and 100 % (0/40 is [0.0–8.8], not "0.0 ± 0.0")
PROPORTION_METRICS = frozenset({"acc", "acc_norm", "exact_match",
                                "win_rate", "tie_rate", "loss_rate"})


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


def wilson_interval(k: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of the share ``k / n`` (``(0, 1)`` when ``n == 0``); ``k`` may
    be a share times ``n`` (``value * n``)."""
    if n <= 0:
        return 0.0, 1.0
    p = min(max(k / n, 0.0), 1.0)
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if p <= 0 else max(0.0, centre - half)
    high = 1.0 if p >= 1 else min(1.0, centre + half)
    return low, high


def wilson_stderr(k: float, n: int, z: float = Z95) -> float | None:
    """The Wilson interval's width over ``2 z``: a standard error that is never 0 at 0 % or
    100 % (None when ``n == 0``)."""
    if n <= 0:
        return None
    low, high = wilson_interval(k, n, z)
    return (high - low) / (2 * z)
