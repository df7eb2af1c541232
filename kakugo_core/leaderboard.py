"""Leaderboards: results-store rows as one row per model and one column per (benchmark, metric).

How a leaderboard is computed (``docs/leaderboard.md`` says the same for users):

* **Comparable or separate** (:func:`setting_of`, :func:`incomparable`). Evaluations of one
  benchmark at different settings (n-shot, scoring-engine version) are never averaged together:
  when a table holds several, each setting is its own column (``sib200 acc 3-shot``,
  ``sib200 acc 1-shot``). A Δ compares a model's cell with the baseline's only when both have the
  same n-shot, engine and prompt hash (the prompt hash covers the template and the ``--limit``
  sample); other languages are left out of it, and every such case is a footnote
  (:attr:`Leaderboard.notes`).
* **One cell per model, benchmark, setting and language.** When several evaluations exist (another
  revision or prompt hash), the one created last wins; ties go to the larger prompt hash and
  revision, so the choice is deterministic. ``n_shot=`` keeps only evaluations with that number
  of shots.
* **Metrics.** By default each benchmark shows its ``primary_metrics`` (from the registered
  benchmark plugin), or every stored metric when the benchmark is not registered. ``metrics=``
  takes names or shell patterns (``acc_*``), optionally scoped to one benchmark (``flores:chrf_*``).
* **Averages over languages.** The mean of the per-language values; its standard error is
  ``sqrt(sum se_i^2) / k`` (languages are independent samples); its sample count is the sum.
  Headers show n and how many languages a mean is over.
* **Intervals.** A share of n items (accuracy, win rate) is shown with its 95 % Wilson score
  interval, which stays honest at 0 % and 100 %; a mean of such shares with mean ± 1.96 × its
  standard error, each language's taken from Wilson's interval. Other scores show ± one SE.
* **Deltas against a baseline model** use only the languages both models have: the mean of the
  per-language differences, with standard error ``sqrt(sum(se_model^2 + se_base^2)) / k``.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Protocol

from kakugo_core.errors import KakugoError
from kakugo_core.files import write_text_atomic
from kakugo_core.store import ENGINE_VERSION, ResultRow, ResultsStore
from kakugo_core.toolkit.metrics import PROPORTION_METRICS, Z95, wilson_interval

FORMATS = ("table", "markdown", "csv", "json", "html")

#: metrics where a smaller value is the better one (deltas are coloured the other way round)
LOWER_IS_BETTER = frozenset(
    {"loss_rate", "ter", "perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte"}
)

#: digits after the point in tables, Markdown and HTML (CSV and JSON keep full precision)
DECIMALS = 1
#: metrics on their own 0-100 scale, never shown as percentages
UNSCALED_PREFIXES = ("chrf", "bleu", "ter")

#: metrics where neither direction is better (a judge's ties): their deltas are not coloured
NEUTRAL = frozenset({"tie_rate"})

SELECTION_RULE = (
    "Each model, benchmark, setting (n-shot, engine) and language shows one evaluation: the "
    "latest created (ties: prompt hash, then revision); means and Δ never combine settings"
)


# -- comparable or separate ----------------------------------------------------------------------
@dataclass(frozen=True, order=True)
class Setting:
    """How a benchmark was run, as far as averages are concerned: evaluations of one benchmark
    at different settings are separate columns, never averaged together."""

    n_shot: int
    engine: int

    @property
    def label(self) -> str:
        """``3-shot``; ``3-shot, engine 1`` for another scoring engine than this Kakugo's."""
        engine = "" if self.engine == ENGINE_VERSION else f", engine {self.engine}"
        return f"{self.n_shot}-shot{engine}"

    @property
    def tag(self) -> str:
        """The setting in machine names: ``3-shot`` or ``3-shot-engine1``."""
        return self.label.replace(", engine ", "-engine")


class Evaluated(Protocol):
    """Anything that says how it was scored (a store row, an :class:`Evaluation`, a card cell)."""

    @property
    def n_shot(self) -> int: ...
    @property
    def prompt_hash(self) -> str: ...
    @property
    def engine(self) -> int: ...


def setting_of(evaluated: Evaluated) -> Setting:
    """The setting a cell is grouped under: its column, its mean over languages."""
    return Setting(evaluated.n_shot, evaluated.engine)


def incomparable(a: Evaluated, b: Evaluated) -> str | None:
    """Why two evaluations of one benchmark and language may not be subtracted (a Δ), or None
    when they may: they need the same n-shot, scoring engine and prompt hash (the hash covers
    the prompt template and the ``--limit`` sample)."""
    if a.n_shot != b.n_shot:
        return f"{a.n_shot}-shot vs {b.n_shot}-shot"
    if a.engine != b.engine:
        return f"engine {a.engine} vs {b.engine}"
    if a.prompt_hash != b.prompt_hash:
        return f"prompt hash {a.prompt_hash} vs {b.prompt_hash} (another prompt or --limit sample)"
    return None


