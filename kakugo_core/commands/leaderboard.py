"""``kakugo leaderboard``: the results store as a table, Markdown, CSV, JSON or an HTML page."""

from __future__ import annotations

import sys

import click

from kakugo_core.cli_options import (
    benchmarks_option,
    config_options,
    languages_option,
    model_option,
    out_option,
    overwrite_option,
)


def _split(values: tuple[str, ...]) -> list[str] | None:
    """Repeatable, comma-separated option values as one list (None when not given)."""
    items = [part.strip() for value in values for part in value.split(",") if part.strip()]
    return items or None


@click.command("leaderboard")
@click.option("--db", "db", type=click.Path(dir_okay=False),
              help="Results database (default: bench.db from the configuration, else $KAKUGO_DB, "
                   "else the user's data directory).")
@click.option("--format", "fmt", metavar="FORMAT",
              help="table, markdown, csv, json, html, or site (a multi-page static site in "
                   "the -o/--out folder) (default: leaderboard.format, 'table').")
@out_option("Write to this file (atomically) instead of standard output; with --format site "
            "the site's folder", kind="either", old=("--output",))
@overwrite_option()
@click.option("--baseline", metavar="MODEL",
              help="Add Δ columns: each model minus MODEL, over the languages both have.")
@model_option("Only these models, in this row order (the baseline is always kept)",
              multiple=True, old=("--models",))
@benchmarks_option("Only these benchmarks")
@languages_option("Only these languages")
@click.option("--metric", "metrics", multiple=True, metavar="M,N",
              help="Metrics to show instead of each benchmark's primary ones; shell patterns "
                   "and BENCHMARK:METRIC work, e.g. 'acc_*' or 'flores:chrf_*'.")
@click.option("--per-language", is_flag=True, default=None,
              help="Also show one column per language next to each average.")
@click.option("--n-shot", type=int, help="Only evaluations with this many shots.")
@click.option("--title", help="Title of the table or page.")
@config_options
def leaderboard(
    db: str | None,
    fmt: str | None,
    out: str | None,
    overwrite: bool,
    baseline: str | None,
    models: tuple[str, ...],
    benchmarks: tuple[str, ...],
    languages: tuple[str, ...],
    metrics: tuple[str, ...],
    per_language: bool | None,
    n_shot: int | None,
    title: str | None,
    config_file: str | None,
    overrides: tuple[str, ...],
) -> None:
    """Compare models on every stored benchmark: one row per model, one column per
    benchmark and metric, averaged over languages, with standard errors.

    When a model was evaluated more than once on a benchmark and language (another revision,
    n-shot or prompt), the latest evaluation is shown; use --n-shot to pick a setting.
    See docs/leaderboard.md for the arithmetic.

    \b
    Examples:
      kakugo leaderboard --baseline ibm-granite/granite-4.0-micro
      kakugo leaderboard --format markdown -b sib200,belebele
      kakugo leaderboard --format html -o site/leaderboard.html --per-language
      kakugo leaderboard --format site -o site
    """
    from kakugo_core.config import load_config, section
    from kakugo_core.files import prepare_output
    from kakugo_core.leaderboard import check_format, leaderboard_from_store, render, write_atomic
    from kakugo_core.store import default_db_path

    config = load_config(config_file, overrides)
    settings = section(config, "leaderboard")
    fmt = fmt or settings["format"]
    site = fmt == "site"
    if site and not out:
        raise click.UsageError("--format site needs -o/--out DIR")
    if overwrite and not site:
        raise click.UsageError("--overwrite replaces a site folder: use it with --format site")
    fmt = "html" if site else check_format(fmt)
    path = db or config["bench"]["db"] or str(default_db_path())
    if out:  # the one output rule, before the store is read
        prepare_output(out, kind="folder" if site else "file", inputs=[path],
                       overwrite=overwrite)
    board = leaderboard_from_store(
        path,
        models=_split(models),
        benchmarks=_split(benchmarks),
        languages=_split(languages),
        baseline=baseline,
        metrics=_split(metrics) or settings["metrics"] or None,
        per_language=True if site else (
            settings["per_language"] if per_language is None else per_language),
        n_shot=n_shot,
        title=title or settings["title"],
    )
    if site:
        from kakugo_core.leaderboard_site import site_from_board, write_site

        written = write_site(site_from_board(board, path), str(out), overwrite=overwrite,
                             inputs=[path])
        click.echo(f"wrote {written}/index.html", err=True)
        return
    if fmt == "table" and not out and sys.stdout.isatty():
        from rich.console import Console

        from kakugo_core.leaderboard import fitted_tables
        from kakugo_core.termtable import print_fitted

        console = Console()  # in colour on a terminal, folded to its width
        print_fitted(fitted_tables(board, console.width, colour=True), console)
        return
    text = render(board, fmt)
    if out:
        written = write_atomic(out, text)
        click.echo(f"wrote {written}", err=True)
    else:
        click.echo(text, nl=False)
