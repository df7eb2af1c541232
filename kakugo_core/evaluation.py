"""One evaluation, described once: the :class:`EvaluationPlan`.

A plan says everything an evaluation needs — models, benchmarks (registered names, or task files
by absolute path and content digest), languages, shots per benchmark, the ``--limit`` sample and
its seed, plugin settings, backend and batch options, prediction and data folders — as plain,
JSON-serializable values. It is built in one place (:func:`build_plan`, from the configuration,
the command line's flags and the task files) and is the only input of local scoring
(:func:`kakugo_core.scoring.score_plan`), of every executor's workers (``plan.json``) and of
``kakugo run``'s bench stage, so the same evaluation stores the same rows whichever way it runs.

Paths are made absolute when the plan is built, so a worker that starts in another folder (a Ray
worker runs where ``ray start`` ran) reads and writes the same files. A model keeps two names:
the one the user gave (what the store and the tables show) and where it is loaded from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from kakugo_core.errors import KakugoError
from kakugo_core.interfaces import Benchmark

#: the layout of a serialized plan; a worker refuses a plan of another version
PLAN_VERSION = 2

#: backend names that take the transformers backend's device and dtype options
TRANSFORMERS_BACKENDS = ("transformers", "hf", "huggingface")


@dataclass(frozen=True)
class ModelRef:
    """A model: ``name`` as the user gave it (stored and shown), ``location`` what is loaded
    (an absolute path for a local folder or file, else the Hub id)."""

    name: str
    location: str

    @classmethod
    def of(cls, model: str, base: Path | None = None) -> ModelRef:
        path = Path(model).expanduser()
        if not path.is_absolute():
            path = (base or Path.cwd()) / path
        return cls(model, str(path.resolve()) if path.exists() else model)


@dataclass(frozen=True)
class BenchmarkRef:
    """A benchmark as a plan names it: ``kind`` is ``registered`` (by name), ``toml`` (a
    declarative task file), ``lm-eval`` (a task YAML file, a task in ``include_paths`` or in
    lm-eval's catalogue) or ``object`` (made in this process: scored locally, never sent to
    workers). Files are named by absolute path and the sha256 of their bytes."""

    name: str
    kind: str = "registered"
    file: str | None = None
    digest: str | None = None
    include_paths: tuple[str, ...] = ()


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def reference(benchmark: str | Benchmark, include_paths: Sequence[str] = ()) -> BenchmarkRef:
    """How a plan names a benchmark that :func:`kakugo_core.task_files.resolve_benchmarks`
    returned (a registered name, or an object loaded from a task file)."""
    if isinstance(benchmark, str):
        return BenchmarkRef(benchmark)
    spec = getattr(benchmark, "spec", None)
    if spec is not None and getattr(spec, "path", None) is not None:
        path = Path(spec.path).resolve()
        return BenchmarkRef(benchmark.name, "toml", str(path), file_digest(path))
    yaml_path = getattr(benchmark, "yaml_path", None)
    if hasattr(benchmark, "task") and hasattr(benchmark, "output_type"):  # an lm-eval task
        yaml = Path(yaml_path).resolve() if yaml_path else None
        return BenchmarkRef(benchmark.name, "lm-eval", str(yaml) if yaml else None,
                            file_digest(yaml) if yaml and yaml.is_file() else None,
                            tuple(include_paths))
    return BenchmarkRef(benchmark.name, "object")  # local only: to_json refuses it


def _load(ref: BenchmarkRef, trust_code: bool = False) -> Benchmark:
    """The benchmark object of a file reference, refusing a file changed since planning."""
    if ref.file and ref.digest and Path(ref.file).is_file() and file_digest(ref.file) != ref.digest:
        raise KakugoError(f"{ref.file}: the task file changed since the evaluation was planned "
                          "(its digest differs); plan again")
    if ref.kind == "toml":
        from kakugo_core.toolkit.declarative import benchmark_class, load_spec

        if not ref.file or not Path(ref.file).is_file():
            raise KakugoError(f"{ref.file}: task file of benchmark {ref.name!r} not found")
        return benchmark_class(load_spec(ref.file))()
    if ref.kind == "lm-eval":
        from kakugo_core.lm_eval_yaml import load_tasks

        paths = list(ref.include_paths)
        if ref.file:
            paths.append(str(Path(ref.file).parent))
        target = ref.name if (ref.file or ref.include_paths) else f"lm-eval:{ref.name}"
        found = [t for t in load_tasks(target, paths, trust_code) if t.name == ref.name]
        if not found:
            raise KakugoError(f"lm-eval task {ref.name!r} not found in {', '.join(paths)}")
        return found[0]
    raise KakugoError(f"benchmark {ref.name!r}: unknown kind {ref.kind!r} in the plan")


@dataclass(frozen=True)
class EvaluationPlan:
    """Everything one evaluation needs; the only input of scoring, however it runs."""

    models: tuple[ModelRef, ...]
    benchmarks: tuple[BenchmarkRef, ...]
    languages: tuple[str, ...]
    n_shot: int = 3
    #: shots per benchmark name: --n-shot > bench.n_shot_by_benchmark > the task file's own
    shots: Mapping[str, int] = field(default_factory=dict)
    limit: int | None = None
    limit_seed: int = 0
    backend: str = "transformers"
    backend_options: Mapping[str, Any] = field(default_factory=dict)
    chat_template: bool = False
    data_dir: str | None = None
    predictions_dir: str | None = None
    revisions: Mapping[str, str] = field(default_factory=dict)
    max_new_tokens: int | None = None
    plugin_settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    force: bool = False
    #: run Python code that task files ask for (lm-eval ``!function``): --trust-task-code
    trust_task_code: bool = False
    #: options passed to every cell beyond the plan's own (the judge's opponent, ...)
    extra_options: Mapping[str, Any] = field(default_factory=dict)

    # -- what scoring reads ----------------------------------------------------------------
    def model_names(self) -> list[str]:
        return [m.name for m in self.models]

    def cell_options(self) -> dict[str, Any]:
        """The options every benchmark cell gets (before its own settings and shots)."""
        return {"n_shot": self.n_shot, "limit": self.limit or None,
                "chat_template": self.chat_template, "data_dir": self.data_dir,
                "revisions": dict(self.revisions), "max_new_tokens": self.max_new_tokens,
                "plugin_settings": {k: dict(v) for k, v in self.plugin_settings.items()},
                "limit_seed": self.limit_seed, **dict(self.extra_options)}

    def benchmark_objects(self) -> list[str | Benchmark]:
        """Registered names as they are, task files loaded (again, on a worker: their digests
        checked); objects the plan was built with are reused in this process."""
        loaded: list[str | Benchmark] | None = getattr(self, "_loaded", None)
        if loaded is None:
            loaded = [ref.name if ref.kind == "registered" else
                      _load(ref, self.trust_task_code) for ref in self.benchmarks]
            object.__setattr__(self, "_loaded", loaded)
        return loaded

    def with_objects(self, objects: Sequence[str | Benchmark]) -> EvaluationPlan:
        """This plan, remembering the benchmark objects it was built from (not serialized)."""
        object.__setattr__(self, "_loaded", list(objects))
        return self

    def keep_benchmarks(self, keep: Sequence[bool]) -> EvaluationPlan:
        """The same plan with only the benchmarks whose flag is true."""
        objects = self.benchmark_objects()
        out = replace(self, benchmarks=tuple(r for r, k in zip(self.benchmarks, keep,
                                                               strict=True) if k))
        return out.with_objects([o for o, k in zip(objects, keep, strict=True) if k])

    def only(self, models: Sequence[str] | None = None,
             languages: Sequence[str] | None = None) -> EvaluationPlan:
        """The same plan for some of its models (by name) and languages."""
        out = self
        if models is not None:
            out = replace(out, models=tuple(m for m in self.models if m.name in set(models)))
        if languages is not None:
            out = replace(out, languages=tuple(languages))
        loaded = getattr(self, "_loaded", None)
        return out.with_objects(loaded) if loaded is not None and out is not self else out

    # -- serialization ---------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The plan as JSON-able values (what ``plan.json`` holds for workers)."""
        unsent = [r.name for r in self.benchmarks if r.kind == "object"]
        if unsent:
            raise KakugoError(f"benchmark(s) {', '.join(unsent)}: objects made in this process "
                              "cannot be sent to workers; register them or use a task file")
        data = asdict(self)
        data["version"] = PLAN_VERSION
        try:
            json.dumps(data)
        except (TypeError, ValueError) as exc:
            raise KakugoError(f"the evaluation plan cannot be sent to workers: {exc}") from None
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EvaluationPlan:
        data = dict(data)
        version = data.pop("version", None)
        if version != PLAN_VERSION:
            raise KakugoError(f"evaluation plan version {version!r}: this Kakugo reads version "
                              f"{PLAN_VERSION}; run the same Kakugo on every worker")
        data["models"] = tuple(ModelRef(**m) for m in data["models"])
        data["benchmarks"] = tuple(
            BenchmarkRef(**{**b, "include_paths": tuple(b.get("include_paths") or ())})
            for b in data["benchmarks"])
        data["languages"] = tuple(data["languages"])
        return cls(**data)

    def digest(self) -> str:
        """A short hash of the whole plan (recorded with shards and runs)."""
        text = json.dumps(self.to_json(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _absolute(path: str | Path | None, base: Path) -> str | None:
    if path in (None, ""):
        return None
    value = Path(str(path)).expanduser()
    return str((value if value.is_absolute() else base / value).resolve())


def backend_options(config: Mapping[str, Any], backend: str, *, batch_size: int | None = None,
                    device: str | None = None) -> dict[str, Any]:
    """The scoring backend's options: batch size, the transformers backend's device and dtype,
    then the backend plugin's own settings ([backends.NAME])."""
    from kakugo_core.plugin_settings import settings_for

    cfg = config["bench"]
    out: dict[str, Any] = {"batch_size": batch_size or cfg["batch_size"]}
    if backend in TRANSFORMERS_BACKENDS:
        out.update(device=device or cfg["device"], dtype=cfg["dtype"])
    elif device:
        out["device"] = device
    out.update(settings_for(config, "backends", backend))
    return out


def resolve_shots(benchmarks: Sequence[str | Benchmark], configured: Mapping[str, int],
                  n_shot_flag: int | None) -> dict[str, int]:
    """Shots per benchmark: ``--n-shot`` for every benchmark when given; else
    ``bench.n_shot_by_benchmark.NAME``, else the task file's own (TOML ``n_shot``, lm-eval
    ``num_fewshot``). A benchmark absent here uses the plan's ``n_shot``."""
    if n_shot_flag is not None:
        return {}
    out = {str(k): int(v) for k, v in configured.items()}
    for bench in benchmarks:
        default: Any = getattr(bench, "default_n_shot", None)
        if isinstance(bench, Benchmark) and default is not None:
            out.setdefault(bench.name, int(default))
    return out


def build_plan(
    config: Mapping[str, Any],
    *,
    models: Sequence[str],
    languages: Sequence[str],
    benchmarks: Sequence[str] | None = None,
    tasks_dirs: Sequence[str] = (),
    include_paths: Sequence[str] = (),
    n_shot: int | None = None,
    limit: int | None = None,
    limit_seed: int | None = None,
    backend: str | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    chat_template: bool | None = None,
    data_dir: str | Path | None = None,
    predictions_dir: str | Path | None = None,
    force: bool = False,
    base: Path | None = None,
    trust_task_code: bool | None = None,
) -> EvaluationPlan:
    """The plan from a merged configuration and the command line's flags (a flag given wins
    over its ``[bench]`` key). Benchmark names and task files are resolved and languages
    checked here, before anything runs; relative paths are taken from ``base`` (the current
    folder)."""
    from kakugo_core.languages import resolve
    from kakugo_core.plugin_settings import tables
    from kakugo_core.task_files import resolve_benchmarks
    from kakugo_core.toolkit.sampling import parse_limit, parse_seed

    base = base or Path.cwd()
    cfg = config["bench"]
    dirs = [str(_absolute(d, base)) for d in (tasks_dirs or cfg["tasks_dirs"])]
    paths = [str(_absolute(p, base)) for p in (include_paths or cfg["include_paths"])]
    entries = [str(b) for b in (benchmarks or cfg["benchmarks"])]
    trust = bool(cfg["trust_task_code"] if trust_task_code is None else trust_task_code)
    resolved = resolve_benchmarks(entries, tasks_dirs=dirs, include_paths=paths,
                                  trust_code=trust)
    backend_name = backend or str(cfg["backend"])
    plan = EvaluationPlan(
        models=tuple(ModelRef.of(m, base) for m in models),
        benchmarks=tuple(reference(b, paths) for b in resolved),
        languages=tuple(dict.fromkeys(resolve(lang).id for lang in languages)),
        n_shot=int(cfg["n_shot"] if n_shot is None else n_shot),
        shots=resolve_shots(resolved, cfg["n_shot_by_benchmark"], n_shot),
        limit=parse_limit(cfg["limit"]) if limit is None else (limit or None),
        limit_seed=parse_seed(cfg["limit_seed"] if limit_seed is None else limit_seed),
        backend=backend_name,
        backend_options=backend_options(config, backend_name, batch_size=batch_size,
                                        device=device),
        chat_template=bool(cfg["chat_template"] if chat_template is None else chat_template),
        data_dir=_absolute(data_dir or cfg["data_dir"], base),
        predictions_dir=_absolute(predictions_dir or cfg["predictions_dir"], base),
        revisions=dict(cfg["revisions"]),
        max_new_tokens=int(cfg["max_new_tokens"]),
        plugin_settings=tables(config, "benchmarks"),
        force=force,
        trust_task_code=trust,
    )
    return plan.with_objects(resolved)


__all__ = ["PLAN_VERSION", "BenchmarkRef", "EvaluationPlan", "ModelRef", "backend_options",
           "build_plan", "file_digest", "reference", "resolve_shots"]