# -- data model --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    """One (benchmark, metric) column, averaged over languages or for one language; with a
    ``setting`` when the benchmark has results at several (each its own column)."""

    benchmark: str
    metric: str
    language: str | None = None  # None: the mean over the benchmark's languages
    setting: Setting | None = None  # None: the benchmark's only setting in the table

    @property
    def group(self) -> str:
        """The benchmark as machine names use it: ``sib200`` or ``sib200@1-shot``."""
        return self.benchmark + (f"@{self.setting.tag}" if self.setting else "")

    @property
    def key(self) -> str:
        """A stable machine name: ``sib200/acc``, ``sib200/acc/jav_Latn``, ``sib200@1-shot/acc``."""
        parts = [self.group, self.metric] + ([self.language] if self.language else [])
        return "/".join(parts)

    @property
    def label(self) -> str:
        """A human header: ``sib200 acc``, ``sib200 acc 1-shot jav_Latn``."""
        parts = [self.benchmark, self.metric]
        parts += [self.setting.label] if self.setting else []
        return " ".join(parts + ([self.language] if self.language else []))

    def at(self, language: str | None) -> Column:
        """This column for one language (None: the mean)."""
        return Column(self.benchmark, self.metric, language, self.setting)

    @property
    def higher_is_better(self) -> bool | None:
        """True, False, or None for a metric with no better direction."""
        if self.metric in NEUTRAL:
            return None
        return self.metric not in LOWER_IS_BETTER


@dataclass(frozen=True)
class Cell:
    """A value with its standard error, sample count and the languages it covers."""

    value: float
    stderr: float | None
    n: int
    languages: tuple[str, ...]


@dataclass(frozen=True)
class Delta:
    """A model's difference from the baseline over the languages both have."""

    value: float
    stderr: float | None
    languages: tuple[str, ...]

    @property
    def significant(self) -> bool:
        """Whether the difference exceeds 1.96 standard errors (about 95 % two-sided)."""
        return self.stderr is not None and abs(self.value) > 1.96 * self.stderr


@dataclass(frozen=True)
class Evaluation:
    """Which stored evaluation a (model, benchmark, language) cell came from."""

    revision: str
    n_shot: int
    prompt_hash: str
    created: str
    versions: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    engine: int = ENGINE_VERSION


@dataclass
class Leaderboard:
    """Everything a renderer needs; build it with :func:`build_leaderboard`."""

    models: list[str]
    columns: list[Column]  # averages and per-language columns, in display order
    cells: dict[tuple[str, Column], Cell]
    deltas: dict[tuple[str, Column], Delta]
    languages: dict[str, tuple[str, ...]]  # benchmark -> every language seen for it
    #: (model, benchmark, language, setting) -> the evaluation shown
    evaluations: dict[tuple[str, str, str, Setting], Evaluation]
    baseline: str | None = None
    per_language: bool = False
    title: str = "Kakugo leaderboard"
    #: footnotes: settings shown as separate columns, Δ left out and why
    notes: list[str] = field(default_factory=list)
    #: benchmark -> its settings in the table, in column order
    settings: dict[str, tuple[Setting, ...]] = field(default_factory=dict)
    _scales: dict[tuple[str, str], float] = field(default_factory=dict, repr=False, compare=False)

    @property
    def display_columns(self) -> list[Column]:
        """The columns tables show: averages, plus per-language ones when asked for."""
        if self.per_language:
            return list(self.columns)
        return [c for c in self.columns if c.language is None]

    @property
    def benchmarks(self) -> list[str]:
        return list(dict.fromkeys(c.benchmark for c in self.columns))

    def cell(self, model: str, column: Column) -> Cell | None:
        return self.cells.get((model, column))

    def evaluation(self, model: str, column: Column) -> Evaluation | None:
        """The evaluation behind a per-language cell (None for a mean or a missing cell)."""
        if column.language is None:
            return None
        settings = self.settings.get(column.benchmark, ())
        if column.setting is not None:
            settings = (column.setting,)
        if len(settings) != 1:
            return None
        return self.evaluations.get((model, column.benchmark, column.language, settings[0]))

    def has_result(self, model: str, benchmark: str, language: str) -> bool:
        """Whether the model has any evaluation of this benchmark and language."""
        return any((model, benchmark, language, setting) in self.evaluations
                   for setting in self.settings.get(benchmark, ()))

    def scale(self, column: Column) -> float:
        """The display factor of a column: 100 for fractions (accuracies, F1, rates: shown as
        percentages, deltas in points), 1 for everything else (chrF++, BLEU). Decided per
        (benchmark, metric) so an average and its languages always share a scale."""
        if not self._scales:
            spans: dict[tuple[str, str], list[float]] = {}
            for (_, col), cell in self.cells.items():
                spans.setdefault((col.benchmark, col.metric), []).append(cell.value)
            for key, values in spans.items():
                fraction = not key[1].startswith(UNSCALED_PREFIXES) and all(
                    0.0 <= v <= 1.0 for v in values
                )
                self._scales[key] = 100.0 if fraction else 1.0
        return self._scales.get((column.benchmark, column.metric), 1.0)

    def delta(self, model: str, column: Column) -> Delta | None:
        return self.deltas.get((model, column))


# -- building ----------------------------------------------------------------------------------
def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _created_key(created: str) -> datetime:
    try:
        stamp = datetime.fromisoformat(created)
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


Chosen = dict[tuple[str, str, str, Setting], tuple[Evaluation, dict[str, ResultRow]]]


