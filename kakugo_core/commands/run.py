"""``kakugo run`` and ``kakugo status``: the whole pipeline, and where a run stands."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from kakugo_core.cli_options import config_options, json_option, languages_option, split_csv
from kakugo_core.pipeline import STAGES


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@contextlib.contextmanager
def _demo(language: str, run_dir: Path) -> Iterator[list[str]]:
    """Start the corpus teacher on 127.0.0.1 and yield the demo's configuration overrides."""
    from kakugo_core.demo import (
        CorpusTeacher,
        DemoCorpus,
        build_demo_base,
        demo_overrides,
        write_demo_inputs,
    )
    from kakugo_core.languages import resolve
    from kakugo_core.teacher_server import OpenAICompatServer

    corpus = DemoCorpus.load(resolve(language))
    inputs = run_dir / "demo-inputs"
    texts, instructions = write_demo_inputs(corpus, inputs)
    base = build_demo_base(inputs / "base-model", corpus)
    with OpenAICompatServer(CorpusTeacher(corpus)) as server:
        yield demo_overrides(texts, instructions, server.base_url, base)


@click.command("run")
@click.argument("language", required=False)
@languages_option("Several languages, run one after another")
@click.option("--demo", is_flag=True,
              help="Offline demo: a local corpus teacher over HTTP, a tiny student, bundled "
                   "SIB-200/FLORES data; minutes on a CPU. LANGUAGE defaults to Javanese.")
@config_options
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Run folder (default: <run.runs_dir>/<language id>, demo-<id> for --demo).")
@click.option("--stages", default=",".join(STAGES), show_default=True,
              help="Which stages to run, comma-separated.")
@click.option("--force", "force", default="", help="Stages to re-run even if up to date.")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path),
              help="Results store (default: results.sqlite in the run folder).")
@click.option("--repo-id", help="Release repository id (default local/kakugo-<iso639-3>).")
@click.option("--gpu-price-per-hour", type=float, default=2.5, show_default=True,
              help="USD per GPU hour, for the cost report.")
@click.option("--no-progress", is_flag=True, help="No progress bars (logs only).")
def run_command(language: str | None, languages: tuple[str, ...], demo: bool,
                config_file: str | None, overrides: tuple[str, ...], run_dir: Path | None,
                stages: str, force: str, db: Path | None, repo_id: str | None,
                gpu_price_per_hour: float,
                no_progress: bool) -> None:
    """Turn LANGUAGE into a released student: generate → dataset → train → bench → release.

    Every stage works in its own sub-folder of the run folder with a manifest; finished stages
    are skipped while their inputs are unchanged, and an interrupted run resumes where it
    stopped (no teacher call is paid for twice). Examples:

    \b
      kakugo run --demo                      # offline, minutes on a CPU
      kakugo run Javanese --config run.toml
      kakugo run -l jav_Latn,sun_Latn --set teacher.base_url=http://gpu:8000/v1
    """
    from kakugo_core.config import load_config
    from kakugo_core.errors import KakugoError
    from kakugo_core.languages import resolve
    from kakugo_core.pipeline import run_lock
    from kakugo_core.run import RunOptions, run_language

    names = split_csv(languages) + ([language] if language else [])
    if demo and not names:
        names = ["jav_Latn"]
    if not names:
        raise KakugoError("name a language (e.g. `kakugo run Javanese`) or use --demo")
    unknown = [s for s in _csv(stages) + _csv(force) if s not in STAGES]
    if unknown:
        raise KakugoError(f"unknown stage {unknown[0]!r}; stages are {', '.join(STAGES)}")
    langs = [resolve(n) for n in names]  # every name is checked before any work starts
    load_config(config_file, overrides)  # so is the configuration
    if run_dir is not None and len(langs) > 1:
        raise KakugoError("--run-dir names one run; with several languages use run.runs_dir")
    summaries = []
    for lang in langs:
        folder = run_dir
        if folder is None:
            base = Path(load_config(config_file, overrides)["run"]["runs_dir"])
            folder = base / (f"demo-{lang.id}" if demo else lang.id)
        options = RunOptions(
            run_dir=folder, stages=tuple(_csv(stages)), force=tuple(_csv(force)), db=db,
            repo_id=repo_id, gpu_price_per_hour=gpu_price_per_hour, progress=not no_progress,
            echo=_echo_for(lang.id),
        )
        # one run per folder: the lock is taken before the demo writes its inputs there
        with run_lock(folder):
            if demo:
                with _demo(lang.id, folder) as demo_sets:
                    # the demo's settings first, so a --config file can change them (a real base)
                    config = load_config(config_file, overrides, presets=demo_sets)
                    summaries.append(run_language(lang, config, options))
            else:
                summaries.append(run_language(lang, load_config(config_file, overrides),
                                              options))
    for summary in summaries:
        _print_summary(summary, Path(summary["run_dir"]))


def _echo_for(language_id: str) -> Callable[[str], None]:
    def echo(line: str) -> None:
        click.echo(f"[{language_id}] {line}", err=True)

    return echo


