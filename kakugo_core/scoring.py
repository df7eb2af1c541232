"""The scoring engine: benchmarks x languages x models, into the results store.

Everything that can be checked without a model is checked first (benchmark and language names,
coverage, data files), so bad input fails in one line before any model loads and before the
store is touched. Cells already in the store (same model, revision, benchmark, language, n-shot
and prompt hash, scored by this :data:`~kakugo_core.store.ENGINE_VERSION`) are skipped unless
``force``. Each cell is stored in its own transaction as soon as it is scored, and that the
store and the predictions folder can be written is checked before any model loads. Per-item
predictions are written as JSONL to ``<predictions_dir>/<model-slug>/<benchmark>/<language>.jsonl``
(atomically), so two runs can be diffed item by item.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kakugo_core import __version__
from kakugo_core.errors import KakugoError
from kakugo_core.files import inside, writing
from kakugo_core.interfaces import Backend, Benchmark, BenchmarkResult, Score
from kakugo_core.languages import Language, resolve
from kakugo_core.plugin_settings import values
from kakugo_core.plugins import plugin_call, registry
from kakugo_core.store import ENGINE_VERSION, ResultsStore
from kakugo_core.toolkit.benchmarks import card_metadata
from kakugo_core.toolkit.settings import declared_settings

if TYPE_CHECKING:
    from kakugo_core.evaluation import EvaluationPlan


@dataclass
class Cell:
    """One benchmark on one language, planned before any model is loaded."""

    benchmark: Benchmark
    language: Language
    prompt_hash: str | None  # None: the benchmark cannot tell before running (third party)
    n_items: int | None
    options: Mapping[str, Any] = field(default_factory=dict)  # this cell's benchmark options
    #: which plugin distribution and version the benchmark came from (stored with the result)
    identity: Mapping[str, str] = field(default_factory=dict)
    #: the shots the prepared task really uses (a task may fix its own: num_fewshot: 0)
    prepared_n_shot: int | None = None

    @property
    def n_shot(self) -> int:
        if self.prepared_n_shot is not None:
            return self.prepared_n_shot
        return int(self.options.get("n_shot", 0))


def model_slug(model: str) -> str:
    """A file-name-safe name for a model id or path."""
    return re.sub(r"[^A-Za-z0-9._-]+", "__", model.strip("/")).strip("_") or "model"


def _plan(
    benchmarks: Sequence[str | Benchmark], languages: Sequence[str | Language],
    options: Mapping[str, Any], n_shot_by_benchmark: Mapping[str, int] | None = None,
) -> list[Cell]:
    benches = [_instantiate(b) for b in benchmarks]
    langs = [resolve(lang) for lang in languages]
    if not benches or not langs:
        raise KakugoError("nothing to score: give at least one benchmark and one language")
    cells = []
    for bench, identity in benches:
        bench_options = dict(options)
        settings = declared_settings(type(bench))
        if settings:  # the plugin's own settings ([bench.<name>]) reach it with the options
            table = (options.get("plugin_settings") or {}).get(identity.get("name", ""), {})
            bench_options.update(values(settings, table, f"bench.{identity.get('name', '')}"))
        if n_shot_by_benchmark and bench.name in n_shot_by_benchmark:
            bench_options["n_shot"] = int(n_shot_by_benchmark[bench.name])
        for lang in langs:
            prepare = getattr(bench, "prepare", None)
            if callable(prepare):
                task = prepare(lang, bench_options)  # raises NotCoveredError, data errors
                cells.append(Cell(bench, lang, task.prompt_hash, len(task.items), bench_options,
                                  identity, task.n_shot))
            else:
                if not bench.language_code(lang):
                    from kakugo_core.errors import NotCoveredError

                    raise NotCoveredError(f"{bench.name} does not cover {lang.name} ({lang.id})")
                cells.append(Cell(bench, lang, None, None, bench_options, identity))
    return cells


def _instantiate(benchmark: str | Benchmark) -> tuple[Benchmark, dict[str, str]]:
    """A benchmark object and the plugin identity its results are stored with. One created
    from the registry is named as the registry stores it (``plugin:name`` for a clashing
    plugin), so its results are never attributed to another plugin. An object passed in may
    say where it came from in an ``identity`` mapping (benchmark files do)."""
    if isinstance(benchmark, Benchmark):
        return benchmark, dict(getattr(benchmark, "identity", None) or {})
    from kakugo_core.plugins import get_host

    benchmarks = registry("benchmarks")
    reg = benchmarks.get(benchmark)
    bench = benchmarks.create(benchmark)
    bench.name = benchmarks.storage_name(reg)
    info = get_host().infos.get(reg.plugin)
    return bench, {"name": reg.name, "benchmark_plugin": reg.distribution,
                   "benchmark_plugin_version": info.version if info else "",
                   **card_metadata(bench)}


def _versions(backend: Backend, backend_name: str) -> dict[str, str]:
    from importlib import metadata

    out = {"kakugo": __version__, "backend": backend_name}
    for dist in ("transformers", "torch", "lm_eval", "vllm"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    # what the backend knows about the weights it scored (a GGUF file's quantization type, ...)
    for key, value in (getattr(backend, "model_versions", None) or {}).items():
        out[str(key)] = str(value)
    return out


def check_writable_folder(folder: Path, what: str) -> None:
    """Create ``folder`` and a file in it, or fail in one line (before any scoring)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".kakugo-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise KakugoError(f"cannot write {what} to {folder}: {exc.strerror or exc}; make it "
                          "writable or choose another folder") from None