def select_by_setting(rows: Iterable[ResultRow]) -> Chosen:
    """For each (model, benchmark, language, setting), the evaluation shown and its rows by
    metric: the latest created (ties: larger prompt hash, then revision)."""
    groups: dict[tuple[str, str, str, Setting], dict[tuple[str, str], list[ResultRow]]] = {}
    rows = list(rows)
    shown = benchmark_names(rows)
    for row in rows:
        key = (row.model, shown[id(row)], row.language, setting_of(row))
        groups.setdefault(key, {}).setdefault((row.revision, row.prompt_hash), []).append(row)
    chosen: Chosen = {}
    for key, candidates in groups.items():

        def rank(item: tuple[tuple[str, str], list[ResultRow]]) -> tuple[Any, ...]:
            (revision, prompt_hash), members = item
            latest = max(_created_key(r.created) for r in members)
            return (latest, prompt_hash, revision)

        (revision, prompt_hash), members = max(candidates.items(), key=rank)
        latest = max(members, key=lambda r: _created_key(r.created))
        evaluation = Evaluation(revision, key[3].n_shot, prompt_hash, latest.created,
                                latest.versions, key[3].engine)
        chosen[key] = (evaluation, {r.metric: r for r in members})
    return chosen


def select_evaluations(
    rows: Iterable[ResultRow],
) -> dict[tuple[str, str, str], tuple[Evaluation, dict[str, ResultRow]]]:
    """For each (model, benchmark, language), the latest of its evaluations at any setting
    (ties: higher n-shot, then engine); leaderboards and cards show every setting
    (:func:`select_by_setting`)."""
    latest: dict[tuple[str, str, str], tuple[Evaluation, dict[str, ResultRow]]] = {}
    for (model, benchmark, language, _setting), entry in select_by_setting(rows).items():
        key = (model, benchmark, language)
        old = latest.get(key)
        if old is None or _rank(entry[0]) > _rank(old[0]):
            latest[key] = entry
    return latest


def _rank(evaluation: Evaluation) -> tuple[Any, ...]:
    return (_created_key(evaluation.created), evaluation.n_shot, evaluation.engine,
            evaluation.prompt_hash, evaluation.revision)


def benchmark_names(rows: Sequence[ResultRow]) -> dict[int, str]:
    """The name each row's benchmark is shown under (keyed by ``id(row)``): its stored name,
    unless rows of one name come from several plugin distributions (stores merged from machines
    with different plugins); then each non-built-in distribution's rows show as
    ``distribution:name``, so two plugins' results are never mixed under one name."""
    dists: dict[str, set[str]] = {}
    for row in rows:
        dists.setdefault(row.benchmark, set()).add(row.versions.get("benchmark_plugin", ""))
    shown = {}
    for row in rows:
        dist = row.versions.get("benchmark_plugin", "")
        mixed = len(dists[row.benchmark] - {""}) > 1
        keep = not mixed or dist in ("", "kakugo")
        shown[id(row)] = row.benchmark if keep else f"{dist}:{row.benchmark}"
    return shown


def primary_metrics(benchmark: str) -> tuple[str, ...] | None:
    """The registered benchmark's ``primary_metrics``, or None when it is not registered."""
    from kakugo_core.plugins import registry

    try:
        factory = registry("benchmarks").get(benchmark).factory
    except KakugoError:
        return None
    metrics = getattr(factory, "primary_metrics", None)
    return tuple(metrics) if metrics else None


def _benchmark_order(names: set[str]) -> list[str]:
    """The paper's order (SIB-200, Belebele, Global-MMLU, FLORES), then the rest alphabetically."""
    from kakugo_core.languages import BENCHMARK_KEYS

    known = [b for b in BENCHMARK_KEYS if b in names]
    return known + sorted(names - set(known))


def _matches(pattern: str, benchmark: str, metric: str) -> bool:
    scope, _, metric_pattern = pattern.rpartition(":")
    if scope and not fnmatchcase(benchmark, scope):
        return False
    return fnmatchcase(metric, metric_pattern)


def _choose_metrics(
    benchmark: str, available: Sequence[str], requested: Sequence[str] | None
) -> list[str]:
    if requested:
        return [m for m in available if any(_matches(p, benchmark, m) for p in requested)]
    primary = primary_metrics(benchmark)
    if primary:
        shown = [m for m in primary if m in available]
        if shown:
            return shown
    return list(available)


def _mean_cell(parts: Sequence[tuple[str, Cell]]) -> Cell:
    k = len(parts)
    value = sum(c.value for _, c in parts) / k
    errors = [c.stderr for _, c in parts]
    stderr = (
        None if any(e is None for e in errors)
        else math.sqrt(sum(e * e for e in errors if e is not None)) / k
    )
    return Cell(value, stderr, sum(c.n for _, c in parts), tuple(lang for lang, _ in parts))


def _delta(model: dict[str, Cell], base: dict[str, Cell]) -> Delta | None:
    common = [lang for lang in model if lang in base]
    if not common:
        return None
    k = len(common)
    value = sum(model[lang].value - base[lang].value for lang in common) / k
    errors = [(model[lang].stderr, base[lang].stderr) for lang in common]
    if any(a is None or b is None for a, b in errors):
        stderr = None
    else:
        stderr = math.sqrt(sum(a * a + b * b for a, b in errors if a is not None and b is not None))
        stderr /= k
    return Delta(value, stderr, tuple(common))


