"""``kakugo leaderboard``: the results store as a table, Markdown, CSV, JSON or an HTML page."""

from __future__ import annotations

import sys

import click


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
                   "--out DIR) (default: leaderboard.format, 'table').")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="With --format site: the folder to write the site to (replaced whole).")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write to this file (atomically) instead of standard output.")
@click.option("--baseline", metavar="MODEL",
              help="Add Δ columns: each model minus MODEL, over the languages both have.")
@click.option("--models", multiple=True, metavar="A,B",
              help="Only these models, in this row order (the baseline is always kept).")
@click.option("--benchmarks", multiple=True, metavar="A,B", help="Only these benchmarks.")
@click.option("--languages", multiple=True, metavar="A,B",
              help="Only these languages (names, ISO or FLORES codes).")
@click.option("--metric", "metrics", multiple=True, metavar="M,N",
              help="Metrics to show instead of each benchmark's primary ones; shell patterns "
                   "and BENCHMARK:METRIC work, e.g. 'acc_*' or 'flores:chrf_*'.")
@click.option("--per-language", is_flag=True, default=None,
              help="Also show one column per language next to each average.")
@click.option("--n-shot", type=int, help="Only evaluations with this many shots.")
@click.option("--title", help="Title of the table or page.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="User TOML file.")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override one configuration key; repeatable.")
def leaderboard(
    db: str | None,
    fmt: str | None,
    output: str | None,
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
    out_dir: str | None = None,
) -> None:
    """Compare models on every stored benchmark: one row per model, one column per
    benchmark and metric, averaged over languages, with standard errors.

    When a model was evaluated more than once on a benchmark and language (another revision,
    n-shot or prompt), the latest evaluation is shown; use --n-shot to pick a setting.
    See docs/leaderboard.md for the arithmetic.

    \b
    Examples:
      kakugo leaderboard --baseline ibm-granite/granite-4.0-micro
      kakugo leaderboard --format markdown --benchmarks sib200,belebele
      kakugo leaderboard --format html -o site/leaderboard.html --per-language
    """
    from kakugo_core.config import load_config, section
    from kakugo_core.leaderboard import check_format, leaderboard_from_store, render, write_atomic
    from kakugo_core.store import default_db_path

    config = load_config(config_file, overrides)
    settings = section(config, "leaderboard")
    fmt = fmt or settings["format"]
    site = fmt == "site"
    if site and not out_dir:
        raise click.UsageError("--format site needs --out DIR")
    fmt = "html" if site else check_format(fmt)
    path = db or config["bench"]["db"] or str(default_db_path())
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

        written = write_site(site_from_board(board, path), str(out_dir))
        click.echo(f"wrote {written}/index.html", err=True)
        return
    if fmt == "table" and not output and sys.stdout.isatty():
        from rich.console import Console

        from kakugo_core.leaderboard import fitted_tables
        from kakugo_core.termtable import print_fitted

        console = Console()  # in colour on a terminal, folded to its width
        print_fitted(fitted_tables(board, console.width, colour=True), console)
        return
    text = render(board, fmt)
    if output:
        written = write_atomic(output, text)
        click.echo(f"wrote {written}", err=True)
    else:
        click.echo(text, nl=False)
