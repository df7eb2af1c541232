"""``kakugo leaderboard``: the table command (:mod:`kakugo_core.commands.leaderboard`) as a
group with two subcommands, ``publish`` (the site to a Hub Space or dataset) and ``import``
(results from Hub model cards into the store)."""

from __future__ import annotations

import inspect
from typing import Any

import click

from kakugo_core.cli_options import (
    AliasedOption,
    benchmarks_option,
    config_options,
    languages_option,
    model_option,
)
from kakugo_core.commands.leaderboard import _split
from kakugo_core.commands.leaderboard import leaderboard as _table


def _show(**kwargs: Any) -> None:
    ctx = click.get_current_context()
    if ctx.invoked_subcommand is None:
        ctx.invoke(_table.callback, **kwargs)  # type: ignore[arg-type]


leaderboard = click.Group(
    "leaderboard", params=list(_table.params), callback=_show, invoke_without_command=True,
    help=inspect.cleandoc(_table.help or "") + "\n\n\b\nSubcommands:\n"
    "  publish REPO   upload the site to a Hub Space or dataset\n"
    "  import REPO..  read results from Hub model cards into the store",
    short_help=_table.short_help, subcommand_metavar="[publish|import] ...",
)


def _db(db: str | None, config_file: str | None, overrides: tuple[str, ...]) -> str:
    from kakugo_core.config import load_config
    from kakugo_core.store import default_db_path

    return db or load_config(config_file, overrides)["bench"]["db"] or str(default_db_path())


@leaderboard.command("publish")
@click.argument("repo_id")
@click.option("--repo-type", type=click.Choice(["space", "dataset"]), default="space",
              show_default=True, help="A static Space (the site is served) or a dataset repo.")
@click.option("--db", type=click.Path(dir_okay=False), help="Results database.")
@click.option("--baseline", metavar="MODEL", help="Show Δ against MODEL.")
@model_option("Only these models", multiple=True, old=("--models",))
@benchmarks_option("Only these benchmarks")
@languages_option("Only these languages")
@click.option("--title", default="Kakugo leaderboard", show_default=True)
@click.option("--private", is_flag=True, help="Create the repository private.")
@click.option("--dry-run", is_flag=True, help="Only say what would be uploaded.")
@config_options
def publish_command(repo_id: str, repo_type: str, db: str | None, baseline: str | None,
                    models: tuple[str, ...], benchmarks: tuple[str, ...],
                    languages: tuple[str, ...], title: str, private: bool, dry_run: bool,
                    config_file: str | None, overrides: tuple[str, ...]) -> None:
    """Publish the leaderboard site to the Hub repository REPO_ID (OWNER/NAME), idempotently:
    nothing changed, no commit. The token comes from HF_TOKEN or the login."""
    from kakugo_core.leaderboard import leaderboard_from_store
    from kakugo_core.leaderboard_publish import publish_leaderboard
    from kakugo_core.store import ResultsStore

    path = _db(db, config_file, overrides)
    board = leaderboard_from_store(path, models=_split(models), benchmarks=_split(benchmarks),
                                   languages=_split(languages), baseline=baseline,
                                   per_language=True, title=title)
    langs = {lang for v in board.languages.values() for lang in v}
    with ResultsStore(path) as store:
        rows = [r for r in store.rows(board.models, board.benchmarks) if r.language in langs]
    out = publish_leaderboard(board, rows, repo_id, repo_type, {"private": private},
                              dry_run=dry_run)
    if dry_run:
        for line in out["lines"]:
            click.echo(line)
        return
    if out["changed"]:
        click.echo(f"published {len(out['files'])} file(s) to {out['location']} "
                   f"at {out['revision']}")
    else:
        click.echo(f"{out['location']} is up to date at {out['revision']}: no commit made")


@leaderboard.command("import")
@click.argument("repos", nargs=-1)
@click.option("--author", help="Every model repository of this user or organisation.")
@click.option("--search", help="Model repositories whose id contains this text.")
@click.option("--tag", "tags", multiple=True, help="Model repositories with this tag.")
@click.option("--max-repos", "limit", cls=AliasedOption, old=("--limit",),
              type=click.IntRange(min=1), default=100, show_default=True,
              help="At most this many repositories from --author/--search/--tag.")
@click.option("--db", type=click.Path(dir_okay=False), help="Results database.")
@config_options
def import_command(repos: tuple[str, ...], author: str | None, search: str | None,
                   tags: tuple[str, ...], limit: int, db: str | None,
                   config_file: str | None, overrides: tuple[str, ...]) -> None:
    """Read results from Hub model repositories (REPOS, or --author/--search/--tag) into the
    store: their cards' model-index and .eval_results files, each row keeping its source
    repository and commit. See docs/leaderboard.md for how names are mapped."""
    from kakugo_core.hub_results import import_results
    from kakugo_core.store import ResultsStore

    with ResultsStore(_db(db, config_file, overrides)) as store:
        report = import_results(store, repos, author=author, search=search, tags=tags,
                                limit=limit)
    for why in report.skipped:
        click.echo(f"skipped {why}", err=True)
    for conflict in report.conflicts:
        click.echo(f"conflict (kept the stored value): {conflict}", err=True)
    click.echo(f"imported {len(report.rows)} result(s) from {len(report.repos)} repositories: "
               f"{report.added} new, {report.same} already stored")
