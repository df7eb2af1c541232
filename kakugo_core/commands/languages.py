"""``kakugo languages``: resolve a language and show which benchmarks cover it."""

from __future__ import annotations

import json

import click

from kakugo_core.languages import BENCHMARK_KEYS, Language, registry


@click.command()
@click.argument("query", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--paper", is_flag=True, help="Only the 54 languages of the Kakugo paper.")
def languages(query: str | None, as_json: bool, paper: bool) -> None:
    """Resolve QUERY (a name, ISO 639-1/639-3 or FLORES code) or list every language.

    An unknown QUERY exits non-zero and suggests close matches.
    """
    reg = registry()
    langs: list[Language] = [reg.resolve(query)] if query else list(reg)
    if paper:
        langs = [lang for lang in langs if lang.kakugo_paper]
    if as_json:
        data = [lang.as_dict() for lang in langs]
        click.echo(json.dumps(data[0] if query else data, indent=2, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=None if query else f"{len(langs)} languages")
    for col in ("id", "name", "iso 639-1", "iso 639-3", *BENCHMARK_KEYS):
        table.add_column(col)
    for lang in langs:
        cover = [lang.benchmarks.get(k) or "-" for k in BENCHMARK_KEYS]
        table.add_row(lang.id, lang.name, lang.iso639_1 or "-", lang.iso639_3, *cover)
    Console().print(table)
    if query:
        missing = [k for k in BENCHMARK_KEYS if not langs[0].covered_by(k)]
        if missing:
            click.echo(f"{langs[0].name} is not covered by: {', '.join(missing)}")
