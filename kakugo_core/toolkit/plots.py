"""The card's bar chart: base against student on every benchmark, with standard-error bars,
one panel per benchmark so each y axis says what it measures (accuracy ×100, chrF++)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from kakugo_core.toolkit.comparison import Comparison, ComparisonRow, benchmark_label, is_fraction

#: how a metric type is named on a chart's y axis
METRIC_NAMES = {"accuracy": "accuracy", "f1": "F1", "macro_f1": "macro-F1", "chrf": "chrF++",
                "bleu": "BLEU", "exact_match": "exact match"}


def y_label(rows: list[ComparisonRow], fraction: bool) -> str:
    """The y-axis label of one benchmark's panel: what its bars measure and on which scale."""
    from kakugo_core.toolkit.cards import metric_type

    names = list(dict.fromkeys(
        METRIC_NAMES.get(r.metric) or METRIC_NAMES.get(metric_type(r.metric))
        or r.metric.replace("_", " ") for r in rows))
    return ", ".join(names) + (" (×100, %)" if fraction else " (0–100)" if set(names) <= {
        "chrF++", "BLEU"} else "")


def base_vs_student_figure(comparison: Comparison, *, base_label: str,
                           student_label: str) -> Any:
    """The chart as a matplotlib figure (None when the base has no result to compare): one
    panel per benchmark, each with its own y axis and label, and one legend below them."""
    # bars side by side only where the two cells are comparable (same shots, prompt, engine)
    rows = [r for r in comparison.rows if comparison.base in r.cells
            and r.delta(comparison.student, comparison.base) is not None]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    benchmarks = list(dict.fromkeys(r.benchmark for r in rows))
    groups = [[r for r in rows if r.benchmark == b] for b in benchmarks]
    widths = [max(1.6, 1.3 * len(g) + 0.6) for g in groups]
    fig, axes = plt.subplots(1, len(groups), figsize=(max(4.5, sum(widths) + 1.0), 3.8),
                             dpi=100, width_ratios=widths, squeeze=False)
    width = 0.38
    for ax, benchmark, group in zip(axes[0], benchmarks, groups, strict=True):
        fraction = is_fraction(group)
        k = 100.0 if fraction else 1.0
        several = len({r.metric for r in group}) > 1
        xs = range(len(group))
        for offset, model, label, colour in (
            (-width / 2, comparison.base, base_label, "#9aa5b1"),
            (width / 2, comparison.student, student_label, "#d9480f"),
        ):
            heights = [r.cells[model].value * k for r in group]
            # no error bar where no standard error is known (macro-F1), rather than a "±0" one;
            # a share of items (accuracy) takes Wilson's, which is never 0 at 0 % or 100 %
            errors = [math.nan if (se := r.shown_stderr(model)) is None else se * k
                      for r in group]
            bars = ax.bar([x + offset for x in xs], heights, width, yerr=errors, capsize=3,
                          label=label, color=colour)
            ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=2)
        ax.set_xticks(list(xs), [r.language + (f"\n{r.metric}" if several else "")
                                 for r in group], fontsize=8)
        ax.set_title(benchmark_label(benchmark), fontsize=9)
        ax.set_ylabel(y_label(group, fraction), fontsize=8)
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle("Base vs. student (error bars: ±1 standard error)", fontsize=10)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def plot_base_vs_student(
    comparison: Comparison, path: Path, *, base_label: str, student_label: str
) -> Path | None:
    """Draw one pair of bars per benchmark, language and metric that both models have; return
    the PNG's path, or None when there is nothing to compare. The PNG carries no timestamp or
    version metadata, so the same numbers give the same bytes."""
    fig = base_vs_student_figure(comparison, base_label=base_label, student_label=student_label)
    if fig is None:
        return None
    import matplotlib.pyplot as plt

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", metadata={"Software": None}, bbox_inches="tight",
                    pad_inches=0.1)
    finally:
        plt.close(fig)
    return path
