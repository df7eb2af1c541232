"""``kakugo run``: generate → dataset → train → bench → release for one language, resumable.

Each stage works in ``<run>/<stage>/`` and leaves a manifest (see :mod:`kakugo_core.pipeline`).
A stage is skipped when it finished before with the same inputs: its own configuration section
plus the input hash of the stage it reads, so a change upstream re-runs everything after it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kakugo_core.config import Config
from kakugo_core.errors import KakugoError
from kakugo_core.files import write_json_atomic
from kakugo_core.interfaces import Benchmark
from kakugo_core.languages import Language, resolve
from kakugo_core.pipeline import (
    STAGES,
    Manifest,
    RunFolder,
    StageOutcome,
    fingerprint,
    run_lock,
)

if TYPE_CHECKING:
    from kakugo_core.evaluation import EvaluationPlan, ModelRef

#: what the paper spent per language at most, for the cost report
PAPER_BUDGET_USD = 50.0

Echo = Callable[[str], None]


@dataclass
class RunOptions:
    """What ``kakugo run`` decides beyond the configuration."""

    run_dir: Path
    stages: tuple[str, ...] = STAGES
    force: tuple[str, ...] = ()
    db: Path | None = None
    repo_id: str | None = None
    gpu_price_per_hour: float = 2.5
    progress: bool = True
    echo: Echo = field(default=lambda _line: None)


def _plugin_versions() -> dict[str, str]:
    from kakugo_core.plugins import get_host

    versions = {info.distribution: info.version for info in get_host().infos.values()}
    for package in ("torch", "transformers", "peft", "datasets"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return dict(sorted(versions.items()))


def _public_teacher(config: Config) -> dict[str, Any]:
    """The teacher section without host-only details that do not change answers."""
    return {k: v for k, v in config["teacher"].items()
            if k not in ("base_url", "concurrency", "timeout_s", "max_retries", "cache_dir")}


def set_torch_threads(value: Any) -> int:
    """Apply ``run.torch_threads`` (0: leave torch's default, torch is not even imported).

    CPU sums are split across threads, so the count shapes the floating-point result; and on a
    machine busy with other work, one OpenMP thread per core waits at every barrier for a core
    to come free (a 2-thread training step was 2.6x slower than a 1-thread one on a loaded
    2-core machine)."""
    try:
        threads = int(value)
    except (TypeError, ValueError):
        raise KakugoError(f"run.torch_threads must be a whole number, got {value!r}") from None
    if threads < 0:
        raise KakugoError(f"run.torch_threads must be 0 (torch's default) or more, got {threads}")
    if threads:
        import torch

        torch.set_num_threads(threads)
    return threads


def run_language(language: str | Language, config: Config, options: RunOptions) -> dict[str, Any]:
    """Run (or resume) every selected stage for one language, holding the run folder's lock
    (:func:`~kakugo_core.pipeline.run_lock`) throughout; return the run's summary."""
    lang = resolve(language)
    with run_lock(options.run_dir):
        return _run_language(lang, config, options)


def _run_language(lang: Language, config: Config, options: RunOptions) -> dict[str, Any]:
    from kakugo_core.store import ResultsStore

    set_torch_threads(config["run"].get("torch_threads", 0))

    folder = RunFolder(options.run_dir)
    options.run_dir.mkdir(parents=True, exist_ok=True)
    versions = _plugin_versions()
    base_model = str(config["train"]["base_model"])
    db = options.db or (Path(config["bench"]["db"]) if config["bench"]["db"]
                        else options.run_dir / "results.sqlite")
    # paths inside the run folder are hashed and recorded relative to it, so a run folder that
    # is moved or copied elsewhere is still up to date
    portable = relative_to_run(config, options.run_dir)
    hashes: dict[str, str] = {}
    hashes["generate"] = fingerprint(lang.id, _public_teacher(portable), portable["generate"],
                                     config["run"]["seed"])
    hashes["dataset"] = fingerprint(hashes["generate"], portable["dataset"],
                                    config["run"]["seed"])
    hashes["train"] = fingerprint(hashes["dataset"], portable["train"])
    judge_in_run = bool(config["judge"]["in_run"])
    judged_by = [portable["judge"], _public_teacher(portable)] if judge_in_run else []
    hashes["bench"] = fingerprint(hashes["train"], portable["bench"],
                                  relative_to_run(str(db), options.run_dir), *judged_by)
    hashes["release"] = fingerprint(hashes["bench"], portable["release"], options.repo_id)

    gen_dir, data_dir = folder.stage_dir("generate"), folder.stage_dir("dataset") / "data"
    model_dir = folder.stage_dir("train") / "model"
    # a store in the run folder keys the models inside it as {run}/..., so a copy finds its
    # results; a store elsewhere (shared by several runs) names them as given
    in_folder = relative_to_run(str(db), options.run_dir).startswith("{run}")
    base_ref, student_ref = (run_model(m, options.run_dir if in_folder else None)
                             for m in (base_model, str(model_dir)))

    def generate(stage_dir: Path) -> StageOutcome:
        from kakugo_core.generation import run_generation

        summary = run_generation(lang, config, stage_dir, progress=options.progress)
        if summary.stopped:
            options.echo(f"generation stopped early: {summary.stopped}")
        usage = summary.usage
        return StageOutcome(
            counts={"rows": summary.rows, "rejects": summary.rejects, "usage": usage,
                    "stopped": summary.stopped},
            cost_usd=float(usage.get("cost", 0.0)),
        )

    def dataset(stage_dir: Path) -> StageOutcome:
        from kakugo_core.dataset import build_dataset

        summary = build_dataset(gen_dir, stage_dir / "data", config, lang)
        return StageOutcome(counts={"splits": summary.splits, "methods": summary.methods,
                                    "rejects": summary.rejects})

    def train(stage_dir: Path) -> StageOutcome:
        from kakugo_core.training import TrainRequest
        from kakugo_core.training import run as run_training

        out = stage_dir / "model"
        fresh = swap_in_progress(out)
        request = TrainRequest.from_config(config, data_dir, fresh, base_model=base_model)
        run_training(request)
        summary = json.loads((fresh / "training_summary.json").read_text("utf-8"))
        swap_in(fresh, out)  # the finished model stays until the new one is complete
        seconds = summary.get("train_seconds_all_attempts", summary.get("train_seconds", 0.0))
        hours = float(seconds or 0.0) / 3600
        keys = ("tokens_seen", "optimizer_steps", "train_loss", "initial_validation_loss",
                "final_validation_loss", "tokens_per_second")
        counts = {k: summary.get(k) for k in keys}
        counts["train_seconds"] = float(seconds or 0.0)  # every attempt, killed ones included
        counts["last_attempt_seconds"] = summary.get("train_seconds")
        return StageOutcome(counts=counts,
                            cost_usd=hours * options.gpu_price_per_hour)

    def bench(stage_dir: Path) -> StageOutcome:
        from kakugo_core.scoring import score_plan
        from kakugo_core.teacher_cache import paid_usage

        plan = bench_plan(config, lang, [base_ref, student_ref], stage_dir / "predictions",
                          options.echo)
        names = [ref.name for ref in plan.benchmarks]
        backend_options = dict(plan.backend_options)
        with ResultsStore(db) as store:
            results = score_plan(plan, store, progress=options.progress)
            per_model = len(results) // 2  # the base's cells, then the student's
            scores = {f"{'base' if i < per_model else 'student'}:{r.benchmark}:{s.metric}":
                      s.value for i, r in enumerate(results) for s in r.scores}
            usage: dict[str, float] = {}
            held_out = (folder.manifest("dataset").counts or {}).get("splits", {}).get("validation")
            if judge_in_run and not held_out:
                options.echo("judge: skipped, the dataset has no validation prompts "
                             "(set dataset.validation_fraction > 0)")
            elif judge_in_run:
                judged = _judge_student(store, stage_dir, backend_options)
                scores.update({f"student:judge:{s.metric}": s.value for s in judged.scores})
                # everything the verdicts in this run folder cost, also when the judge cell
                # was already stored and nothing was asked this time
                usage = paid_usage(stage_dir / "judge-cache.jsonl")
        return StageOutcome(counts={"db": relative_to_run(str(db), options.run_dir),
                                    "benchmarks": names, "scores": scores,
                                    "judge_usage": usage},
                            cost_usd=float(usage.get("cost", 0.0)))

    def _judge_student(store: Any, stage_dir: Path, backend_options: dict[str, Any]) -> Any:
        """The teacher judges the student against its base on the dataset's validation
        prompts (held out from training); verdicts are cached in the stage folder. The student
        is stored under its run-folder name, as the bench stage stores it."""
        from kakugo_core.evaluation import EvaluationPlan, reference
        from kakugo_core.judging import judge_options
        from kakugo_core.scoring import score_plan

        cfg = config["bench"]
        options.echo(f"judge: {config['teacher']['model']} compares the student with its base")
        extra = judge_options(
            config, prompts=data_dir, opponent=base_ref.location, backend=cfg["backend"],
            backend_options=backend_options, cache_file=stage_dir / "judge-cache.jsonl")
        plan = EvaluationPlan(
            models=(student_ref,), benchmarks=(reference("judge"),), languages=(lang.id,),
            n_shot=0, limit_seed=int(extra.pop("limit_seed")), backend=cfg["backend"],
            backend_options=backend_options, predictions_dir=str(stage_dir / "predictions"),
            extra_options=extra)
        return score_plan(plan, store, progress=options.progress)[0]

    def release(stage_dir: Path) -> StageOutcome:
        from kakugo_core.release import release as publish

        target = str(config["release"]["target"])
        repo_id = options.repo_id or f"local/kakugo-{lang.iso639_3}"
        stored: list[str] = []
        if Path(db).is_file():  # else publish says the store is missing
            with ResultsStore(db, readonly=True) as store:
                stored = store.models()
        result = publish(
            model_dir, target=target, repo_id=repo_id, store=db, base_model=base_model,
            base_name=stored_name(stored, base_ref.name, options.run_dir),
            language=lang, dataset_dir=data_dir, config=config,
            out_dir=stage_dir / "out" if target == "folder" else None,
            model_name=stored_name(stored, student_ref.name, options.run_dir), echo=options.echo,
        )
        return StageOutcome(counts={"target": target, "location": result.location,
                                    "files": len(result.files), "changed": result.changed})

    functions = {"generate": generate, "dataset": dataset, "train": train, "bench": bench,
                 "release": release}
    sections = {"generate": ("teacher", "generate"), "dataset": ("dataset",),
                "train": ("train",), "bench": ("bench",), "release": ("release",)}
    selected = [stage for stage in STAGES if stage in options.stages]
    # a stage reading one that this run does not make needs it finished now: say so before
    # anything runs or is printed
    for stage in selected:
        before = STAGES[STAGES.index(stage) - 1] if stage != STAGES[0] else None
        if before and before not in selected and not folder.is_current(before, hashes[before]):
            raise KakugoError(f"stage {stage!r} needs an up-to-date {before!r} stage in "
                              f"{options.run_dir}; include it in --stages")
    options.echo(f"run folder {options.run_dir}")
    for number, stage in enumerate(selected, start=1):
        options.echo(f"stage {number}/{len(selected)}: {stage}")
        before = STAGES[STAGES.index(stage) - 1] if stage != STAGES[0] else None
        if before and not folder.is_current(before, hashes[before]):
            raise KakugoError(f"stage {stage!r} needs an up-to-date {before!r} stage in "
                              f"{options.run_dir}; include it in --stages")
        stage_config = {s: portable[s] for s in sections[stage]}
        if stage == "generate":
            stage_config["teacher"] = _public_teacher(portable)
        manifest, ran = folder.run_stage(stage, hashes[stage], functions[stage], stage_config,
                                         versions, force=stage in options.force)
        options.echo(stage_message(manifest, ran))
    report = cost_report(folder, lang)
    write_json_atomic(options.run_dir / "cost.json", report)
    return {"language": lang.id, "run_dir": str(options.run_dir), "cost": report,
            "stages": {m.stage: m.status for m in folder.manifests()}}


def bench_plan(config: Config, lang: Language, models: Sequence[str | ModelRef],
               predictions_dir: Path, echo: Echo) -> EvaluationPlan:
    """The bench stage's evaluation: base and student on the configured benchmarks that cover
    ``lang`` (the others are named and skipped), built as ``kakugo bench`` builds its own.
    A :class:`~kakugo_core.evaluation.ModelRef` keeps its name (see :func:`run_model`)."""
    from dataclasses import replace

    from kakugo_core.evaluation import build_plan

    names = [m if isinstance(m, str) else m.location for m in models]
    plan = build_plan(config, models=names, languages=[lang.id],
                      predictions_dir=predictions_dir)
    refs = tuple(ref if isinstance(given, str) else replace(ref, name=given.name)
                 for ref, given in zip(plan.models, models, strict=True))
    plan = replace(plan, models=refs).with_objects(plan.benchmark_objects())
    covered = [_covers(b, lang) for b in plan.benchmark_objects()]
    skipped = [ref.name for ref, ok in zip(plan.benchmarks, covered, strict=True) if not ok]
    if skipped:
        echo(f"{lang.name} is not covered by {', '.join(skipped)}: skipped")
    if not any(covered):
        raise KakugoError(f"no configured benchmark covers {lang.name} ({lang.id})")
    return plan.keep_benchmarks(covered)


def stage_message(manifest: Manifest, ran: bool) -> str:
    """``train: done (62.3s)``, or ``train: up to date, skipped`` with no duration: the earlier
    run's time would read as if skipping took it."""
    if ran:
        return f"{manifest.stage}: done ({manifest.seconds:.1f}s)"
    return f"{manifest.stage}: up to date, skipped"


def relative_to_run(value: Any, run_dir: Path) -> Any:
    """``value`` (a configuration, a path string) with every path inside ``run_dir`` written
    as ``{run}/...``."""
    import os

    roots = sorted({str(run_dir), str(run_dir.resolve())}, key=len, reverse=True)
    if isinstance(value, dict):
        return {k: relative_to_run(v, run_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [relative_to_run(v, run_dir) for v in value]
    if isinstance(value, str):
        for root in roots:
            if value == root or value.startswith(root + os.sep):
                return "{run}" + value[len(root):]
    return value


def in_run(value: str, run_dir: Path) -> str:
    """A path written by :func:`relative_to_run` (``{run}/...``) as a path in ``run_dir``."""
    return str(run_dir) + value[len("{run}"):] if value.startswith("{run}") else value


def run_model(model: str, run_dir: Path | None) -> ModelRef:
    """A run's model as the store in ``run_dir`` keys it: a folder inside the run folder named
    ``{run}/...`` (so a moved or copied run folder finds its results), loaded from its absolute
    path; anything else (a Hub id, a folder elsewhere; any model for a store outside the run
    folder, ``run_dir`` None) as ``kakugo bench`` names it."""
    from kakugo_core.evaluation import ModelRef

    if run_dir is None:
        return ModelRef.of(model)
    name = relative_to_run(model, run_dir)
    if not name.startswith("{run}"):
        return ModelRef.of(model)
    return ModelRef(name, str(Path(in_run(name, run_dir)).resolve()))


def stored_name(stored: Collection[str], name: str, run_dir: Path) -> str:
    """``name`` (from :func:`run_model`) as the store holds it: itself, or the path an older
    run stored the same folder under (as given, relative or absolute); else ``name``."""
    if name in stored or not name.startswith("{run}"):
        return name
    target = Path(in_run(name, run_dir)).resolve()
    for other in sorted(stored):
        try:
            if not other.startswith("{run}") and Path(other).expanduser().resolve() == target:
                return other
        except (OSError, ValueError):
            continue
    return name


def swap_in_progress(out: Path) -> Path:
    """The folder a new model for ``out`` is trained into (``<out>.new``, emptied of an
    interrupted attempt's half output; its checkpoints live beside it and are kept). A model
    that a killed swap left as ``<out>.old`` is put back first."""
    import shutil

    fresh, old = out.with_name(out.name + ".new"), out.with_name(out.name + ".old")
    if old.exists() and not out.exists():
        old.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(fresh, ignore_errors=True)
    return fresh


def swap_in(fresh: Path, out: Path) -> None:
    """Replace ``out`` by ``fresh`` with two renames; the old model is removed only after."""
    import shutil

    old = out.with_name(out.name + ".old")
    if out.exists():
        out.rename(old)
    fresh.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def _covers(benchmark: str | Benchmark, lang: Language) -> bool:
    """Whether a configured benchmark (a registered name, or one loaded from a task file)
    scores ``lang``."""
    from kakugo_core.plugins import registry

    if not isinstance(benchmark, str):
        return bool(benchmark.language_code(lang))
    factory = registry("benchmarks").get(benchmark).factory
    key = getattr(factory, "coverage_key", "") or getattr(factory, "name", benchmark)
    return key not in lang.benchmarks or bool(lang.benchmarks.get(key))


def cost_report(folder: RunFolder, lang: Language) -> dict[str, Any]:
    """Teacher tokens and cost plus training time, set against the paper's budget."""
    gen, train, bench = (folder.manifest(s) for s in ("generate", "train", "bench"))
    usage: Mapping[str, Any] = gen.counts.get("usage", {}) if gen.counts else {}
    judge: Mapping[str, Any] = (bench.counts or {}).get("judge_usage") or {}
    teacher_cost = gen.cost_usd + bench.cost_usd  # generation, then the judge's verdicts
    total = teacher_cost + train.cost_usd
    return {
        "language": lang.id,
        "teacher_calls": int(usage.get("calls", 0)) + int(judge.get("calls", 0)),
        "teacher_prompt_tokens": int(usage.get("prompt_tokens", 0))
        + int(judge.get("prompt_tokens", 0)),
        "teacher_completion_tokens": int(usage.get("completion_tokens", 0))
        + int(judge.get("completion_tokens", 0)),
        "teacher_retries": int(usage.get("retries", 0)),
        "teacher_failures": int(usage.get("failures", 0)),
        "teacher_cost_usd": round(teacher_cost, 4),
        "judge_cost_usd": round(bench.cost_usd, 4),
        "train_seconds": float((train.counts or {}).get("train_seconds") or 0.0),
        "train_cost_usd": round(train.cost_usd, 4),
        "total_cost_usd": round(total, 4),
        "paper_budget_usd": PAPER_BUDGET_USD,
        "within_paper_budget": total < PAPER_BUDGET_USD,
    }


def stage_table(run_dir: Path) -> list[Manifest]:
    """The manifests of a run folder, for ``kakugo status``."""
    if not run_dir.is_dir():
        raise KakugoError(f"{run_dir} is not a run folder; start one with `kakugo run`")
    return RunFolder(run_dir).manifests()