def build_leaderboard(
    rows: Iterable[ResultRow],
    baseline: str | None = None,
    metrics: Sequence[str] | None = None,
    per_language: bool = False,
    *,
    n_shot: int | None = None,
    models: Sequence[str] | None = None,
    title: str = "Kakugo leaderboard",
) -> Leaderboard:
    """Build a leaderboard from store rows (see the module docstring for the arithmetic).

    ``models`` fixes the row order (default: baseline first, then alphabetical); ``metrics``
    lists metric names or patterns (default: each benchmark's primary metrics).
    """
    rows = list(rows)
    if not rows:
        raise KakugoError("no results to show: run `kakugo bench` first, or loosen the filters")
    if n_shot is not None:
        shots = sorted({r.n_shot for r in rows})
        rows = [r for r in rows if r.n_shot == n_shot]
        if not rows:
            raise KakugoError(
                f"no results with n-shot {n_shot}; stored: {', '.join(map(str, shots))}"
            )
    rows = [r for r in rows if _finite(r.value) is not None]
    chosen = select_by_setting(rows)

    stored_models = sorted({key[0] for key in chosen})
    if baseline is not None and baseline not in stored_models:
        raise KakugoError(
            f"baseline {baseline!r} has no results; models with results: {', '.join(stored_models)}"
        )
    order = [m for m in (models or []) if m in stored_models] or stored_models
    order += [m for m in stored_models if m not in order]
    if baseline is not None:
        order = [baseline] + [m for m in order if m != baseline]

    benchmarks = _benchmark_order({key[1] for key in chosen})
    languages = {
        b: tuple(sorted({key[2] for key in chosen if key[1] == b})) for b in benchmarks
    }
    columns: list[Column] = []
    cells: dict[tuple[str, Column], Cell] = {}
    deltas: dict[tuple[str, Column], Delta] = {}
    notes: list[str] = []
    all_settings: dict[str, tuple[Setting, ...]] = {}
    for benchmark in benchmarks:
        available = sorted({m for key, (_, by_metric) in chosen.items() if key[1] == benchmark
                            for m in by_metric})
        settings = sorted({key[3] for key in chosen if key[1] == benchmark}, reverse=True)
        all_settings[benchmark] = tuple(settings)
        split = len(settings) > 1
        if split:
            notes.append(f"{benchmark} was scored at {len(settings)} settings "
                         f"({', '.join(s.label for s in settings)}): each is its own column; "
                         "means and Δ never combine them.")
        for metric in _choose_metrics(benchmark, available, metrics):
            for setting in settings:
                mean_column = Column(benchmark, metric, None, setting if split else None)
                columns += _fill_column(
                    mean_column, setting, order, languages[benchmark], chosen, baseline, cells,
                    deltas, notes)
    if not columns:
        stored = sorted({r.metric for r in rows})
        raise KakugoError(
            f"no stored metric matches {', '.join(metrics or [])}; stored: {', '.join(stored)}"
        )
    evaluations = {key: evaluation for key, (evaluation, _) in chosen.items()}
    return Leaderboard(
        order, columns, cells, deltas, languages, evaluations, baseline, per_language, title,
        notes=notes, settings=all_settings,
    )


def _fill_column(
    mean_column: Column, setting: Setting, order: Sequence[str], languages: Sequence[str],
    chosen: Chosen, baseline: str | None, cells: dict[tuple[str, Column], Cell],
    deltas: dict[tuple[str, Column], Delta], notes: list[str],
) -> list[Column]:
    """Fill one (benchmark, metric, setting) column's cells and deltas; return its mean column
    and per-language columns, or nothing when no model has a value there."""
    benchmark, metric = mean_column.benchmark, mean_column.metric
    per_model: dict[str, dict[str, tuple[Cell, Evaluation]]] = {}
    for model in order:
        found: dict[str, tuple[Cell, Evaluation]] = {}
        for lang in languages:
            entry = chosen.get((model, benchmark, lang, setting))
            row = entry[1].get(metric) if entry else None
            if entry is None or row is None:
                continue
            found[lang] = (Cell(row.value, _finite(row.stderr), row.n, (lang,)), entry[0])
            cells[(model, mean_column.at(lang))] = found[lang][0]
        if found:
            cells[(model, mean_column)] = _mean_cell([(k, c) for k, (c, _) in found.items()])
        per_model[model] = found
    if not any(per_model.values()):
        return []
    if baseline is not None:
        base = per_model[baseline]
        base_elsewhere = any(key[:2] == (baseline, benchmark) for key in chosen)
        if mean_column.setting and not base and base_elsewhere and any(
                per_model[m] for m in order[1:]):
            notes.append(f"No Δ for {mean_column.label}: {baseline} has no results at that "
                         "setting.")
        for model in order[1:]:
            mine = per_model[model]
            shared = [lang for lang in mine if lang in base]
            why = {lang: r for lang in shared if (r := incomparable(mine[lang][1], base[lang][1]))}
            usable = {lang: mine[lang][0] for lang in shared if lang not in why}
            base_cells = {lang: base[lang][0] for lang in shared if lang not in why}
            delta = _delta(usable, base_cells)
            if delta is not None:
                deltas[(model, mean_column)] = delta
            for lang in usable:
                lang_delta = _delta({lang: usable[lang]}, base_cells)
                if lang_delta is not None:
                    deltas[(model, mean_column.at(lang))] = lang_delta
            if why:
                reasons = "; ".join(f"{lang}: {r}" for lang, r in why.items())
                notes.append(f"Δ {mean_column.label} of {model} leaves out {len(why)} "
                             f"language(s) scored differently from {baseline} ({reasons}).")
    return [mean_column, *(mean_column.at(lang) for lang in languages)]


