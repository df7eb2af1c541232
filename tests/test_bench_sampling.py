"""``--limit N``: a seeded sample that keeps every label, recorded in the prompt hash.

SIB-200's test files are sorted by topic, so the first 40 rows are all science/technology; a
limited run must still score every one of the seven topics."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from kakugo_core.errors import KakugoError
from kakugo_core.languages import resolve
from kakugo_core.plugins import create
from kakugo_core.toolkit.sampling import parse_limit, sample_items

LABELS = 7


def _labels(task) -> Counter:
    return Counter(item.gold for item in task.items)


@pytest.mark.parametrize("limit", [7, 40, 50, 70])
def test_a_limited_sib200_run_covers_every_label(limit: int) -> None:
    bench = create("benchmarks", "sib200")
    task = bench.prepare(resolve("jav_Latn"), {"n_shot": 0, "limit": limit})
    assert len(task.items) == limit
    labels = _labels(task)
    assert len(labels) == LABELS, labels
    full = _labels(bench.prepare(resolve("jav_Latn"), {"n_shot": 0}))
    for gold, count in labels.items():  # proportional: within one item of the label's share
        assert abs(count - limit * full[gold] / sum(full.values())) <= 1.0 + 1e-9


def test_the_sample_is_seeded_and_the_seed_and_limit_are_in_the_hash() -> None:
    bench = create("benchmarks", "sib200")
    lang = resolve("jav_Latn")

    def task(**options):
        return bench.prepare(lang, {"n_shot": 0, **options})

    first, again = task(limit=40), task(limit=40, limit_seed=0)
    assert [i.item_id for i in first.items] == [i.item_id for i in again.items]
    assert first.prompt_hash == again.prompt_hash
    other = task(limit=40, limit_seed=1)
    assert [i.item_id for i in other.items] != [i.item_id for i in first.items]
    assert other.prompt_hash != first.prompt_hash
    assert task(limit=41).prompt_hash != first.prompt_hash
    full, everything = task(), task(limit=10_000)
    assert len(full.items) == len(everything.items) == 204
    assert full.prompt_hash == everything.prompt_hash  # no sample: the full run's hash


def test_flores_takes_a_seeded_sample_not_the_first_rows() -> None:
    bench = create("benchmarks", "flores")
    lang = resolve("jav_Latn")
    first = bench.prepare(lang, {"n_shot": 0, "limit": 20})
    ids = sorted({item["id"] for item in first.items}, key=int)
    everything = [item["id"] for item in bench.prepare(lang, {"n_shot": 0}).items][::2]
    assert len(ids) == 20 and ids != everything[:20]
    seeded = bench.prepare(lang, {"n_shot": 0, "limit": 20, "limit_seed": 3})
    assert seeded.prompt_hash != first.prompt_hash


def test_sample_items_without_labels_and_small_limits() -> None:
    items = list(range(100))
    sample = sample_items(items, 10, seed=5)
    assert len(sample) == 10 and sample == sorted(sample)
    assert sample == sample_items(items, 10, seed=5)
    assert sample_items(items, None) == items and sample_items(items, 500) == items
    # fewer items than labels: the largest labels first, never a label twice over its size
    labelled = ["a"] * 50 + ["b"] * 30 + ["c"] * 2
    picked = sample_items(labelled, 2, seed=0, label=lambda x: x)
    assert Counter(picked) == Counter({"a": 1, "b": 1})
    picked = sample_items(labelled, 80, seed=0, label=lambda x: x)
    assert Counter(picked) == Counter({"a": 49, "b": 29, "c": 2})


@pytest.mark.parametrize("bad", [-1, "many", 2.5, True])
def test_a_bad_limit_is_a_clear_error(bad: object) -> None:
    with pytest.raises(KakugoError, match="limit"):
        parse_limit(bad)
    bench = create("benchmarks", "sib200")
    with pytest.raises(KakugoError, match="limit"):
        bench.prepare(resolve("jav_Latn"), {"n_shot": 0, "limit": bad})


def test_no_limit_values() -> None:
    assert parse_limit(0) is None and parse_limit(None) is None and parse_limit("") is None
    assert parse_limit("12") == 12 and parse_limit(12.0) == 12


def test_bench_limit_in_the_config_is_checked_in_one_line(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kakugo_core", "bench", "-m", str(tmp_path / "none"),
         "-b", "sib200", "-l", "jav_Latn", "--set", "bench.limit=-5",
         "--db", str(tmp_path / "r.sqlite")],
        capture_output=True, text=True)
    assert result.returncode != 0
    assert "'bench.limit' must be >= 0, got -5" in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


def test_help_says_the_limit_is_a_stratified_seeded_sample() -> None:
    result = subprocess.run([sys.executable, "-m", "kakugo_core", "bench", "--help"],
                            capture_output=True, text=True)
    text = " ".join(result.stdout.split())
    assert "seeded random sample of N items" in text and "every label" in text
    assert "--limit-seed" in text and "prompt hash" in text
