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
    include_paths: tuple[str, ...], language_names: tuple[str, ...], n_shot: int | None,
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
    from kakugo_core.config import load_config, section
    from kakugo_core.plugin_settings import settings_for, tables
    from kakugo_core.scoring import lm_eval_schema, run_bench
    from kakugo_core.store import ResultsStore
    from kakugo_core.task_files import default_shots, resolve_benchmarks
    from kakugo_core.toolkit.sampling import parse_limit, parse_seed

    if shard:
        from kakugo_core.distributed import run_shard

        if not shard_dir:
            raise click.UsageError("--shard needs --shard-dir (the folder with plan.json)")
        ran = run_shard(shard, shard_dir)
        click.echo(f"{ran['task']}: {len(ran['computed'])} cell(s) computed")
        return
    if not language_names:
        raise click.UsageError("give --languages (names, ISO codes or FLORES ids)")
    config = load_config(config_file, overrides)
    cfg = section(config, "bench")
    names = resolve_benchmarks(_split(benchmark_names) or list(cfg["benchmarks"]),
                               tasks_dirs=tasks_dirs or cfg["tasks_dirs"],
                               include_paths=include_paths or cfg["include_paths"])
    languages = _split(language_names)
    backend_name = backend or cfg["backend"]
    backend_options = {"batch_size": batch_size or cfg["batch_size"]}
    if backend_name in ("transformers", "hf", "huggingface"):
        backend_options.update(device=device or cfg["device"], dtype=cfg["dtype"])
    elif device:
        backend_options["device"] = device
    backend_options.update(settings_for(config, "backends", backend_name))
    n = cfg["n_shot"] if n_shot is None else n_shot
    limit = parse_limit(cfg["limit"]) if limit is None else (limit or None)
    seed = parse_seed(cfg["limit_seed"] if limit_seed is None else limit_seed)
    if export_dir:
        _export(export_dir, names, languages, {
            "n_shot": n, "limit": limit, "limit_seed": seed,
            "data_dir": data_dir or cfg["data_dir"] or None,
            "chat_template": False, "revisions": cfg["revisions"],
            "max_new_tokens": cfg["max_new_tokens"]})
        return
    if not models:
        raise click.UsageError("give at least one -m/--model (a Hub id or a local folder)")
    store = ResultsStore(db or cfg["db"] or None)
    if executor != "local":
        from kakugo_core.distributed import BenchSpec, distributed_bench

        if as_json:
            store.close()
            raise click.UsageError("--json works with --executor local only; read the merged "
                                   "results with `kakugo leaderboard --format json`")

        try:
            distributed_bench(BenchSpec(
                list(models), names, languages, backend=backend_name, n_shot=n,
                limit=(cfg["limit"] if limit is None else limit) or None,
                data_dir=data_dir or cfg["data_dir"] or None, force=force,
                backend_options=backend_options,
                predictions_dir=predictions_dir or cfg["predictions_dir"] or None,
                chat_template=cfg["chat_template"] if chat_template is None else chat_template,
                benchmark_options={"revisions": cfg["revisions"],
                                   "max_new_tokens": cfg["max_new_tokens"]},
                n_shot_by_benchmark=cfg["n_shot_by_benchmark"] if n_shot is None else None,
            ), store, executor, shard_dir, languages_per_task, {
                "workers": workers, "gpus_per_task": gpus_per_task, "max_retries": max_retries})
            _print_table(store, list(models), [], None, names, languages)
        finally:
            store.close()
        return
    try:
        results = run_bench(
            list(models), names, languages, store=store, backend=backend_name, n_shot=n,
            limit=limit,
            data_dir=data_dir or cfg["data_dir"] or None, force=force,
            backend_options=backend_options,
            predictions_dir=predictions_dir or cfg["predictions_dir"] or None,
            progress=not (no_progress or as_json),
            chat_template=cfg["chat_template"] if chat_template is None else chat_template,
            benchmark_options={"revisions": cfg["revisions"],
                               "max_new_tokens": cfg["max_new_tokens"],
                               "plugin_settings": tables(config, "benchmarks"),
                               "limit_seed": seed},
            n_shot_by_benchmark=(default_shots(names, cfg["n_shot_by_benchmark"])
                                 if n_shot is None else None),
        )
        if as_json:
            out = []
            for model in models:
                mine = [r for r in results if r.model == model]
                out.append(lm_eval_schema(mine, model, mine[0].model_revision if mine else ""))
            click.echo(json.dumps(out, indent=2, ensure_ascii=False))
            return
        shots = {r.n_shot for r in results}  # a benchmark may fix its own (e.g. 0-shot)
        _print_table(store, list(models), results, shots.pop() if len(shots) == 1 else None)
    finally:
        store.close()


def _export(
    out_dir: str, names: list[Any], languages: list[str], options: dict[str, Any]
) -> None:
    from kakugo_core.languages import resolve
    from kakugo_core.lm_eval_tasks import export_task
    from kakugo_core.plugins import registry

    benches = [registry("benchmarks").create(n) if isinstance(n, str) else n for n in names]
    langs = [resolve(lang) for lang in languages]
    tasks = [export_task(b, lang, out_dir, options).stem for b in benches for lang in langs]
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
