"""Comparison tables for a release, queried from the results store: the student against its base
and every other model with results on the same benchmarks and languages, with deltas and
standard errors.

One evaluation per model, benchmark and language, chosen exactly as ``kakugo leaderboard`` chooses
it (:func:`kakugo_core.leaderboard.select_evaluations`: the latest; ties go to the higher n-shot,
then prompt hash, then revision), so a card never disagrees with the leaderboard. Every stored
metric is shown, the benchmark plugin's ``primary_metrics`` first (diagnostic counts such as the
judge's ``unparsed`` verdicts are left out). Fractions
(accuracies, F1) are shown ×100; chrF, BLEU and TER as stored.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from kakugo_core.csv_safe import safe_row
from kakugo_core.errors import KakugoError
from kakugo_core.store import ResultRow, ResultsStore
from kakugo_core.toolkit.benchmarks import CARD_PREFIX
from kakugo_core.toolkit.metrics import PROPORTION_METRICS, wilson_interval, wilson_stderr

BENCHMARK_LABELS = {
    "sib200": "SIB-200",
    "belebele": "Belebele",
    "global_mmlu": "Global-MMLU",
    "flores": "FLORES-200",
    "judge": "Teacher as judge (pairwise, student first)",
    "human_preference": "Native speakers (pairwise, student first)",
}


def benchmark_label(name: str) -> str:
    """How tables and cards name a benchmark: a plugin's ``label`` attribute, else a known
    label, else its name."""
    from kakugo_core.plugins import registry

    benchmarks = registry("benchmarks")
    label = getattr(benchmarks.get(name).factory, "label", "") if name in benchmarks else ""
    return str(label or BENCHMARK_LABELS.get(name, name))


@dataclass(frozen=True)
class Cell:
    """One stored score of one model."""

    value: float
    stderr: float | None
    n: int
    n_shot: int
    prompt_hash: str
    revision: str
    created: str
    data_source: str = ""  # "" when not recorded (older results)
    judge: str = ""  # the judge benchmark's judge (``plugin:model``), else ""


@dataclass
class ComparisonRow:
    """One benchmark, language and metric across models."""

    benchmark: str
    language: str
    metric: str
    cells: dict[str, Cell] = field(default_factory=dict)

    @property
    def is_share(self) -> bool:
        """Whether this metric is a share of n items (accuracy, a win rate): shown with a
        Wilson score interval."""
        return self.metric in PROPORTION_METRICS and all(
            0.0 <= c.value <= 1.0 for c in self.cells.values())

    def shown_stderr(self, model: str) -> float | None:
        """The standard error that tables use for ``model``'s cell: for a share of items the
        Wilson interval's (never 0 at 0 % or 100 %), else the stored one."""
        cell = self.cells.get(model)
        if cell is None:
            return None
        if self.is_share and cell.n > 0:
            return wilson_stderr(cell.value * cell.n, cell.n)
        return cell.stderr

    def interval(self, model: str) -> tuple[float, float] | None:
        """The 95 % Wilson interval of ``model``'s cell for a share of items, else None."""
        cell = self.cells.get(model)
        if cell is None or not self.is_share or cell.n <= 0:
            return None
        return wilson_interval(cell.value * cell.n, cell.n)

    def delta(self, model: str, base: str) -> tuple[float, float | None] | None:
        """``model - base`` and the standard error of the difference (independent samples)."""
        a, b = self.cells.get(model), self.cells.get(base)
        if a is None or b is None:
            return None
        se_a, se_b = self.shown_stderr(model), self.shown_stderr(base)
        se = math.sqrt(se_a**2 + se_b**2) if se_a is not None and se_b is not None else None
        return a.value - b.value, se


@dataclass
class Comparison:
    """Everything a card's tables, plot and eval results are made of."""

    student: str
    base: str
    others: list[str]
    rows: list[ComparisonRow]
    #: benchmark -> the card attributes stored with the student's results (``hub_dataset``,
    #: ``task_type``, ...), for benchmarks no installed plugin registers
    stored_card: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def models(self) -> list[str]:
        return [self.student, self.base, *self.others]

    def benchmarks(self) -> list[str]:
        return list(dict.fromkeys(r.benchmark for r in self.rows))

    def rows_of(self, benchmark: str) -> list[ComparisonRow]:
        return [r for r in self.rows if r.benchmark == benchmark]


