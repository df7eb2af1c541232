"""``kakugo bench``: score models on benchmarks x languages into the results store."""

from __future__ import annotations

import json
from typing import Any

import click


def _split(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for text in values for v in text.split(",") if v.strip()]


@click.command("bench")
@click.option("-m", "--model", "models", multiple=True, metavar="MODEL",
              help="Hub id or local model folder; repeat for several models.")
@click.option("-b", "--benchmarks", "benchmark_names", multiple=True, metavar="A,B",
              help="Comma-separated benchmarks (default: bench.benchmarks from the config: "
                   "sib200, belebele, global_mmlu, flores): registered names, declarative "
                   "TOML files or folders, lm-eval task names (with --include-path) or YAML "
                   "files; see docs/declarative.md.")
@click.option("--tasks-dir", "tasks_dirs", multiple=True, type=click.Path(file_okay=False),
              metavar="DIR", help="A folder of declarative benchmark TOML files whose names "
              "-b may use; repeatable (default: bench.tasks_dirs).")
@click.option("--include-path", "include_paths", multiple=True,
              type=click.Path(file_okay=False), metavar="DIR",
              help="A folder of lm-evaluation-harness task YAML whose tasks -b may name "
                   "(multiple_choice and loglikelihood, scored by Kakugo); repeatable "
                   "(default: bench.include_paths).")
@click.option("--trust-task-code/--no-trust-task-code", default=None,
              help="Let task files run the Python code they name (lm-eval YAML `!function`: "
                   "process_docs, class: tasks, custom_dataset), as lm_eval does; without it "
                   "such a file is refused before any of its code runs (default: "
                   "bench.trust_task_code, false). Only for task files you trust.")
@click.option("-l", "--languages", "language_names", multiple=True,
              metavar="A,B", help="Comma-separated languages: names, ISO codes or FLORES ids.")
@click.option("--n-shot", type=click.IntRange(min=0), default=None,
              help="Few-shot examples per item, for every benchmark (default: "
                   "bench.n_shot, 3, or bench.n_shot_by_benchmark.NAME).")
@click.option("--limit", type=click.IntRange(min=0), default=None,
              help="Score a seeded random sample of N items per benchmark and language "
                   "(0: all), stratified so every label keeps its share (SIB-200 topics, "
                   "answer letters; FLORES: a plain sample). The sample is part of the prompt "
                   "hash (default: bench.limit).")
@click.option("--limit-seed", type=int, default=None,
              help="Seed of the --limit sample (default: bench.limit_seed, 0).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Local benchmark files (DIR/<benchmark>/<code>/<split>.jsonl|tsv|parquet); "
                   "needed offline for anything but the bundled SIB-200/FLORES sample.")
@click.option("--db", type=click.Path(dir_okay=False), default=None,
              help="Results database (default: bench.db, else $KAKUGO_DB, else the user's data "
                   "directory).")
@click.option("--backend", default=None, help="Scoring backend (default: transformers; also "
              "lm-eval, and any a plugin registers).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Contexts scored together (default: bench.batch_size).")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: auto).")
@click.option("--force", is_flag=True, help="Recompute cells already in the store.")
@click.option("--chat-template/--no-chat-template", default=None,
              help="Wrap prompts in the model's chat template (default: bench.chat_template).")
@click.option("--predictions-dir", type=click.Path(file_okay=False), default=None,
              help="Write per-item predictions to DIR/<model>/<benchmark>/<language>.jsonl.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="User TOML file.")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override one configuration key; repeatable.")
@click.option("--json", "as_json", is_flag=True,
              help="Print results as JSON in lm-eval's results schema (one object per model).")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@click.option("--export-lm-eval", "export_dir", type=click.Path(file_okay=False), default=None,
              help="Instead of scoring, write each benchmark x language as an lm-eval task "
                   "(YAML + JSONL with the exact prompts) to DIR and print the lm_eval command.")
@click.option("--executor", type=click.Choice(["local", "ray", "slurm"]), default="local",
              show_default=True, help="Where the cells run: this process, a Ray cluster "
              "(RAY_ADDRESS or a local one) or a Slurm job array (see docs/leaderboard.md).")
@click.option("--shard-dir", type=click.Path(file_okay=False), default=None,
              help="Folder for the plan and per-task result shards (visible to every worker; "
                   "default: <db>.shards).")