# -- formatting helpers ----------------------------------------------------------------------
def _coverage_note(board: Leaderboard, column: Column, languages: tuple[str, ...]) -> str:
    total = len(board.languages[column.benchmark])
    if column.language is None and len(languages) < total:
        return f" ({len(languages)}/{total} langs)"
    return ""


def wilson(p: float, n: int) -> tuple[float, float]:
    """The 95 % Wilson score interval of a share ``p`` of ``n`` items."""
    return wilson_interval(p * n, n)


def _proportion_se(board: Leaderboard, model: str, column: Column, language: str) -> float:
    cell = board.cells[(model, column.at(language))]
    low, high = wilson(cell.value, cell.n)
    return (high - low) / (2 * Z95)


def interval(board: Leaderboard, model: str, column: Column) -> tuple[float, float] | None:
    """The 95 % interval of a share-of-items cell: Wilson's for one language; for a mean over
    languages, the mean ± 1.96 × sqrt(sum se_i²) / k with each se_i from Wilson's interval
    (clipped to [0, 1]). None for other metrics (they keep their standard error)."""
    cell = board.cell(model, column)
    if cell is None or column.metric not in PROPORTION_METRICS or board.scale(column) != 100.0:
        return None
    if cell.n <= 0:
        return None
    if column.language is not None or len(cell.languages) == 1:
        return wilson(cell.value, cell.n)
    ses = [_proportion_se(board, model, column, lang) for lang in cell.languages]
    half = Z95 * math.sqrt(sum(se * se for se in ses)) / len(ses)
    return max(0.0, cell.value - half), min(1.0, cell.value + half)


def _n_varies(board: Leaderboard, column: Column) -> bool:
    return len({c.n for m in board.models if (c := board.cell(m, column)) is not None}) > 1


def _cell_text(board: Leaderboard, model: str, column: Column) -> str:
    cell = board.cell(model, column)
    if cell is None:
        return "–"
    k = board.scale(column)
    text = f"{cell.value * k:.{DECIMALS}f}"
    bounds = interval(board, model, column)
    if bounds is not None:
        text += f" [{bounds[0] * k:.{DECIMALS}f}–{bounds[1] * k:.{DECIMALS}f}]"
    elif cell.stderr is not None:
        text += f" ± {cell.stderr * k:.{DECIMALS}f}"
    if _n_varies(board, column):
        text += f" n={cell.n}"
    return text + _coverage_note(board, column, cell.languages)


def _delta_text(board: Leaderboard, model: str, column: Column) -> str:
    delta = board.delta(model, column)
    if delta is None:
        return "–"
    k = board.scale(column)
    text = f"{delta.value * k:+.{DECIMALS}f}"
    stderr = delta_stderr(board, model, column)
    if stderr is not None:
        text += f" ± {stderr * k:.{DECIMALS}f}"
    return text


def delta_stderr(board: Leaderboard, model: str, column: Column) -> float | None:
    """The shown standard error of a Δ: for shares of items each side's from Wilson's interval
    (never zero at 0 % or 100 %), else the stored ones combined."""
    delta = board.delta(model, column)
    if delta is None:
        return None
    if column.metric in PROPORTION_METRICS and board.scale(column) == 100.0 and board.baseline:
        ses = [_proportion_se(board, m, column, lang)
               for lang in delta.languages for m in (model, board.baseline)]
        return math.sqrt(sum(se * se for se in ses)) / len(delta.languages)
    return delta.stderr


def significant(board: Leaderboard, model: str, column: Column) -> bool:
    """Whether a Δ exceeds 1.96 of its shown standard errors (about 95 % two-sided)."""
    delta, se = board.delta(model, column), delta_stderr(board, model, column)
    return delta is not None and se is not None and abs(delta.value) > 1.96 * se


def quantization(board: Leaderboard, model: str) -> str:
    """The GGUF quantization type(s) the model's shown results were scored at ("" if none)."""
    kinds = sorted({e.versions["gguf_quant"] for (m, *_), e in board.evaluations.items()
                    if m == model and e.versions.get("gguf_quant")})
    return "/".join(kinds)


def _model_label(board: Leaderboard, model: str) -> str:
    quant = quantization(board, model)
    label = f"{model} [{quant}]" if quant else model
    return f"{label} (baseline)" if model == board.baseline else label


def _header_cells(board: Leaderboard) -> list[tuple[str, Column | None, bool]]:
    """(label, column, is_delta) for every displayed column after the model name."""
    out: list[tuple[str, Column | None, bool]] = []
    for column in board.display_columns:
        label = column.label + (" (%)" if board.scale(column) == 100.0 else "")
        out.append((label + _n_header(board, column), column, False))
        # a Δ column only where some model has a difference (the judge has no base value)
        if board.baseline is not None and any(
                board.delta(m, column) is not None for m in board.models):
            out.append((f"Δ {label}", column, True))
    return out