def _print_summary(summary: dict, run_dir: Path) -> None:
    # plain lines: a log must not get them re-wrapped at 80 columns
    cost = summary["cost"]
    click.echo(f"\n{summary['language']}: {run_dir}")
    click.echo(
        f"cost: teacher ${cost['teacher_cost_usd']:.4f} ({cost['teacher_prompt_tokens']:,} + "
        f"{cost['teacher_completion_tokens']:,} tokens), training ${cost['train_cost_usd']:.4f} "
        f"({cost['train_seconds']:.0f} s); total ${cost['total_cost_usd']:.4f} against the "
        f"paper's under ${cost['paper_budget_usd']:.0f} per language"
    )
    card = run_dir / "release" / "out" / "README.md"
    if card.exists():
        click.echo(f"model card: {card}")
    board = _leaderboard(run_dir)
    if board:  # already folded to the terminal's width (100 columns in a log): print as is
        click.echo(board, nl=False)


def _leaderboard(run_dir: Path) -> str:
    db = run_dir / "results.sqlite"
    if not db.exists():
        return ""
    from kakugo_core.leaderboard import render_store
    from kakugo_core.run import run_model, stored_name
    from kakugo_core.store import ResultsStore

    manifest = json.loads((run_dir / "train" / "manifest.json").read_text("utf-8")) \
        if (run_dir / "train" / "manifest.json").exists() else {}
    base = manifest.get("config", {}).get("train", {}).get("base_model")
    if not base:
        return render_store(db, fmt="table")
    with ResultsStore(db, readonly=True) as store:
        stored = store.models()
    # the base as the bench stage stored it: {run}/... inside the run folder (or as an older
    # run stored it); a store without it gets a leaderboard with no baseline, not an error
    name = stored_name(stored, run_model(base, run_dir).name, run_dir)
    return render_store(db, fmt="table", baseline=name if name in stored else None)


@click.command("status")
@click.argument("run_dir", type=click.Path(path_type=Path))
@json_option("Print the manifests as JSON.")
def status_command(run_dir: Path, as_json: bool) -> None:
    """Show each stage of RUN_DIR: state (the current step while training), counts, time and
    cost."""
    from rich.console import Console

    from kakugo_core.run import stage_table
    from kakugo_core.termtable import Col, fit, print_fitted, terminal_width

    manifests = stage_table(run_dir)
    if as_json:
        from kakugo_core.secrets import redact

        click.echo(redact(json.dumps([m.__dict__ for m in manifests], indent=2, default=str)))
        return
    cols = [Col("stage", key=True), Col("state", wrap=True), Col("attempts", drop=1),
            Col("time", justify="right"), Col("cost (USD)", justify="right", drop=2),
            Col("counts", wrap=True)]
    rows = [[m.stage, _state(m, run_dir), str(m.attempts), _time(m),
             "-" if m.status == "pending" else f"{m.cost_usd:.4f}",
             _short_counts(m.counts)] for m in manifests]
    print_fitted(fit(cols, rows, terminal_width(), title=f"run {run_dir}"), Console())


def _state(manifest: Any, run_dir: Path) -> str:
    text = manifest.status + (f" ({manifest.error})" if manifest.error else "")
    if manifest.status == "running":
        progress = _progress(run_dir / manifest.stage)
        if progress:
            text += f": {progress}"
    return text


def _progress(stage_dir: Path) -> str:
    """The training progress line from the newest ``progress.json`` under the stage folder."""
    from kakugo_core.toolkit.progress import PROGRESS_FILE, progress_line

    # pathlib's ** also enters the hidden .model.partial folder the trainer works in
    files = sorted(stage_dir.glob(f"**/{PROGRESS_FILE}"), key=lambda p: p.stat().st_mtime)
    if not files:
        return ""
    try:
        data = json.loads(files[-1].read_text("utf-8"))
        return progress_line(str(data.get("title", "training")), int(data["step"]),
                             int(data["max_steps"]), data.get("loss"),
                             data.get("tokens_per_second"), data.get("eta_seconds"))
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def _time(manifest: Any) -> str:
    """How long the stage ran, or has been running (a running manifest stores 0 seconds)."""
    from datetime import datetime, timezone

    seconds = manifest.seconds
    if manifest.status == "running" and manifest.started:
        try:
            started = datetime.fromisoformat(manifest.started)
            seconds = (datetime.now(timezone.utc) - started).total_seconds()
        except ValueError:
            return "-"
    if manifest.status == "pending":
        return "-"
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_value(v)}" for k, v in value.items()) or "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(_value(v) for v in value) or "-"
    return str(value)


def _short_counts(counts: dict) -> str:
    """Each count by its own name; a nested mapping (splits, scores, usage) item by item,
    never summed: its numbers measure different things."""
    parts = [f"{key}: {_value(value)}" for key, value in counts.items()
             if value not in ("", None, {}, [])]
    return "; ".join(parts)