@click.option("--languages-per-task", type=click.IntRange(min=0), default=0,
              help="Languages per task (each task loads its model once); 0: all of them.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="CPUs of the local Ray cluster started when RAY_ADDRESS is unset.")
@click.option("--gpus-per-task", type=click.FloatRange(min=0), default=0,
              help="GPUs each Ray task or Slurm array task asks for.")
@click.option("--max-retries", type=click.IntRange(min=0), default=2, show_default=True,
              help="Ray: resubmit a task whose worker died this many times.")
@click.option("--shard", default=None, metavar="I/N",
              help="Run task I of the N in --shard-dir's plan into its own shard (what each "
                   "Slurm array task runs).")
def bench(
    models: tuple[str, ...], benchmark_names: tuple[str, ...], tasks_dirs: tuple[str, ...],
    include_paths: tuple[str, ...], trust_task_code: bool | None,
    language_names: tuple[str, ...], n_shot: int | None,
    limit: int | None, limit_seed: int | None, data_dir: str | None, db: str | None,
    backend: str | None, batch_size: int | None, device: str | None, force: bool,
    chat_template: bool | None, predictions_dir: str | None, config_file: str | None,
    overrides: tuple[str, ...], as_json: bool, no_progress: bool, export_dir: str | None,
    executor: str, shard_dir: str | None, languages_per_task: int, workers: int | None,
    gpus_per_task: float, max_retries: int, shard: str | None,
) -> None:
    """Score MODELs on benchmarks x languages and show the results.

    Cells already in the store (same model, revision, benchmark, language, n-shot and prompt)
    are skipped unless --force. Offline, the bundled real SIB-200 sample (eng, jav, sun, swh,
    yor) serves sib200 and flores; other data comes from --data-dir.

    \b
    Example (offline, tiny model, real SIB-200 items):
      kakugo tiny-model tiny && kakugo bench -m tiny -b sib200 -l jav_Latn --limit 70
    """
    from kakugo_core.config import load_config
    from kakugo_core.evaluation import build_plan
    from kakugo_core.scoring import lm_eval_schema, score_plan
    from kakugo_core.store import ResultsStore

    if shard:
        from kakugo_core.distributed import run_shard

        if not shard_dir:
            raise click.UsageError("--shard needs --shard-dir (the folder with plan.json)")
        ran = run_shard(shard, shard_dir)
        click.echo(f"{ran['task']}: {len(ran['computed'])} cell(s) computed")
        return
    if not language_names:
        raise click.UsageError("give --languages (names, ISO codes or FLORES ids)")
    if not models and not export_dir:
        raise click.UsageError("give at least one -m/--model (a Hub id or a local folder)")
    config = load_config(config_file, overrides)
    plan = build_plan(
        config, models=list(models), languages=_split(language_names),
        benchmarks=_split(benchmark_names) or None, tasks_dirs=tasks_dirs,
        include_paths=include_paths, n_shot=n_shot, limit=limit, limit_seed=limit_seed,
        backend=backend, batch_size=batch_size, device=device, chat_template=chat_template,
        data_dir=data_dir, predictions_dir=predictions_dir, force=force,
        trust_task_code=trust_task_code)
    if export_dir:
        _export(export_dir, plan)
        return
    store = ResultsStore(db or config["bench"]["db"] or None)
    names = [ref.name for ref in plan.benchmarks]
    if executor != "local":
        from kakugo_core.distributed import distributed_bench

        if as_json:
            store.close()
            raise click.UsageError("--json works with --executor local only; read the merged "
                                   "results with `kakugo leaderboard --format json`")
        try:
            distributed_bench(plan, store, executor, shard_dir, languages_per_task, {
                "workers": workers, "gpus_per_task": gpus_per_task, "max_retries": max_retries})
            _print_table(store, plan.model_names(), [], None, names, list(plan.languages))
        finally:
            store.close()
        return
    try:
        results = score_plan(plan, store, progress=not (no_progress or as_json))
        if as_json:
            out = []
            for model in plan.model_names():
                mine = [r for r in results if r.model == model]
                out.append(lm_eval_schema(mine, model, mine[0].model_revision if mine else ""))
            click.echo(json.dumps(out, indent=2, ensure_ascii=False))
            return
        shots = {r.n_shot for r in results}  # a benchmark may fix its own (e.g. 0-shot)
        _print_table(store, plan.model_names(), results, shots.pop() if len(shots) == 1 else None)
    finally:
        store.close()


def _export(out_dir: str, plan: Any) -> None:
    from kakugo_core.languages import resolve
    from kakugo_core.lm_eval_tasks import export_task
    from kakugo_core.plugins import registry

    options = {"n_shot": plan.n_shot, "limit": plan.limit, "limit_seed": plan.limit_seed,
               "data_dir": plan.data_dir, "chat_template": False,
               "revisions": dict(plan.revisions), "max_new_tokens": plan.max_new_tokens}
    benches = [registry("benchmarks").create(n) if isinstance(n, str) else n
               for n in plan.benchmark_objects()]
    langs = [resolve(lang) for lang in plan.languages]
    tasks = [export_task(b, lang, out_dir, {**options, "n_shot": plan.shots.get(b.name,
                                                                               plan.n_shot)}
                         ).stem for b in benches for lang in langs]
    click.echo(f"wrote {len(tasks)} lm-eval task(s) to {out_dir}; run them with:")
    click.echo(f"  lm_eval --model hf --model_args pretrained=MODEL --include_path {out_dir} "
               f"--tasks {','.join(tasks)}")


def _print_table(
    store: Any, models: list[str], results: list[Any], n_shot: int | None,
    benchmarks: list[str] | None = None, languages: list[str] | None = None,
) -> None:
    from kakugo_core.leaderboard import render_store

    benchmarks = benchmarks or sorted({r.benchmark for r in results})
    languages = languages or sorted({r.language for r in results})
    # every language's cell next to the mean, so one weak language is not averaged away
    click.echo(render_store(store, fmt="table", models=models, benchmarks=benchmarks,
                            languages=languages, n_shot=n_shot, per_language=len(languages) > 1))
