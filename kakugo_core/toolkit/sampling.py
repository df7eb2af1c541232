"""Seeded, stratified samples of benchmark items for ``--limit N``.

Benchmark files are often sorted (SIB-200's test split by topic, Global-MMLU's by subject), so
the first N rows measure one label. A limited run instead scores a sample drawn with a seeded
random generator: with labels, every label keeps a share proportional to its size (largest
remainders, and at least one item per label while N allows); without labels, a plain seeded
sample. The chosen items keep their file order. :func:`sample_key` is what a benchmark adds to
its prompt hash, so that results of different samples are never mixed in the store.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

from kakugo_core.errors import KakugoError

T = TypeVar("T")

#: how the sample is drawn; part of the prompt hash, so a change re-scores limited cells
SAMPLING_VERSION = "stratified-v1"


def parse_limit(value: Any, name: str = "bench.limit") -> int | None:
    """``None`` for no limit (``0``, ``None``, ``""``), else a positive item count; anything
    else is a one-line error naming the setting."""
    if value is None or value == "" or value is False:
        return None
    if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
        raise KakugoError(f"{name} must be a whole number of items (0: all), got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise KakugoError(f"{name} must be a whole number of items (0: all), "
                          f"got {value!r}") from None
    if number < 0:
        raise KakugoError(f"{name} must be 0 (all items) or more, got {number}")
    return number or None


def parse_seed(value: Any, name: str = "bench.limit_seed") -> int:
    """The sampling seed as an int; a one-line error otherwise."""
    try:
        if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
            raise ValueError
        return int(value if value not in (None, "") else 0)
    except (TypeError, ValueError):
        raise KakugoError(f"{name} must be an integer, got {value!r}") from None


def _quotas(sizes: dict[Hashable, int], limit: int) -> dict[Hashable, int]:
    """Items per label: proportional (largest remainders), every label at least one while the
    limit allows, never more than a label has."""
    total = sum(sizes.values())
    labels = sorted(sizes, key=str)
    if limit >= len(labels):
        quotas = {lab: 1 for lab in labels}
        rest = limit - len(labels)
        spare = {lab: sizes[lab] - 1 for lab in labels}
        spare_total = sum(spare.values())
    else:
        quotas = {lab: 0 for lab in labels}
        rest, spare, spare_total = limit, dict(sizes), total
    if rest and spare_total:
        shares = {lab: rest * spare[lab] / spare_total for lab in labels}
        for lab in labels:
            quotas[lab] += int(shares[lab])
        left = limit - sum(quotas.values())
        by_remainder = sorted(labels, key=lambda lab: (-(shares[lab] - int(shares[lab])),
                                                       str(lab)))
        for lab in by_remainder:
            if left <= 0:
                break
            if quotas[lab] < sizes[lab]:
                quotas[lab] += 1
                left -= 1
    return quotas


def sample_items(
    items: Sequence[T],
    limit: int | None,
    seed: int | str = 0,
    label: Callable[[T], Hashable] | None = None,
) -> list[T]:
    """``limit`` items of ``items`` drawn with ``seed`` (stratified by ``label`` when given),
    in their original order; every item when there is no limit or it is not smaller."""
    if not limit or limit >= len(items):
        return list(items)
    rng = random.Random(f"kakugo-limit:{seed}")
    if label is None:
        chosen = set(rng.sample(range(len(items)), limit))
    else:
        groups: dict[Hashable, list[int]] = {}
        for index, item in enumerate(items):
            groups.setdefault(label(item), []).append(index)
        quotas = _quotas({lab: len(idx) for lab, idx in groups.items()}, limit)
        chosen = set()
        for lab in sorted(groups, key=str):
            chosen.update(rng.sample(groups[lab], quotas[lab]))
    return [item for index, item in enumerate(items) if index in chosen]


def sample_key(limit: int | None, seed: int | str, stratified: bool,
               total: int | None = None) -> dict[str, Any]:
    """What a limited task adds to its prompt hash: nothing when every one of the ``total``
    items is scored, so that full-run hashes stay as they were."""
    if not limit or (total is not None and limit >= total):
        return {}
    return {"sample": {"limit": limit, "seed": seed, "stratified": stratified,
                       "method": SAMPLING_VERSION}}
