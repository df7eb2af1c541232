"""``kakugo store``: inspect results databases and merge those of several machines."""

from __future__ import annotations

import json

import click

from kakugo_core.cli_options import config_options, json_option, out_option

MAX_LISTED = 20


@click.group("store")
def store_group() -> None:
    """Inspect results databases and merge those written on several machines.

    See docs/store.md for the schema versions, concurrency and merging.
    """


@store_group.command("info")
@click.argument("db", required=False, type=click.Path(dir_okay=False))
@json_option("Print the facts as JSON.")
@config_options
def info(db: str | None, as_json: bool, config_file: str | None,
         overrides: tuple[str, ...]) -> None:
    """Show DB's schema version, journal mode and what it holds (read-only); DB defaults to
    bench.db from the configuration, else $KAKUGO_DB, else the user's data directory."""
    from kakugo_core.config import load_config
    from kakugo_core.store import ResultsStore, default_db_path

    db = db or load_config(config_file, overrides)["bench"]["db"] or str(default_db_path())
    with ResultsStore(db, readonly=True) as store:
        facts = store.info()
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    schema = facts["schema"]
    if schema is None:
        version = "none yet (an empty database)"
    elif schema == facts["current_schema"]:
        version = f"{schema} (current)"
    else:
        version = (f"{schema} (older; the next write migrates it to "
                   f"{facts['current_schema']})")
    engines = ", ".join(f"{e} ({n} rows)" for e, n in facts["engines"].items()) or "-"
    click.echo(f"path:         {facts['path']}\n"
               f"schema:       {version}\n"
               f"journal mode: {facts['journal_mode']}\n"
               f"rows:         {facts['rows']} in {facts['cells']} cell(s)\n"
               f"models:       {facts['models']}\n"
               f"benchmarks:   {', '.join(facts['benchmarks']) or '-'}\n"
               f"languages:    {facts['languages']}\n"
               f"engines:      {engines}\n"
               f"created:      {facts['first_created'] or '-'} .. {facts['last_created'] or '-'}")


@store_group.command("merge")
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False),
                metavar="[OUT] SOURCES...")
@out_option("The database the SOURCES are merged into (or give it first, as OUT)", kind="file")
@click.option("--on-conflict", type=click.Choice(["refuse", "newest", "first", "last"]),
              default="refuse", show_default=True,
              help="Same key, different numbers: refuse the merge (OUT unchanged), or keep per "
                   "cell the evaluation created last, the first input's (OUT, then SOURCES in "
                   "order) or the last input's.")
@click.option("--tolerance", type=float, default=0.0, show_default=True, metavar="REL",
              help="Numbers (value and standard error, same n) within this relative "
                   "difference are the same result, not a conflict: e.g. 1e-6 for the same "
                   "evaluation run on a CPU and a GPU. 0 compares exactly.")
def merge(paths: tuple[str, ...], out: str | None, on_conflict: str, tolerance: float) -> None:
    """Merge the results databases SOURCES into OUT (created when missing), in one atomic step.

    Rows are deduplicated by model, revision, benchmark, language, n-shot, prompt hash, metric
    and engine version; stores of older Kakugo versions are read as they are. Conflicting
    values for one key are listed and the merge refused unless --on-conflict picks a side.

    \b
    Example:
      kakugo store merge -o results.sqlite node1.sqlite node2.sqlite
    """
    from kakugo_core.files import prepare_output
    from kakugo_core.store_merge import MergeConflictError, merge_stores

    if out is None:
        if len(paths) < 2:
            raise click.UsageError("give OUT and at least one SOURCE (or -o/--out OUT SOURCES)")
        out, *rest = paths
        sources = tuple(rest)
    else:
        sources = paths
    # OUT is read and written (merged into), so it is no input to protect from itself; a
    # SOURCE named as OUT is
    prepare_output(out, kind="file", inputs=sources)

    try:
        report = merge_stores(out, list(sources), on_conflict, tolerance=tolerance)
    except MergeConflictError as exc:
        conflicts = exc.report.conflicts
        for conflict in conflicts[:MAX_LISTED]:
            click.echo(f"kakugo: conflict: {conflict.describe()}", err=True)
        if len(conflicts) > MAX_LISTED:
            click.echo(f"kakugo: conflict: ... and {len(conflicts) - MAX_LISTED} more", err=True)
        raise
    if report.conflicts:
        for conflict in report.conflicts[:MAX_LISTED]:
            click.echo(f"kakugo: resolved conflict: {conflict.describe()}", err=True)
    click.echo(report.summary())