#: stored numbers that are counts about an evaluation, not scores of the model
DIAGNOSTIC_METRICS = frozenset({"unparsed"})


def _primary_metrics(benchmark: str) -> tuple[str, ...] | None:
    from kakugo_core.plugins import registry

    reg = registry("benchmarks")
    if benchmark not in reg:
        return None
    metrics = getattr(reg.get(benchmark).factory, "primary_metrics", None)
    return tuple(metrics) if metrics else None


def _latest(rows: Sequence[ResultRow]) -> dict[tuple[str, str, str, str], ResultRow]:
    """(model, benchmark, language, metric) -> the row of the leaderboard's chosen evaluation."""
    from kakugo_core.leaderboard import select_evaluations

    return {(model, benchmark, language, metric): row
            for (model, benchmark, language), (_evaluation, by_metric)
            in select_evaluations(rows).items()
            for metric, row in by_metric.items()}


def build_comparison(
    store: ResultsStore,
    student: str,
    base: str,
    *,
    languages: Sequence[str] | None = None,
    others: Sequence[str] | None = None,
) -> Comparison:
    """Compare ``student`` with ``base`` (and ``others``; default: every other model in the
    store with a result on one of the student's benchmark/language pairs)."""
    student_rows = store.rows(models=[student], languages=languages or None)
    if not student_rows:
        where = f" for {', '.join(languages)}" if languages else ""
        raise KakugoError(
            f"the results store {store.path} has no results for model {student!r}{where}; "
            f"run `kakugo bench` on it first (or pass --db with the right store)"
        )
    pairs = {(r.benchmark, r.language) for r in student_rows}
    benchmarks = sorted({b for b, _ in pairs})
    langs = sorted({lang for _, lang in pairs})
    all_rows = [r for r in store.rows(benchmarks=benchmarks, languages=langs)
                if (r.benchmark, r.language) in pairs]
    latest = _latest(all_rows)
    if others is None:
        others = sorted({m for (m, *_rest) in latest} - {student, base})
    models = [student, base, *[m for m in others if m not in (student, base)]]

    rows: list[ComparisonRow] = []
    for benchmark in benchmarks:
        stored = sorted({r.metric for r in student_rows if r.benchmark == benchmark})
        primary = _primary_metrics(benchmark)
        metrics = [m for m in primary if m in stored] if primary else []
        # every stored score is shown (SIB-200's macro-F1 after its accuracy), the primary
        # ones first; diagnostic counts (the judge's unparsed verdicts) are not scores
        metrics += [m for m in stored if m not in metrics and m not in DIAGNOSTIC_METRICS]
        for language in sorted(lang for b, lang in pairs if b == benchmark):
            for metric in metrics:
                row = ComparisonRow(benchmark, language, metric)
                for model in models:
                    found = latest.get((model, benchmark, language, metric))
                    if found is not None:
                        row.cells[model] = Cell(found.value, found.stderr, found.n, found.n_shot,
                                                found.prompt_hash, found.revision, found.created,
                                                found.versions.get("data_source", ""),
                                                found.versions.get("judge", ""))
                if student in row.cells:
                    rows.append(row)
    used = {m for r in rows for m in r.cells}
    stored_card: dict[str, dict[str, str]] = {}
    for row in student_rows:
        found = {key[len(CARD_PREFIX):]: value for key, value in row.versions.items()
                 if key.startswith(CARD_PREFIX) and value}
        if found:
            stored_card.setdefault(row.benchmark, {}).update(found)
    return Comparison(student, base, [m for m in models[2:] if m in used], rows, stored_card)


# -- rendering ---------------------------------------------------------------------------------
UNSCALED_PREFIXES = ("chrf", "bleu", "ter")  # as kakugo_core.leaderboard shows them


def is_fraction(rows: Sequence[ComparisonRow]) -> bool:
    """Whether these rows' values are fractions shown ×100 (never chrF/BLEU/TER)."""
    if any(r.metric.startswith(UNSCALED_PREFIXES) for r in rows):
        return False
    values = [c.value for r in rows for c in r.cells.values()]
    return bool(values) and all(0.0 <= v <= 1.0 for v in values)


def _fmt(value: float, scale: float) -> str:
    return f"{value * scale:.1f}"


