"""The card's bar chart: base against student on every benchmark, with standard-error bars."""

from __future__ import annotations

from pathlib import Path

from kakugo_core.toolkit.comparison import Comparison, benchmark_label, is_fraction


def plot_base_vs_student(
    comparison: Comparison, path: Path, *, base_label: str, student_label: str
) -> Path | None:
    """Draw one pair of bars per benchmark, language and metric that both models have; return
    the PNG's path, or None when there is nothing to compare. The PNG carries no timestamp or
    version metadata, so the same numbers give the same bytes."""
    rows = [r for r in comparison.rows if comparison.base in r.cells]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fractions = {b for b in {r.benchmark for r in rows}
                 if is_fraction([r for r in rows if r.benchmark == b])}
    scales = [100.0 if r.benchmark in fractions else 1.0 for r in rows]
    names = [f"{benchmark_label(r.benchmark)}\n{r.language}"
             + (f"\n{r.metric}" if len({x.metric for x in rows if x.benchmark == r.benchmark}) > 1
                else "")
             for r in rows]
    width = 0.38
    xs = range(len(rows))
    fig, ax = plt.subplots(figsize=(max(4.0, 1.5 * len(rows) + 1.5), 3.6), dpi=100)
    try:
        for offset, model, label, colour in (
            (-width / 2, comparison.base, base_label, "#9aa5b1"),
            (width / 2, comparison.student, student_label, "#d9480f"),
        ):
            heights = [r.cells[model].value * k for r, k in zip(rows, scales, strict=True)]
            errors = [(r.cells[model].stderr or 0.0) * k for r, k in zip(rows, scales, strict=True)]
            bars = ax.bar([x + offset for x in xs], heights, width, yerr=errors, capsize=3,
                          label=label, color=colour)
            ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=2)
        ax.set_xticks(list(xs), names, fontsize=8)
        ax.set_ylabel("score (accuracies ×100)" if fractions else "score")
        ax.set_title("Base vs. student (error bars: ±1 standard error)", fontsize=10)
        ax.legend(fontsize=8, frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", metadata={"Software": None})
    finally:
        plt.close(fig)
    return path
