"""Comparison tables for a release, queried from the results store: the student against its base
and every other model with results on the same benchmarks and languages, with deltas and
standard errors.

One evaluation per model, benchmark, setting and language, chosen and compared exactly as
``kakugo leaderboard`` does (:func:`kakugo_core.leaderboard.select_by_setting`: the latest; a row
per setting the student was scored at, every model's cell at that setting;
:func:`kakugo_core.leaderboard.incomparable`: a Δ only between cells of the same n-shot, engine and
prompt hash, otherwise none and a footnote), so a card never disagrees with the leaderboard.
Every stored metric is shown, the benchmark plugin's ``primary_metrics`` first (diagnostic counts
such as the judge's ``unparsed`` verdicts are left out). Fractions
(accuracies, F1) are shown ×100; chrF, BLEU and TER as stored.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from kakugo_core.csv_safe import safe_row
from kakugo_core.errors import KakugoError
from kakugo_core.store import ENGINE_VERSION, ResultRow, ResultsStore
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
    engine: int = ENGINE_VERSION  # the scoring engine's version


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

    def no_delta_reason(self, model: str, base: str) -> str | None:
        """Why both cells are there but may not be subtracted (other settings), else None."""
        from kakugo_core.leaderboard import incomparable

        a, b = self.cells.get(model), self.cells.get(base)
        return incomparable(a, b) if a is not None and b is not None else None

    def delta(self, model: str, base: str) -> tuple[float, float | None] | None:
        """``model - base`` and the standard error of the difference (independent samples);
        None when a cell is missing or the two were scored at other settings."""
        a, b = self.cells.get(model), self.cells.get(base)
        if a is None or b is None or self.no_delta_reason(model, base) is not None:
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
    #: benchmark -> footnotes under its table: settings shown as separate rows, Δ left out and why
    notes: dict[str, list[str]] = field(default_factory=dict)

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


def _chosen(rows: Sequence[ResultRow]) -> dict[tuple[str, str, str, Any], dict[str, ResultRow]]:
    """(model, benchmark, language, setting) -> the leaderboard's chosen rows by metric."""
    from kakugo_core.leaderboard import select_by_setting

    return {key: by_metric for key, (_evaluation, by_metric) in select_by_setting(rows).items()}


def _cell(row: ResultRow) -> Cell:
    return Cell(row.value, row.stderr, row.n, row.n_shot, row.prompt_hash, row.revision,
                row.created, row.versions.get("data_source", ""), row.versions.get("judge", ""),
                row.engine)


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
    chosen = _chosen(all_rows)
    if others is None:
        others = sorted({m for (m, *_rest) in chosen} - {student, base})
    models = [student, base, *[m for m in others if m not in (student, base)]]

    rows: list[ComparisonRow] = []
    notes: dict[str, list[str]] = {}
    for benchmark in benchmarks:
        stored = sorted({r.metric for r in student_rows if r.benchmark == benchmark})
        primary = _primary_metrics(benchmark)
        metrics = [m for m in primary if m in stored] if primary else []
        # every stored score is shown (SIB-200's macro-F1 after its accuracy), the primary
        # ones first; diagnostic counts (the judge's unparsed verdicts) are not scores
        metrics += [m for m in stored if m not in metrics and m not in DIAGNOSTIC_METRICS]
        for language in sorted(lang for b, lang in pairs if b == benchmark):
            settings = sorted({k[3] for k in chosen if k[:3] == (student, benchmark, language)},
                              reverse=True)
            if len(settings) > 1:
                notes.setdefault(benchmark, []).append(
                    f"{language}: the student was scored at {', '.join(s.label for s in settings)};"
                    " a row each, compared only with cells of the same setting.")
            for setting in settings:
                before = len(rows)
                for metric in metrics:
                    row = ComparisonRow(benchmark, language, metric)
                    for model in models:
                        found = chosen.get((model, benchmark, language, setting), {}).get(metric)
                        if found is not None:
                            row.cells[model] = _cell(found)
                    if student in row.cells:
                        rows.append(row)
                base_settings = [k[3].label for k in chosen
                                 if k[:3] == (base, benchmark, language)]
                note = _base_note(rows[before:], student, base, setting.label, base_settings)
                if note:
                    notes.setdefault(benchmark, []).append(note)
    used = {m for r in rows for m in r.cells}
    stored_card: dict[str, dict[str, str]] = {}
    for result in student_rows:
        card = {key[len(CARD_PREFIX):]: value for key, value in result.versions.items()
                if key.startswith(CARD_PREFIX) and value}
        if card:
            stored_card.setdefault(result.benchmark, {}).update(card)
    return Comparison(student, base, [m for m in models[2:] if m in used], rows, stored_card,
                      notes)


def _base_note(rows: Sequence[ComparisonRow], student: str, base: str, setting: str,
               base_settings: Sequence[str]) -> str:
    """The footnote for one language and setting of the student when it gets no Δ against the
    base although the base was scored on that language: other settings, or another prompt."""
    if not rows:
        return ""
    where = f"{rows[0].language} {setting}"
    reasons = {r for row in rows if (r := row.no_delta_reason(student, base))}
    if reasons:
        return f"{where}: no Δ, the base was scored differently ({'; '.join(sorted(reasons))})."
    if base_settings and not any(base in row.cells for row in rows):
        return (f"{where}: no Δ, the base has results for {rows[0].language} only at "
                f"{', '.join(sorted(base_settings))}.")
    return ""


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
        notes = comparison.notes.get(benchmark, [])
        if notes:
            lines += ["", *(f"- {_md(note)}" for note in notes)]
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
              "n_shot", "prompt_hash", "revision", "created", "data_source", "judge", "engine"]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(safe_row(rec) for rec in recs)  # model names: no cell runs as a formula
    return buffer.getvalue()


def render_json(comparison: Comparison, labels: dict[str, str] | None = None) -> str:
    labels = labels or {}
    return json.dumps({"student": labels.get(comparison.student, comparison.student),
                       "base": labels.get(comparison.base, comparison.base),
                       "others": [labels.get(m, m) for m in comparison.others],
                       "results": records(comparison, labels),
                       "notes": comparison.notes},
                      indent=2, ensure_ascii=False) + "\n"