def _n_header(board: Leaderboard, column: Column) -> str:
    """``n=204`` (items per model) when every model has the same n, and for a mean the number
    of languages it is over, so an average never hides what it averages."""
    cells = [c for m in board.models if (c := board.cell(m, column)) is not None]
    ns = {c.n for c in cells}
    text = f" n={ns.pop()}" if len(ns) == 1 else ""
    if column.language is None:
        langs = max((len(c.languages) for c in cells), default=0)
        text += f" ({langs} lang{'s' if langs != 1 else ''})"
    return text


# -- renderers -------------------------------------------------------------------------------
CAPTION = ("[a–b]: 95 % interval (Wilson's for a share of n items; for a mean over languages, "
           "±1.96 of its standard error); ±: one standard error; (%): fractions ×100; n: items "
           "(summed over the languages of a mean)")


def _caption(board: Leaderboard) -> str:
    """The table's caption: what the numbers mean, then the footnotes."""
    caption = CAPTION
    if board.baseline:
        caption += f"; Δ against {board.baseline} over shared languages"
    return "\n".join([caption, *board.notes])


def fitted_tables(board: Leaderboard, width: int, *, colour: bool = False) -> list[Any]:
    """The leaderboard as rich renderables that fit ``width`` columns: the model column whole
    and repeated, the score columns folded into as many tables as needed (records when even
    one score column does not fit beside the model name)."""
    from rich.markup import escape

    from kakugo_core.termtable import Col, fit

    headers = _header_cells(board)
    cols = [Col("model", key=True)] + [Col(label, justify="right") for label, _, _ in headers]
    rows = []
    for model in board.models:
        values = [escape(_model_label(board, model))]
        for _, column, is_delta in headers:
            assert column is not None
            if not is_delta:
                values.append(escape(_cell_text(board, model, column)))
                continue
            delta = board.delta(model, column)
            text = escape(_delta_text(board, model, column))
            if (colour and delta is not None and delta.value != 0
                    and column.higher_is_better is not None):
                style = "green" if (delta.value > 0) == column.higher_is_better else "red"
                text = f"[{style}]{text}[/{style}]"
            values.append(text)
        rows.append(values)
    caption = _caption(board)
    return fit(cols, rows, width, title=board.title, caption=caption, fold=True)


def rich_table(board: Leaderboard) -> Any:
    """The leaderboard as a :class:`rich.table.Table` (for printing in colour)."""
    from rich.table import Table

    caption = _caption(board)
    from rich.markup import escape

    table = Table(title=escape(board.title), caption=escape(caption))
    table.add_column("model", no_wrap=True)
    headers = _header_cells(board)
    for label, _, _ in headers:
        table.add_column(label, justify="right")
    for model in board.models:
        values = []
        for _, column, is_delta in headers:
            assert column is not None
            if not is_delta:
                values.append(_cell_text(board, model, column))
                continue
            delta = board.delta(model, column)
            text = _delta_text(board, model, column)
            if delta is not None and delta.value != 0 and column.higher_is_better is not None:
                better = (delta.value > 0) == column.higher_is_better
                style = "green" if better else "red"
                text = f"[{style}]{text}[/{style}]"
            values.append(text)
        table.add_row(_model_label(board, model), *values)
    return table


def render_table(board: Leaderboard, width: int | None = None) -> str:
    """Plain-text tables (no colour codes) that fit ``width`` (default: the terminal's, or 100
    columns for a file or pipe): wide leaderboards fold into several tables."""
    from kakugo_core.termtable import render_plain, terminal_width

    width = width or terminal_width()
    return render_plain(fitted_tables(board, width), width)


def _md_escape(text: str) -> str:
    """Keep a cell one cell: escape pipes and backslashes, and angle brackets so GitHub does
    not take a model name like ``<student>`` for an HTML tag."""
    return (
        text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
        .replace("<", "&lt;").replace(">", "&gt;")
    )


def render_markdown(board: Leaderboard) -> str:
    """A GitHub-flavoured Markdown table (for model cards and READMEs)."""
    headers = _header_cells(board)
    lines = [
        "| " + " | ".join(_md_escape(h) for h in ["Model", *(h for h, _, _ in headers)]) + " |",
        "| " + " | ".join([":---", *("---:" for _ in headers)]) + " |",
    ]
    for model in board.models:
        cells = [_model_label(board, model)]
        for _, column, is_delta in headers:
            assert column is not None
            text = (_delta_text if is_delta else _cell_text)(board, model, column)
            if is_delta and significant(board, model, column):
                text = f"**{text}**"
            cells.append(text)
        lines.append("| " + " | ".join(_md_escape(c) for c in cells) + " |")
    if board.notes:
        lines += ["", *(f"- {_md_escape(note)}" for note in board.notes)]
    return "\n".join(lines) + "\n"


def _num(x: float | None) -> str:
    return "" if x is None else repr(float(x))


