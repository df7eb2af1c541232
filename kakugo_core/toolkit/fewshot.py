"""Few-shot examples: one fixed, seeded order per language, shared by every item, so prompts keep
the longest common prefix (which the scoring engine computes once)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

Row = dict[str, Any]


def fewshot_for(
    pool: Sequence[Row],
    n_shot: int,
    exclude: set[str],
    key: Callable[[Row], str],
    seed: str,
) -> list[Row]:
    """``n_shot`` examples from ``pool``: the first ``n_shot`` of one fixed, seeded order shared
    by every item, except that an example whose key is in ``exclude`` (the scored item itself,
    or its passage) is replaced in place by the next unused one, so prompts keep the longest
    common prefix (the scoring engine computes a shared prefix once)."""
    if n_shot <= 0:
        return []
    order = list(range(len(pool)))
    random.Random(seed).shuffle(order)
    spare = (pool[i] for i in order[n_shot:] if key(pool[i]) not in exclude)
    chosen = []
    for index in order[:n_shot]:
        row = pool[index] if key(pool[index]) not in exclude else next(spare, None)
        if row is not None:
            chosen.append(row)
    return chosen