#: what :func:`write_predictions` adds to a file name for its temporary file
TEMP_NAME_EXTRA = len("..") + 8 + len(".tmp")


def _name_max(folder: Path) -> int:
    """The longest file name (bytes) the file system holding ``folder`` allows."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def check_output_names(
    plan: EvaluationPlan, cells: Sequence[Cell], predictions_dir: Path | None
) -> None:
    """Try every file name scoring will write (``<model-slug>/<benchmark>/<language>.jsonl`` and
    its temporary file) against the file system's name limit, so a too-long model path fails
    in one line before any model loads rather than after scoring."""
    if predictions_dir is None:
        return
    limit = _name_max(predictions_dir)
    for ref in plan.models:
        for cell in cells:
            parts = (model_slug(ref.name), cell.benchmark.name, f"{cell.language.id}.jsonl")
            for i, part in enumerate(parts):
                extra = TEMP_NAME_EXTRA if i == len(parts) - 1 else 0
                if len(os.fsencode(part)) + extra > limit:
                    short = part if len(part) <= 40 else part[:37] + "..."
                    raise KakugoError(
                        f"cannot write predictions under {predictions_dir}: the file name "
                        f"{short!r} is {len(os.fsencode(part))} bytes, over this file system's "
                        f"limit of {limit - extra}; use a shorter model path (e.g. a symlink)")


def write_predictions(path: Path, predictions: Sequence[Mapping[str, Any]]) -> None:
    """Write JSONL to a temporary file beside ``path`` and rename it into place; a full disk is
    one line naming ``path``."""
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                for row in predictions:
                    fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def stored_result(
    store: ResultsStore, model: str, revision: str, cell: Cell, n_shot: int
) -> BenchmarkResult:
    """A cell already in the store, as a result (without predictions)."""
    rows = [
        r for r in store.rows([model], [cell.benchmark.name], [cell.language.id])
        if r.revision == revision and r.n_shot == n_shot and r.prompt_hash == cell.prompt_hash
        and r.engine == ENGINE_VERSION
    ]
    return BenchmarkResult(
        cell.benchmark.name, cell.language.id, n_shot, cell.prompt_hash or "",
        [Score(r.metric, r.value, r.stderr, r.n) for r in rows], model=model,
        model_revision=revision,
    )


class _Progress:
    """Rich progress bars (overall cells, items of the current cell), or nothing."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None

    @contextmanager
    def running(self, total_cells: int) -> Iterator[_Progress]:
        if not self.enabled:
            yield self
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), transient=False,
        ) as bar:
            self.bar = bar
            self.cells = bar.add_task("cells", total=total_cells)
            self.items = bar.add_task("items", total=None, visible=False)
            yield self
            self.bar = None

    def start_cell(self, label: str, total: int | None) -> None:
        if self.bar is not None:
            self.bar.reset(self.items, total=total, description=label, visible=True)

    def advance_items(self, n: float) -> None:
        if self.bar is not None:
            self.bar.advance(self.items, n)

    def advance_cell(self) -> None:
        if self.bar is not None:
            self.bar.advance(self.cells)

    def log(self, message: str) -> None:
        if self.bar is not None:
            self.bar.console.log(message)


def run_bench(
    models: Sequence[str],
    benchmarks: Sequence[str | Benchmark],
    languages: Sequence[str | Language],
    *,
    store: ResultsStore,
    backend: str = "transformers",
    n_shot: int = 3,
    limit: int | None = None,
    data_dir: str | Path | None = None,
    force: bool = False,
    backend_options: Mapping[str, Any] | None = None,
    predictions_dir: str | Path | None = None,
    progress: bool = True,
    chat_template: bool = False,
    benchmark_options: Mapping[str, Any] | None = None,
    n_shot_by_benchmark: Mapping[str, int] | None = None,
) -> list[BenchmarkResult]:
    """Score every model on every benchmark x language from explicit values (for callers
    without a configuration: tests, the judge); the evaluation is an
    :class:`~kakugo_core.evaluation.EvaluationPlan` all the same, scored by :func:`score_plan`.
    ``benchmark_options`` may hold ``revisions``, ``max_new_tokens``, ``plugin_settings`` and
    ``limit_seed``; anything else reaches every cell as is."""
    from kakugo_core.evaluation import EvaluationPlan, ModelRef, reference

    if not models:
        raise KakugoError("no model given: pass --model (a Hub id or a local folder)")
    options = dict(benchmark_options or {})
    known = {k: options.pop(k) for k in ("revisions", "max_new_tokens", "plugin_settings",
                                          "limit_seed") if k in options}
    plan = EvaluationPlan(
        models=tuple(ModelRef.of(m) for m in models),
        benchmarks=tuple(reference(b) for b in benchmarks),
        languages=tuple(lang.id if isinstance(lang, Language) else resolve(lang).id
                        for lang in languages),
        n_shot=n_shot, shots=dict(n_shot_by_benchmark or {}), limit=limit or None,
        limit_seed=int(known.get("limit_seed", 0)), backend=backend,
        backend_options=dict(backend_options or {}), chat_template=chat_template,
        data_dir=str(data_dir) if data_dir else None,
        predictions_dir=str(predictions_dir) if predictions_dir else None,
        revisions=dict(known.get("revisions") or {}),
        max_new_tokens=known.get("max_new_tokens"),
        plugin_settings=dict(known.get("plugin_settings") or {}), force=force,
        extra_options=options,
    ).with_objects(list(benchmarks))
    return score_plan(plan, store, progress=progress)