def render_csv(board: Leaderboard) -> str:
    """One row per model; per column: value, stderr, n, languages, and delta columns."""
    from kakugo_core.csv_safe import safe_row

    header = ["model", "is_baseline", "quantization"]
    for column in board.display_columns:
        k = column.key
        header += [k, f"{k}:stderr", f"{k}:n", f"{k}:languages"]
        if board.baseline is not None:
            header += [f"{k}:delta", f"{k}:delta_stderr"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(safe_row(header))
    for model in board.models:
        row = [model, "true" if model == board.baseline else "false", quantization(board, model)]
        for column in board.display_columns:
            cell = board.cell(model, column)
            row += [
                _num(cell.value) if cell else "",
                _num(cell.stderr) if cell else "",
                str(cell.n) if cell else "",
                " ".join(cell.languages) if cell else "",
            ]
            if board.baseline is not None:
                delta = board.delta(model, column)
                row += [_num(delta.value) if delta else "", _num(delta.stderr) if delta else ""]
        writer.writerow(safe_row(row))  # a model name or column may start with = + - @
    return buffer.getvalue()


def _task(column: Column) -> str:
    return column.group if column.language is None else f"{column.group}_{column.language}"


def _lm_eval_results(board: Leaderboard, model: str) -> dict[str, Any]:
    """One model's scores in lm-eval's results schema (groups = benchmarks, subtasks =
    benchmark_language)."""
    results: dict[str, dict[str, Any]] = {}
    n_samples: dict[str, dict[str, int]] = {}
    n_shot: dict[str, int] = {}
    subtasks: dict[str, list[str]] = {}
    revisions: set[str] = set()
    direction: dict[str, dict[str, bool]] = {}
    for column in board.columns:
        cell = board.cell(model, column)
        if cell is None:
            continue
        task = _task(column)
        if column.higher_is_better is not None:
            direction.setdefault(task, {})[column.metric] = column.higher_is_better
        entry = results.setdefault(task, {"alias": task})
        entry[f"{column.metric},none"] = cell.value
        entry[f"{column.metric}_stderr,none"] = cell.stderr if cell.stderr is not None else "N/A"
        count = n_samples.setdefault(task, {"original": 0, "effective": 0})
        count["original"] = count["effective"] = max(count["effective"], cell.n)
        if column.language is not None:
            evaluation = board.evaluation(model, column)
            assert evaluation is not None
            n_shot[task] = evaluation.n_shot
            revisions.add(evaluation.revision)
            members = subtasks.setdefault(column.group, [])
            if task not in members:
                members.append(task)
    for group, members in subtasks.items():
        shots = {n_shot[t] for t in members}
        if len(shots) == 1:
            n_shot[group] = shots.pop()
        total = sum(n_samples[t]["effective"] for t in members)
        n_samples[group] = {"original": total, "effective": total}
    groups = {g: results[g] for g in subtasks if g in results}
    config: dict[str, Any] = {"model": model}
    if len(revisions) == 1:
        config["model_revision"] = revisions.pop()
    elif revisions:
        config["model_revisions"] = sorted(revisions)
    return {
        "results": results,
        "groups": groups,
        "group_subtasks": subtasks,
        "n-shot": dict(sorted(n_shot.items())),
        "higher_is_better": direction,
        "n-samples": n_samples,
        "config": config,
    }


def leaderboard_dict(board: Leaderboard) -> dict[str, Any]:
    """The JSON document: per model an lm-eval-style results object, plus deltas."""
    deltas: dict[str, dict[str, dict[str, Any]]] = {}
    for (model, column), delta in board.deltas.items():
        entry = deltas.setdefault(model, {}).setdefault(_task(column), {})
        entry[f"{column.metric},none"] = delta.value
        entry[f"{column.metric}_stderr,none"] = (
            delta.stderr if delta.stderr is not None else "N/A"
        )
        entry["languages"] = list(delta.languages)
    return {
        "title": board.title,
        "selection": SELECTION_RULE,
        "baseline": board.baseline,
        "columns": [c.key for c in board.display_columns],
        "models": {model: _lm_eval_results(board, model) for model in board.models},
        "deltas": {m: deltas[m] for m in board.models if m in deltas},
        "notes": list(board.notes),
    }


def render_json(board: Leaderboard) -> str:
    return json.dumps(leaderboard_dict(board), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _attr(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def render_html(board: Leaderboard) -> str:
    """A self-contained page (inline CSS and JS, no network) with a sortable table."""
    from importlib import resources

    esc = html.escape
    head = ['<th scope="col" data-type="text" tabindex="0">Model</th>']
    for label, column, is_delta in _header_cells(board):
        assert column is not None
        cls = ' class="delta"' if is_delta else ""
        head.append(
            f'<th scope="col" data-type="number" data-key="{esc(column.key)}"{cls} tabindex="0">'
            f"{esc(label)}</th>"
        )
    body = []
    for index, model in enumerate(board.models):
        cls = ' class="baseline"' if model == board.baseline else ""
        label = esc(_model_label(board, model))
        cells = [f'<th scope="row" data-value="{esc(model)}">{label}</th>']
        for _, column, is_delta in _header_cells(board):
            assert column is not None
            if is_delta:
                delta = board.delta(model, column)
                classes = ["delta"]
                if delta is not None and delta.value != 0 and column.higher_is_better is not None:
                    better = (delta.value > 0) == column.higher_is_better
                    classes.append("better" if better else "worse")
                    if significant(board, model, column):
                        classes.append("significant")
                title = (
                    f"over {len(delta.languages)} shared language(s)" if delta is not None else ""
                )
                value = _attr(delta.value if delta else None)
                cells.append(
                    f'<td class="{" ".join(classes)}" data-value="{value}"'
                    f' title="{esc(title)}">{esc(_delta_text(board, model, column))}</td>'
                )
            else:
                cell = board.cell(model, column)
                title = (
                    f"n={cell.n}; languages: {', '.join(cell.languages)}" if cell else "no result"
                )
                cells.append(
                    f'<td data-value="{_attr(cell.value if cell else None)}" title="{esc(title)}">'
                    f"{esc(_cell_text(board, model, column))}</td>"
                )
        body.append(f'<tr data-order="{index}"{cls}>' + "".join(cells) + "</tr>")
    notes = (
        CAPTION + "; means are over languages; Δ of fractions in points. " + SELECTION_RULE + "."
    )
    if board.baseline:
        notes += (
            f" Δ is against {board.baseline} over the languages both models have; bold Δ exceeds"
            " 1.96 standard errors."
        )
    notes = " ".join([notes, *board.notes])
    template = resources.files("kakugo_core").joinpath("data/leaderboard.html").read_text("utf-8")
    page = template
    for token, value in (
        ("{{title}}", esc(board.title)),
        ("{{notes}}", esc(notes)),
        ("{{generated}}", esc(datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))),
        ("{{head}}", "".join(head)),
        ("{{body}}", "\n".join(body)),
    ):
        page = page.replace(token, value)
    return page


_RENDERERS = {
    "table": render_table,
    "markdown": render_markdown,
    "csv": render_csv,
    "json": render_json,
    "html": render_html,
}


def render(leaderboard: Leaderboard, fmt: str = "table") -> str:
    """The leaderboard as text in one of :data:`FORMATS`."""
    return _RENDERERS[check_format(fmt)](leaderboard)


def check_format(fmt: str) -> str:
    """The normalised format name, or a one-line error listing the known ones."""
    if fmt.lower() not in _RENDERERS:
        raise KakugoError(f"unknown leaderboard format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return fmt.lower()


# -- the store front door ----------------------------------------------------------------------
def _language_ids(queries: Sequence[str], stored: set[str]) -> list[str]:
    """Names or codes to the store's language ids (FLORES codes): an id the store holds is kept
    as it is, anything else goes through the language registry; unknown ones are kept as given."""
    from kakugo_core.languages import resolve

    ids = []
    for query in queries:
        if query in stored:
            ids.append(query)
            continue
        try:
            ids.append(resolve(query).id)
        except (KakugoError, FileNotFoundError):
            ids.append(query)
    return ids


def _open_store(store: ResultsStore | str | Path) -> ResultsStore:
    if isinstance(store, ResultsStore):
        return store
    path = Path(store)
    if not path.is_file():
        raise KakugoError(
            f"{path}: no results database there; run `kakugo bench` first or pass --db"
        )
    return ResultsStore(path, readonly=True)


def leaderboard_from_store(
    store: ResultsStore | str | Path,
    models: Sequence[str] | None = None,
    benchmarks: Sequence[str] | None = None,
    languages: Sequence[str] | None = None,
    baseline: str | None = None,
    metrics: Sequence[str] | None = None,
    per_language: bool = False,
    *,
    n_shot: int | None = None,
    title: str = "Kakugo leaderboard",
) -> Leaderboard:
    """Query the store (a :class:`ResultsStore` or the path of an existing database) and build
    a leaderboard. The baseline is always included, even when ``models`` leaves it out; a
    model, benchmark or language with no results is a one-line error naming what is stored."""
    opened = _open_store(store)
    wanted_models = list(models) if models else None
    if wanted_models is not None and baseline and baseline not in wanted_models:
        wanted_models.insert(0, baseline)
    try:
        everything = opened.rows()
    finally:
        if opened is not store:
            opened.close()
    if not everything:
        raise KakugoError(f"{opened.path}: no results yet; run `kakugo bench` first")
    stored_languages = {r.language for r in everything}
    language_ids = _language_ids(languages, stored_languages) if languages else None
    rows = everything
    for name, wanted, attr in (
        ("model", wanted_models, "model"),
        ("benchmark", benchmarks, "benchmark"),
        ("language", language_ids, "language"),
    ):
        if not wanted:
            continue
        known = sorted({getattr(r, attr) for r in everything})
        missing = [w for w in wanted if w not in known]
        if missing:
            raise KakugoError(
                f"no results for {name} {', '.join(missing)}; stored: {', '.join(known)}"
            )
        rows = [r for r in rows if getattr(r, attr) in wanted]
    if not rows:
        raise KakugoError("no results for that combination of models, benchmarks and languages")
    return build_leaderboard(
        rows, baseline=baseline, metrics=metrics, per_language=per_language, n_shot=n_shot,
        models=wanted_models, title=title,
    )


def render_store(
    store: ResultsStore | str | Path,
    fmt: str = "table",
    models: Sequence[str] | None = None,
    benchmarks: Sequence[str] | None = None,
    languages: Sequence[str] | None = None,
    baseline: str | None = None,
    metrics: Sequence[str] | None = None,
    per_language: bool = False,
    *,
    n_shot: int | None = None,
    title: str = "Kakugo leaderboard",
) -> str:
    """Query the store and render the leaderboard in ``fmt`` (``kakugo bench`` and
    ``kakugo leaderboard`` call this)."""
    check_format(fmt)
    board = leaderboard_from_store(
        store, models, benchmarks, languages, baseline, metrics, per_language,
        n_shot=n_shot, title=title,
    )
    return render(board, fmt)


write_atomic = write_text_atomic  # the public name this module has always had
