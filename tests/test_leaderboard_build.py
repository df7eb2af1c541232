"""Leaderboard arithmetic: averages, standard errors, deltas, cell selection and metric choice,
each checked against an independent computation."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from kakugo_core.errors import KakugoError
from kakugo_core.leaderboard import Column, build_leaderboard, render
from kakugo_core.plugins import Registration, registry
from kakugo_core.store import ResultRow

LANGS = ("jav_Latn", "sun_Latn", "swh_Latn", "yor_Latn")


def row(
    model: str, benchmark: str, language: str, metric: str, value: float,
    stderr: float | None = None, n: int = 100, *, n_shot: int = 3, prompt_hash: str = "p0",
    revision: str = "", created: str = "2026-01-01T00:00:00+00:00",
) -> ResultRow:
    return ResultRow(model, revision, benchmark, language, n_shot, prompt_hash, metric, value,
                     stderr, n, created)


def random_rows(seed: int = 7) -> tuple[list[ResultRow], dict[tuple[str, str], tuple]]:
    """Three models on four languages with random values, standard errors and counts."""
    rng = random.Random(seed)
    rows, truth = [], {}
    for model in ("base", "student", "other"):
        for lang in LANGS:
            value, se, n = rng.uniform(0.2, 0.9), rng.uniform(0.01, 0.05), rng.randint(50, 300)
            rows.append(row(model, "toybench", lang, "acc", value, se, n))
            truth[(model, lang)] = (value, se, n)
    return rows, truth


def test_mean_over_languages_with_stderr_and_counts() -> None:
    rows, truth = random_rows()
    board = build_leaderboard(rows)
    column = Column("toybench", "acc")
    assert board.display_columns == [column]
    for model in ("base", "student", "other"):
        values = np.array([truth[(model, lang)][0] for lang in LANGS])
        errors = np.array([truth[(model, lang)][1] for lang in LANGS])
        counts = [truth[(model, lang)][2] for lang in LANGS]
        cell = board.cell(model, column)
        assert cell is not None
        assert cell.value == pytest.approx(values.mean())
        assert cell.stderr == pytest.approx(np.sqrt(np.sum(errors**2)) / len(LANGS))
        assert cell.n == sum(counts)
        assert cell.languages == LANGS


def test_deltas_against_baseline_use_shared_languages_only() -> None:
    rows, truth = random_rows()
    # the student lacks yor_Latn: its delta must be over the three shared languages only
    rows = [r for r in rows if not (r.model == "student" and r.language == "yor_Latn")]
    board = build_leaderboard(rows, baseline="base")
    assert board.models[0] == "base"
    column = Column("toybench", "acc")
    shared = LANGS[:3]
    diffs = [truth[("student", lang)][0] - truth[("base", lang)][0] for lang in shared]
    var = [truth[("student", lang)][1] ** 2 + truth[("base", lang)][1] ** 2 for lang in shared]
    delta = board.delta("student", column)
    assert delta is not None
    assert delta.value == pytest.approx(sum(diffs) / 3)
    assert delta.stderr == pytest.approx(math.sqrt(sum(var)) / 3)
    assert delta.languages == shared
    # the plain difference of averages would differ (yor_Latn is only in the base's average)
    base_mean, student_mean = board.cell("base", column), board.cell("student", column)
    assert base_mean is not None and student_mean is not None
    assert student_mean.value - base_mean.value != pytest.approx(delta.value)
    # a model with every language: delta equals the difference of the averages
    other = board.delta("other", column)
    other_mean = board.cell("other", column)
    assert other is not None and other_mean is not None
    assert other.value == pytest.approx(other_mean.value - base_mean.value)
    assert other_mean.stderr is not None and base_mean.stderr is not None
    assert other.stderr == pytest.approx(math.hypot(other_mean.stderr, base_mean.stderr))
    assert board.delta("base", column) is None
    # per-language deltas
    jav = Column("toybench", "acc", "jav_Latn")
    lang_delta = board.delta("student", jav)
    assert lang_delta is not None
    assert lang_delta.value == pytest.approx(diffs[0])
    assert lang_delta.stderr == pytest.approx(math.sqrt(var[0]))
    assert board.delta("student", Column("toybench", "acc", "yor_Latn")) is None
    # partial coverage is visible in the table
    assert "(3/4 langs)" in render(board, "markdown")


def test_languages_only_the_model_has_do_not_enter_the_delta() -> None:
    rows = [
        row("base", "b", "jav_Latn", "acc", 0.50, 0.03),
        row("student", "b", "jav_Latn", "acc", 0.60, 0.04),
        row("student", "b", "sun_Latn", "acc", 0.90, 0.02),  # the baseline has no sun_Latn
    ]
    board = build_leaderboard(rows, baseline="base")
    delta = board.delta("student", Column("b", "acc"))
    assert delta is not None and delta.languages == ("jav_Latn",)
    assert delta.value == pytest.approx(0.10)
    assert delta.stderr == pytest.approx(0.05)
    assert board.cell("base", Column("b", "acc")).languages == ("jav_Latn",)  # type: ignore[union-attr]
    assert "(1/2 langs)" in render(board, "markdown")


def test_missing_stderr_makes_the_mean_stderr_unknown() -> None:
    rows = [row("m", "b", "jav_Latn", "acc", 0.5, 0.02), row("m", "b", "sun_Latn", "acc", 0.7)]
    cell = build_leaderboard(rows).cell("m", Column("b", "acc"))
    assert cell is not None
    assert cell.value == pytest.approx(0.6)
    assert cell.stderr is None


def test_each_setting_is_its_own_column_and_n_shot_filters() -> None:
    """Evaluations at other n-shots are separate columns (they used to replace each other,
    the latest winning, which let a merged store average 1-shot with 3-shot cells)."""
    rows = [
        row("m", "b", "jav_Latn", "acc", 0.40, n_shot=0, created="2026-01-02T00:00:00+00:00"),
        row("m", "b", "jav_Latn", "acc", 0.55, n_shot=3, created="2026-01-01T00:00:00+00:00"),
        row("m", "b", "jav_Latn", "acc", 0.60, n_shot=5, prompt_hash="old",
            created="2025-12-01T00:00:00+00:00"),
    ]
    board = build_leaderboard(rows)
    assert [c.label for c in board.display_columns] == ["b acc 5-shot", "b acc 3-shot",
                                                         "b acc 0-shot"]
    values = [board.cell("m", c).value for c in board.display_columns]  # type: ignore[union-attr]
    assert values == pytest.approx([0.60, 0.55, 0.40])
    zero = board.display_columns[2]
    assert board.evaluation("m", zero.at("jav_Latn")).n_shot == 0  # type: ignore[union-attr]
    three = build_leaderboard(rows, n_shot=3)
    assert three.cell("m", Column("b", "acc")).value == pytest.approx(0.55)  # type: ignore[union-attr]
    assert three.notes == []
    with pytest.raises(KakugoError, match="n-shot 1; stored: 0, 3, 5"):
        build_leaderboard(rows, n_shot=1)


def test_ties_in_time_are_broken_deterministically() -> None:
    same = "2026-01-01T00:00:00+00:00"
    rows = [
        row("m", "b", "jav_Latn", "acc", 0.3, n_shot=3, prompt_hash="a", created=same),
        row("m", "b", "jav_Latn", "acc", 0.2, n_shot=3, prompt_hash="b", created=same),
        row("m", "b", "jav_Latn", "acc", 0.1, n_shot=3, prompt_hash="a", revision="r0",
            created=same),
    ]
    for ordering in (rows, rows[::-1], [rows[1], rows[0], rows[2]]):
        board = build_leaderboard(ordering)
        assert board.cell("m", Column("b", "acc")).value == pytest.approx(0.2)  # type: ignore[union-attr]


def test_an_evaluation_is_never_mixed_with_another() -> None:
    """Metrics of one cell come from the same evaluation, even if another has more metrics."""
    rows = [
        row("m", "b", "jav_Latn", "acc", 0.3, created="2026-01-01T00:00:00+00:00"),
        row("m", "b", "jav_Latn", "macro_f1", 0.25, created="2026-01-01T00:00:00+00:00"),
        row("m", "b", "jav_Latn", "acc", 0.5, prompt_hash="new",
            created="2026-02-01T00:00:00+00:00"),
    ]
    board = build_leaderboard(rows, metrics=["*"])
    assert board.cell("m", Column("b", "acc")).value == pytest.approx(0.5)  # type: ignore[union-attr]
    assert board.cell("m", Column("b", "macro_f1")) is None


class _RegisteredBench:
    primary_metrics = ("macro_f1", "acc")


def _register_bench(name: str) -> None:
    registry("benchmarks").add(
        Registration("benchmarks", name, _RegisteredBench, (), "tests", "tests")
    )


def test_primary_metrics_of_registered_benchmarks_and_fallback_to_all() -> None:
    _register_bench("registeredbench")
    rows = []
    for bench in ("registeredbench", "unknownbench"):
        for metric, value in (("acc", 0.5), ("macro_f1", 0.4), ("acc_health", 0.3)):
            rows.append(row("m", bench, "jav_Latn", metric, value))
    board = build_leaderboard(rows)
    keys = [c.key for c in board.display_columns]
    assert keys == [
        "registeredbench/macro_f1", "registeredbench/acc",
        "unknownbench/acc", "unknownbench/acc_health", "unknownbench/macro_f1",
    ]


def test_metric_names_patterns_and_benchmark_scopes() -> None:
    rows = []
    for bench in ("b1", "b2"):
        for metric in ("acc", "macro_f1", "acc_health", "acc_sports"):
            rows.append(row("m", bench, "jav_Latn", metric, 0.5))
    keys = lambda board: [c.key for c in board.display_columns]  # noqa: E731
    assert keys(build_leaderboard(rows, metrics=["macro_f1"])) == ["b1/macro_f1", "b2/macro_f1"]
    assert keys(build_leaderboard(rows, metrics=["acc_*"])) == [
        "b1/acc_health", "b1/acc_sports", "b2/acc_health", "b2/acc_sports",
    ]
    assert keys(build_leaderboard(rows, metrics=["b2:acc", "b1:macro_f1"])) == [
        "b1/macro_f1", "b2/acc",
    ]
    with pytest.raises(KakugoError, match="no stored metric matches bleu"):
        build_leaderboard(rows, metrics=["bleu"])


def test_per_language_columns_follow_their_average() -> None:
    rows, _ = random_rows()
    board = build_leaderboard(rows, per_language=True)
    assert [c.key for c in board.display_columns] == ["toybench/acc"] + [
        f"toybench/acc/{lang}" for lang in LANGS
    ]
    assert len(build_leaderboard(rows).display_columns) == 1


def test_benchmarks_in_paper_order_then_alphabetical() -> None:
    rows = [row("m", b, "jav_Latn", "acc", 0.5) for b in ("zeta", "flores", "sib200", "alpha")]
    board = build_leaderboard(rows, metrics=["acc"])
    assert board.benchmarks == ["sib200", "flores", "alpha", "zeta"]


def test_bad_input_is_a_clear_error() -> None:
    rows, _ = random_rows()
    with pytest.raises(KakugoError, match="baseline 'nobody' has no results; models with"):
        build_leaderboard(rows, baseline="nobody")
    with pytest.raises(KakugoError, match="no results to show"):
        build_leaderboard([])
    with pytest.raises(KakugoError, match="unknown leaderboard format 'xml'; choose one of"):
        render(build_leaderboard(rows), "xml")


def test_non_finite_values_are_left_out() -> None:
    rows = [row("m", "b", "jav_Latn", "acc", float("nan")), row("m", "b", "sun_Latn", "acc", 0.4)]
    cell = build_leaderboard(rows).cell("m", Column("b", "acc"))
    assert cell is not None and cell.value == pytest.approx(0.4) and cell.languages == ("sun_Latn",)


def test_fractions_are_shown_as_percentages_and_chrf_as_stored() -> None:
    rows = [
        row("m", "sib200", "jav_Latn", "acc", 0.625, 0.031),
        row("m", "sib200", "sun_Latn", "acc", 0.5, 0.029),
        row("m", "flores", "jav_Latn", "chrf_en_xx", 0.9),  # a (terrible) chrF++ below 1
        row("m", "other", "jav_Latn", "score", 0.4),
        row("m", "other", "sun_Latn", "score", 3.5),  # one value above 1: not a fraction
    ]
    board = build_leaderboard(rows, metrics=["*"], per_language=True)
    assert board.scale(Column("sib200", "acc")) == 100.0
    assert board.scale(Column("sib200", "acc", "jav_Latn")) == 100.0
    assert board.scale(Column("flores", "chrf_en_xx")) == 1.0
    assert board.scale(Column("other", "score", "jav_Latn")) == 1.0
    md = render(board, "markdown")
    # headers say n and how many languages a mean is over
    assert "| sib200 acc (%) n=200 (2 langs) |" in md
    assert "| flores chrf_en_xx n=100 (1 lang) |" in md
    cells = md.splitlines()[2].split(" | ")

    def wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return centre - half, centre + half

    lo, hi = wilson(0.625, 100)
    assert cells[2] == f"62.5 [{100 * lo:.1f}–{100 * hi:.1f}]"  # Wilson, not ± stored se
    ses = [(b - a) / (2 * 1.96) for a, b in (wilson(0.625, 100), wilson(0.5, 100))]
    mean, half = (0.625 + 0.5) / 2, 1.96 * math.hypot(*ses) / 2
    assert cells[1] == f"{100 * mean:.1f} [{100 * (mean - half):.1f}–{100 * (mean + half):.1f}]"
