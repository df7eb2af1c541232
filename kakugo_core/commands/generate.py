"""``kakugo generate``: have the teacher write prompts, responses and translations."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kakugo_core.cli_options import config_options, languages_option, one_language

if TYPE_CHECKING:
    from kakugo_core.generation import GenerationSummary

#: exit status when ``--max-cost`` stopped the run (finished rows are kept)
BUDGET_EXIT_CODE = 3


@click.command("generate")
@click.argument("language", required=False)
@languages_option("The language to generate data in (or give it as LANGUAGE)", one=True)
@click.option("--teacher", "teacher_name", metavar="NAME",
              help="Teacher plugin (default: [teacher].plugin, 'openai').")
@config_options
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the JSONL files go (default: <runs_dir>/<language id>/generate).")
@click.option("--max-cost", type=float, metavar="USD",
              help="Stop cleanly before spending more than this (0: no limit).")
@click.option("--generators", metavar="A,B",
              help="Run only these generators, in this order (default: [generate].generators).")
@click.option("--no-progress", is_flag=True, help="No progress bars (logs and CI).")
def generate(
    language: str | None,
    languages: tuple[str, ...],
    teacher_name: str | None,
    config_file: str | None,
    overrides: tuple[str, ...],
    work_dir: Path | None,
    max_cost: float | None,
    generators: str | None,
    no_progress: bool,
) -> None:
    """Generate training data in LANGUAGE (a name, ISO code or FLORES id) with a teacher.

    Runs the generators in order (topic, scenario, context, improve, responses, translate) and
    appends rows to prompts.jsonl, responses.jsonl and translations.jsonl in the work folder.
    Every teacher reply is cached, so running the same command again after a crash, Ctrl-C or
    a --max-cost stop resumes without paying twice. A summary (rows per method, rejects per
    reason, tokens, cost) is printed and written to summary.json. Exits with status 3 when
    --max-cost stopped the run.
    """
    from kakugo_core.config import load_config
    from kakugo_core.generation import run_generation
    from kakugo_core.languages import resolve

    extra: dict[str, dict[str, object]] = {}
    if teacher_name:
        extra["teacher"] = {"plugin": teacher_name}
    if max_cost is not None:
        extra["generate"] = {"max_cost": max_cost}
    name = one_language(languages, language) or ""
    config = load_config(config_file, overrides, extra)
    lang = resolve(name)
    work = work_dir or Path(config["run"]["runs_dir"]) / lang.id / "generate"
    names = [n.strip() for n in generators.split(",") if n.strip()] if generators else None
    summary = run_generation(lang, config, work, generators=names, progress=not no_progress)
    _print_summary(summary, work)
    if summary.stopped:
        click.echo(f"kakugo: stopped: {summary.stopped}", err=True)
        sys.exit(BUDGET_EXIT_CODE)


def _print_summary(summary: GenerationSummary, work: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"generated in {work}")
    table.add_column("output:method")
    table.add_column("rows", justify="right")
    for key, count in summary.rows.items():
        table.add_row(key, str(count))
    for key, count in summary.rejects.items():
        table.add_row(f"[red]rejected {key}", str(count))
    usage = summary.usage
    table.add_row("teacher calls (cached)", f"{usage['calls']} ({usage['cached_calls']})")
    table.add_row("tokens in / out", f"{usage['prompt_tokens']} / {usage['completion_tokens']}")
    table.add_row("cost (USD)", f"{usage['cost']:.4f}")
    Console().print(table)