def plan_cells(plan: EvaluationPlan) -> list[Cell]:
    """The plan's benchmark x language cells, with their prompt hashes: every name, language
    and data file is checked here, before a model loads."""
    options = plan.cell_options()
    if options.get("max_new_tokens") is None:
        options.pop("max_new_tokens")
    return _plan(plan.benchmark_objects(), plan.languages, options, plan.shots)


def score_plan(
    plan: EvaluationPlan, store: ResultsStore, *, progress: bool = True
) -> list[BenchmarkResult]:
    """Score every model of ``plan`` on every benchmark x language into ``store``; return one
    result per cell (stored cells that were skipped come back without predictions)."""
    if not plan.models:
        raise KakugoError("no model given: pass --model (a Hub id or a local folder)")
    cells = plan_cells(plan)
    store.check_writable()  # a store or folder we cannot write fails now, not after scoring
    predictions_dir = Path(plan.predictions_dir) if plan.predictions_dir else None
    if predictions_dir:
        check_writable_folder(predictions_dir, "predictions")
    backends = registry("backends")
    backends.get(plan.backend)  # an unknown backend fails now
    check_output_names(plan, cells, predictions_dir)
    results: list[BenchmarkResult] = []
    bars = _Progress(progress)
    with bars.running(len(cells) * len(plan.models)):
        for ref in plan.models:
            model = ref.name
            scorer: Backend | None = None
            try:
                for cell in cells:
                    label = f"{model_slug(model)} {cell.benchmark.name} {cell.language.id}"
                    if scorer is None:
                        bars.start_cell(f"loading {model}", None)
                        scorer = backends.create(plan.backend, ref.location,
                                                 **dict(plan.backend_options))
                    revision = scorer.revision or ""
                    if (not plan.force and cell.prompt_hash is not None and store.has(
                            model, revision, cell.benchmark.name, cell.language.id, cell.n_shot,
                            cell.prompt_hash)):
                        bars.log(f"{label}: already in the store, skipped (--force reruns)")
                        results.append(stored_result(store, model, revision, cell, cell.n_shot))
                        bars.advance_cell()
                        continue
                    bars.start_cell(label, cell.n_items)
                    with plugin_call("benchmarks", cell.benchmark.name, "evaluate"):
                        result = cell.benchmark.evaluate(
                            scorer, cell.language, {**cell.options, "progress": bars.advance_items}
                        )
                    result.benchmark = cell.benchmark.name  # the name it was planned under
                    result.model, result.model_revision = model, revision
                    if predictions_dir:
                        write_predictions(inside(
                            predictions_dir, model_slug(model), result.benchmark,
                            f"{result.language}.jsonl"), result.predictions)
                    versions = _versions(scorer, plan.backend)
                    if result.data_source:
                        versions["data_source"] = result.data_source
                    versions.update({k: v for k, v in cell.identity.items() if k != "name"})
                    store.put_result(model, revision, result, versions)
                    results.append(result)
                    bars.advance_cell()
            finally:
                if scorer is not None:
                    with plugin_call("backends", plan.backend, "close"):
                        scorer.close()
    return results


def lm_eval_schema(
    results: Sequence[BenchmarkResult], model: str, revision: str = ""
) -> dict[str, Any]:
    """Results in lm-eval's output layout (``results``, ``n-shot``, ``n-samples``, ``config``):
    one task per benchmark and language, named ``<benchmark>_<language>``, metrics as
    ``"<metric>,none"`` and ``"<metric>_stderr,none"``."""
    out: dict[str, Any] = {"results": {}, "n-shot": {}, "n-samples": {}, "higher_is_better": {},
                           "config": {"model": model, "model_revision": revision},
                           "versions": {}}
    for result in results:
        task = f"{result.benchmark}_{result.language}"
        entry: dict[str, Any] = {"alias": task, "prompt_hash": result.prompt_hash}
        for score in result.scores:
            entry[f"{score.metric},none"] = score.value
            entry[f"{score.metric}_stderr,none"] = (
                score.stderr if score.stderr is not None else "N/A")
        out["results"][task] = entry
        out["n-shot"][task] = result.n_shot
        n = max((s.n for s in result.scores), default=0)
        out["n-samples"][task] = {"original": n, "effective": n}
        out["higher_is_better"][task] = {s.metric: True for s in result.scores}
        out["versions"][task] = 1
    return out