def _cell_text(row: ComparisonRow, model: str, scale: float) -> str:
    cell = row.cells.get(model)
    if cell is None:
        return "–"
    bounds = row.interval(model)
    if bounds is not None:
        return f"{_fmt(cell.value, scale)} [{_fmt(bounds[0], scale)}–{_fmt(bounds[1], scale)}]"
    if cell.stderr is None:
        return _fmt(cell.value, scale)
    return f"{_fmt(cell.value, scale)} ± {_fmt(cell.stderr, scale)}"


def _delta_text(delta: tuple[float, float | None] | None, scale: float) -> str:
    if delta is None:
        return "–"
    diff, se = delta
    text = f"{diff * scale:+.1f}"
    if se is not None:
        text += f" ± {se * scale:.1f}"
        if se > 0 and abs(diff) > 1.96 * se:
            text = f"**{text}**"
    return text


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(comparison: Comparison, labels: dict[str, str] | None = None) -> str:
    """One markdown table per benchmark: a row per language and metric, a column per model,
    and the student's change against the base."""
    labels = labels or {}
    name = {m: labels.get(m, m) for m in comparison.models}
    parts: list[str] = []
    for benchmark in comparison.benchmarks():
        rows = comparison.rows_of(benchmark)
        scale = 100.0 if is_fraction(rows) else 1.0
        unit = " (×100)" if scale == 100.0 else ""
        # a benchmark with no base score while others have one (the judge compares the student
        # with the base) gets no always-empty base and Δ columns; a base with no result at all
        # keeps them, empty, beside the warning that says so
        with_base = any(comparison.base in r.cells for r in rows) or not any(
            comparison.base in r.cells for r in comparison.rows)
        header = ["Language", "Metric", "n", "Shots",
                  *([f"Base: `{_md(name[comparison.base])}`"] if with_base else []),
                  f"Student: `{_md(name[comparison.student])}`",
                  *(["Δ student − base"] if with_base else []),
                  *[f"`{_md(name[m])}`" for m in comparison.others]]
        lines = [f"#### {benchmark_label(benchmark)}{unit}", "",
                 "| " + " | ".join(header) + " |",
                 "|" + "|".join(["---", "---", "---:", "---:"] + ["---:"] * (len(header) - 4))
                 + "|"]
        for row in rows:
            student_cell = row.cells[comparison.student]
            base = [_cell_text(row, comparison.base, scale)] if with_base else []
            delta = ([_delta_text(row.delta(comparison.student, comparison.base), scale)]
                     if with_base else [])
            cells = [row.language, row.metric, str(student_cell.n), str(student_cell.n_shot),
                     *base, _cell_text(row, comparison.student, scale), *delta,
                     *[_cell_text(row, m, scale) for m in comparison.others]]
            lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def records(
    comparison: Comparison, labels: dict[str, str] | None = None
) -> list[dict[str, object]]:
    """Flat records, one per model and table cell (what ``comparison.csv``/``.json`` hold);
    ``labels`` rename models (a local student path becomes its repository id)."""
    labels = labels or {}
    out: list[dict[str, object]] = []
    for row in comparison.rows:
        for model, cell in row.cells.items():
            role = ("student" if model == comparison.student
                    else "base" if model == comparison.base else "other")
            out.append({"model": labels.get(model, model), "role": role, "benchmark": row.benchmark,
                        "language": row.language, "metric": row.metric, **asdict(cell)})
    return out


def render_csv(comparison: Comparison, labels: dict[str, str] | None = None) -> str:
    recs = records(comparison, labels)
    buffer = io.StringIO()
    fields = ["model", "role", "benchmark", "language", "metric", "value", "stderr", "n",
              "n_shot", "prompt_hash", "revision", "created", "data_source", "judge"]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(safe_row(rec) for rec in recs)  # model names: no cell runs as a formula
    return buffer.getvalue()


def render_json(comparison: Comparison, labels: dict[str, str] | None = None) -> str:
    labels = labels or {}
    return json.dumps({"student": labels.get(comparison.student, comparison.student),
                       "base": labels.get(comparison.base, comparison.base),
                       "others": [labels.get(m, m) for m in comparison.others],
                       "results": records(comparison, labels)},
                      indent=2, ensure_ascii=False) + "\n"
