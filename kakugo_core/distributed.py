"""Distributed scoring: the cells of ``kakugo bench`` (model x benchmark x language) as tasks on
a Ray cluster or a Slurm job array, each task writing its own results shard, the shards merged
into the user's store.

A task is one model and a chunk of languages (every benchmark): it loads its model once for all
its cells. Each task writes ``<shard-dir>/<task>.sqlite`` (an ordinary results store, one
transaction per cell) and ``<task>.json`` (pid, host, cells done), so a killed task keeps every
cell it finished. Before dispatching and after gathering, every shard in the folder is merged
into the user's store (a row that differs from a stored one is reported and its shard kept,
never overwritten); a rerun of the same command computes only the cells still missing.

The plan (``plan.json`` in the shard folder) carries the
:class:`~kakugo_core.evaluation.EvaluationPlan` — the same value local scoring consumes, with
absolute paths and task files named by path and digest — and the task list, so a Slurm array
task is just ``kakugo bench --shard I/N --shard-dir DIR``, and a Ray task reads the same.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kakugo_core.errors import KakugoError
from kakugo_core.evaluation import EvaluationPlan
from kakugo_core.files import model_folder_revision, write_json_atomic, write_text_atomic
from kakugo_core.scoring import model_slug, plan_cells, score_plan
from kakugo_core.store import ENGINE_VERSION, BadRowError, ResultRow, ResultsStore, validate_row

EXECUTORS = ("local", "ray", "slurm")
PLAN_FILE = "plan.json"
SBATCH_FILE = "kakugo-bench.sbatch"

#: a stored cell: (model, revision, benchmark, language, n_shot, prompt_hash)
CellKey = tuple[str, str, str, str, int, str]


@dataclass(frozen=True)
class Task:
    """One model and a chunk of languages, every benchmark: one model load."""

    index: int
    model: str
    languages: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"task-{self.index:04d}-{model_slug(self.model)[:60]}"


@dataclass
class MergeReport:
    """What merging shards into a store did."""

    added: int = 0
    same: int = 0
    conflicts: list[str] = field(default_factory=list)
    merged_files: list[str] = field(default_factory=list)


@dataclass
class DistributedReport:
    """The outcome of a distributed bench: cells computed now, tasks that failed, cells still
    missing."""

    tasks: int
    dispatched: list[str]
    computed: list[tuple[str, str, str]]  # (model, benchmark, language)
    failed: dict[str, str]  # task name -> why
    missing: list[tuple[str, str, str]]
    merge: MergeReport


# -- planning ----------------------------------------------------------------------------------
def plan_tasks(
    models: Sequence[str], languages: Sequence[str], languages_per_task: int | None = None
) -> list[Task]:
    """Tasks in a stable order: per model, chunks of ``languages_per_task`` languages (all of
    them when None or 0)."""
    size = languages_per_task or len(languages) or 1
    tasks: list[Task] = []
    for model in models:
        for start in range(0, len(languages), size):
            tasks.append(Task(len(tasks), model, tuple(languages[start:start + size])))
    return tasks


def known_revision(model: str) -> str | None:
    """The revision a local model folder will be stored under; None for a Hub id (only known
    once the model is loaded)."""
    return model_folder_revision(model) if Path(model).is_dir() else None


def cell_keys(model: str, revision: str, cells: Iterable[Any], languages: Iterable[str]
              ) -> list[CellKey]:
    langs = set(languages)
    return [(model, revision, c.benchmark.name, c.language.id, c.n_shot, c.prompt_hash or "")
            for c in cells if c.language.id in langs]


def stored_keys(store: ResultsStore, models: Sequence[str]) -> set[CellKey]:
    return {(r.model, r.revision, r.benchmark, r.language, r.n_shot, r.prompt_hash)
            for r in store.rows(list(models))}


# -- merging -----------------------------------------------------------------------------------
#: a stored row's key: the results table's primary key, the engine version included
_COLUMNS = ("model", "revision", "benchmark", "language", "n_shot", "prompt_hash", "metric",
            "engine")


def _same(a: ResultRow, b: ResultRow) -> bool:
    return a.value == b.value and a.stderr == b.stderr and a.n == b.n


def merge_rows(rows: Iterable[ResultRow], dest: ResultsStore, replace: bool = False,
               source: str = "") -> MergeReport:
    """Insert ``rows`` into ``dest`` in one transaction, keeping their creation time, versions
    and engine version, through the store's one door (one bad row refuses them all, nothing
    written). A row whose key is stored with other numbers is a conflict: reported and left
    as stored, unless ``replace`` (``--force`` reruns)."""
    batch = list(rows)
    key_sql = " AND ".join(f"{c}=?" for c in _COLUMNS)
    for row in batch:  # refuse a bad row before taking the write lock
        try:
            validate_row(row)
        except BadRowError as exc:
            where = f"{dest.path}" + (f" (from {source})" if source else "")
            raise exc.at(where, "nothing was written") from None

    def work(conn: sqlite3.Connection) -> MergeReport:
        report = MergeReport()  # afresh on every try
        chosen: dict[tuple[Any, ...], ResultRow] = {}
        for row in batch:
            key = tuple(getattr(row, c) for c in _COLUMNS)
            found = chosen.get(key)
            if found is None:
                stored = conn.execute(f"SELECT value, stderr, n FROM results WHERE {key_sql}",
                                      key).fetchone()
                if stored is not None:
                    found = dataclasses.replace(row, value=stored[0], stderr=stored[1],
                                                n=stored[2])
            if found is not None and _same(found, row):
                report.same += 1
                continue
            if found is not None and not replace:
                report.conflicts.append(
                    f"{source}: {row.model} {row.benchmark} {row.language} {row.metric} "
                    f"engine {row.engine}: stored {found.value!r}, shard {row.value!r}")
                continue
            chosen[key] = row
        report.added = dest.insert_rows(chosen.values(), conn, source=source)
        return report

    return dest.transaction(work, "merge")


def merge_shards(shard_dir: Path, dest: ResultsStore, replace: bool = False,
                 remove: bool = True) -> MergeReport:
    """Merge every ``*.sqlite`` shard in ``shard_dir`` into ``dest``; delete each merged shard
    (and its progress file) unless it had conflicts."""
    total = MergeReport()
    for path in sorted(Path(shard_dir).glob("task-*.sqlite")):
        with ResultsStore(path) as shard:
            rows = shard.rows(strict=True)
        report = merge_rows(rows, dest, replace=replace, source=path.name)
        total.added += report.added
        total.same += report.same
        total.conflicts += report.conflicts
        if not report.conflicts:
            total.merged_files.append(path.name)
            if remove:
                path.unlink()
                path.with_suffix(".json").unlink(missing_ok=True)
    return total


# -- one task (runs on a Ray worker or a Slurm array task) --------------------------------------
class ShardStore(ResultsStore):
    """A task's own results file: cells in ``done`` (already in the user's store) count as
    present; every stored cell is recorded in ``<task>.json`` with the worker's pid and host."""

    def __init__(self, path: Path, done: set[CellKey], progress: Path, task: str) -> None:
        super().__init__(path)
        self.done = done
        self.progress = progress
        self.state: dict[str, Any] = {
            "task": task, "pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "computed": [], "finished": False}
        self.write_progress()

    def write_progress(self) -> None:
        write_json_atomic(self.progress, self.state)

    def has(self, model: str, revision: str, benchmark: str, language: str, n_shot: int,
            prompt_hash: str, engine: int = ENGINE_VERSION) -> bool:
        key = (model, revision, benchmark, language, n_shot, prompt_hash)
        return (key in self.done and engine == ENGINE_VERSION) or super().has(*key, engine)

    def put_result(self, model: str, revision: str, result: Any, versions: dict[str, str]
                   ) -> None:
        super().put_result(model, revision, result, versions)
        self.state["computed"].append([model, result.benchmark, result.language])
        self.write_progress()


def read_plan(shard_dir: Path) -> dict[str, Any]:
    path = Path(shard_dir) / PLAN_FILE
    try:
        return json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise KakugoError(f"{path} is missing: run `kakugo bench --executor ...` first, "
                          "it writes the plan the shards follow") from None


def run_task(plan: Mapping[str, Any], index: int, shard_dir: str | Path) -> dict[str, Any]:
    """Score task ``index`` of ``plan`` into its own shard; return what it computed."""

    entry = plan["tasks"][index]
    task = Task(entry["index"], entry["model"], tuple(entry["languages"]))
    shard_dir = Path(shard_dir)
    done = {tuple(k) for k in plan.get("done", {}).get(task.model, [])}
    store = ShardStore(shard_dir / f"{task.name}.sqlite", done,
                       shard_dir / f"{task.name}.json", task.name)
    try:
        evaluation = EvaluationPlan.from_json(plan["plan"]).only([task.model], task.languages)
        score_plan(evaluation, store, progress=False)
        store.state["finished"] = True
        store.write_progress()
    finally:
        store.close()
    return {"task": task.name, "computed": store.state["computed"]}


def run_shard(shard: str, shard_dir: str | Path) -> dict[str, Any]:
    """``--shard I/N``: run task I of the plan in ``shard_dir`` (N must match the plan)."""
    try:
        index, total = (int(x) for x in shard.split("/"))
    except ValueError:
        raise KakugoError(f"--shard {shard!r}: expected I/N, e.g. 0/4") from None
    plan = read_plan(Path(shard_dir))
    if total != len(plan["tasks"]) or not 0 <= index < total:
        raise KakugoError(f"--shard {shard}: the plan in {shard_dir} has "
                          f"{len(plan['tasks'])} tasks (0..{len(plan['tasks']) - 1})")
    return run_task(plan, index, shard_dir)


# -- executors ---------------------------------------------------------------------------------
def _run_ray(plan: dict[str, Any], indices: list[int], shard_dir: Path, options: Mapping[str, Any],
             log: Callable[[str], None]) -> tuple[list[list[str]], dict[str, str]]:
    try:
        import ray
    except ImportError:
        raise KakugoError("--executor ray needs Ray: pip install 'kakugo[ray]'") from None
    address = options.get("ray_address") or os.environ.get("RAY_ADDRESS")
    started_here = not ray.is_initialized()
    if address and address.startswith("ray://"):
        try:
            import grpc  # noqa: F401  (Ray Client's transport)
        except ImportError:
            raise KakugoError(f"RAY_ADDRESS={address} is a Ray Client address, which needs "
                              "ray[client]: pip install 'kakugo[ray]'") from None
    if started_here:
        env = {"env_vars": {k: os.environ[k] for k in ("PYTHONPATH", "KAKUGO_LOAD_PLUGINS",
                                                        "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE",
                                                        "HF_HOME")
                            if k in os.environ}}
        if address:
            ray.init(address=address, runtime_env=env, log_to_driver=False)
        else:  # a new local cluster (never one `ray start` left running), gone at the end
            ray.init(address="local", num_cpus=options.get("workers") or os.cpu_count(),
                     include_dashboard=False, object_store_memory=100 * 1024 * 1024,
                     _node_ip_address="127.0.0.1", runtime_env=env, log_to_driver=False)
    remote = ray.remote(run_task).options(
        num_cpus=options.get("cpus_per_task", 1), num_gpus=options.get("gpus_per_task", 0),
        max_retries=int(options.get("max_retries", 2)))
    plan_ref = ray.put(plan)
    pending = {remote.remote(plan_ref, i, str(shard_dir)): i  # type: ignore[arg-type]
               for i in indices}
    computed: list[list[str]] = []
    failed: dict[str, str] = {}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                i = pending.pop(ref)
                name = Task(i, plan["tasks"][i]["model"], ()).name
                try:
                    out = ray.get(ref)
                    computed += out["computed"]
                    log(f"{name}: done ({len(out['computed'])} cell(s) computed)")
                except Exception as exc:  # a crashed worker, an error in the task
                    why = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
                    failed[name] = f"{type(exc).__name__}: {why}"[:300]
                    log(f"{name}: failed ({failed[name]})")
    finally:
        if started_here:
            ray.shutdown()
    return computed, failed


def sbatch_script(shard_dir: Path, indices: list[int], total: int,
                  options: Mapping[str, Any]) -> str:
    """The job array: one array task per plan task, each ``kakugo bench --shard I/N``."""
    kakugo = options.get("kakugo_command") or f"{shlex.quote(sys.executable)} -m kakugo_core"
    lines = ["#!/usr/bin/env bash",
             "#SBATCH --job-name=kakugo-bench",
             f"#SBATCH --array={','.join(str(i) for i in indices)}",
             f"#SBATCH --output={shard_dir}/slurm-%A_%a.log",
             f"#SBATCH --cpus-per-task={int(options.get('cpus_per_task', 1))}"]
    if options.get("gpus_per_task"):
        lines.append(f"#SBATCH --gres=gpu:{int(options['gpus_per_task'])}")
    lines += ["set -euo pipefail",
              f'exec {kakugo} bench --shard "${{SLURM_ARRAY_TASK_ID}}/{total}" '
              f"--shard-dir {shlex.quote(str(shard_dir))}", ""]
    return "\n".join(lines)


def _run_slurm(plan: dict[str, Any], indices: list[int], shard_dir: Path,
               options: Mapping[str, Any], log: Callable[[str], None]
               ) -> tuple[list[list[str]], dict[str, str]]:
    script = shard_dir / SBATCH_FILE
    write_text_atomic(script, sbatch_script(shard_dir, indices, len(plan["tasks"]), options))
    sbatch = options.get("sbatch") or os.environ.get("KAKUGO_SBATCH") or "sbatch"
    cmd = [*shlex.split(sbatch), "--wait", "--parsable", str(script)]
    log(f"submitting {script} ({len(indices)} array task(s)): {' '.join(cmd)}")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise KakugoError(f"{sbatch!r} not found: submit {script} yourself "
                          "(sbatch --wait), then run this command again to merge") from None
    failed: dict[str, str] = {}
    computed: list[list[str]] = []
    for i in indices:
        name = Task(i, plan["tasks"][i]["model"], ()).name
        progress = shard_dir / f"{name}.json"
        state = json.loads(progress.read_text("utf-8")) if progress.exists() else {}
        computed += state.get("computed", [])
        if not state.get("finished"):
            failed[name] = ("did not finish" if state else "did not start") + (
                f" (sbatch exit {proc.returncode})" if proc.returncode else "")
    return computed, failed


# -- the driver --------------------------------------------------------------------------------
def run_distributed(
    evaluation: EvaluationPlan, store: ResultsStore, executor: str, shard_dir: str | Path,
    options: Mapping[str, Any] | None = None, log: Callable[[str], None] = print,
    languages_per_task: int | None = None,
) -> DistributedReport:
    """Plan, dispatch the tasks with missing cells, merge the shards into ``store``."""
    options = dict(options or {})
    if executor not in ("ray", "slurm"):
        raise KakugoError(f"unknown executor {executor!r}: choose one of {', '.join(EXECUTORS)}")
    if not evaluation.models:
        raise KakugoError("no model given: pass --model (a Hub id or a local folder)")
    cells = plan_cells(evaluation)  # bad names and data fail here, before anything runs
    sent = evaluation.to_json()  # what cannot reach a worker fails here too
    models = evaluation.model_names()
    language_ids = list(dict.fromkeys(c.language.id for c in cells))
    shard_dir = Path(shard_dir).resolve()
    shard_dir.mkdir(parents=True, exist_ok=True)
    merge = merge_shards(shard_dir, store, replace=evaluation.force)  # what an earlier run left
    if merge.added:
        log(f"merged {merge.added} row(s) left by an earlier run from {shard_dir}")
    tasks = plan_tasks(models, language_ids, languages_per_task)
    stored = set() if evaluation.force else stored_keys(store, models)
    revisions = {m.name: known_revision(m.location) for m in evaluation.models}
    done: dict[str, list[CellKey]] = {}
    indices: list[int] = []
    for task in tasks:
        revision = revisions[task.model]
        if revision is not None:
            wanted = cell_keys(task.model, revision, cells, task.languages)
            if all(k in stored for k in wanted):
                continue  # every cell of this task is in the store
        indices.append(task.index)
        done[task.model] = sorted(k for k in stored if k[0] == task.model)
    plan = {"plan": sent, "plan_digest": evaluation.digest(), "done": done,
            "tasks": [{"index": t.index, "model": t.model, "languages": list(t.languages)}
                      for t in tasks]}
    write_json_atomic(shard_dir / PLAN_FILE, plan)
    log(f"{len(cells) * len(models)} cell(s) in {len(tasks)} task(s); "
        f"{len(indices)} task(s) with missing cells to run on {executor}")
    computed: list[list[str]] = []
    failed: dict[str, str] = {}
    if indices:
        runner = _run_ray if executor == "ray" else _run_slurm
        computed, failed = runner(plan, indices, shard_dir, options, log)
        after = merge_shards(shard_dir, store, replace=evaluation.force)
        merge.added += after.added
        merge.same += after.same
        merge.conflicts += after.conflicts
        merge.merged_files += after.merged_files
    missing = missing_cells(models, cells, store, revisions)
    return DistributedReport(len(tasks), [tasks[i].name for i in indices],
                             [(c[0], c[1], c[2]) for c in computed], failed, missing, merge)


def missing_cells(models: Sequence[str], cells: Sequence[Any], store: ResultsStore,
                  revisions: Mapping[str, str | None]) -> list[tuple[str, str, str]]:
    """Planned (model, benchmark, language) cells the store does not have (for a Hub model,
    under any revision)."""
    stored = stored_keys(store, models)
    loose = {(k[0], k[2], k[3], k[4], k[5]) for k in stored}
    out = []
    for model in models:
        for c in cells:
            key = (model, revisions[model] or "", c.benchmark.name, c.language.id, c.n_shot,
                   c.prompt_hash or "")
            found = key in stored if revisions[model] is not None else (
                (model, *key[2:]) in loose)
            if not found:
                out.append((model, c.benchmark.name, c.language.id))
    return out


def summary(report: DistributedReport) -> str:
    """One line per fact, for the terminal."""
    lines = [f"{len(report.computed)} cell(s) computed in {len(report.dispatched)} task(s); "
             f"{report.merge.added} row(s) merged into the store"]
    for name, why in report.failed.items():
        lines.append(f"task {name} failed: {why}")
    for conflict in report.merge.conflicts:
        lines.append(f"conflict, shard kept: {conflict}")
    return "\n".join(lines)


def distributed_bench(
    evaluation: EvaluationPlan, store: ResultsStore, executor: str, shard_dir: str | Path | None,
    languages_per_task: int | None, options: Mapping[str, Any],
) -> DistributedReport:
    """``kakugo bench --executor ray|slurm``: run, report on standard error, and fail in one
    line when cells are still missing (the same command again completes them)."""
    import click

    def log(message: str) -> None:
        click.echo(message, err=True)

    folder = Path(shard_dir) if shard_dir else Path(f"{store.path.absolute()}.shards")
    report = run_distributed(evaluation, store, executor, folder, options, log, languages_per_task)
    log(summary(report))
    if report.merge.conflicts:
        raise KakugoError(f"{len(report.merge.conflicts)} stored row(s) differ from the "
                          f"shards' (kept as stored; shards left in {folder})")
    if report.missing:
        raise KakugoError(
            f"{len(report.missing)} cell(s) still missing ({len(report.failed)} task(s) "
            "failed); run the same command again to compute only those")
    return report
