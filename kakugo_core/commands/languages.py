"""``kakugo languages``: resolve a language and show which benchmarks cover it."""

from __future__ import annotations

import json

import click

from kakugo_core.cli_options import json_option, languages_option, split_csv
from kakugo_core.languages import BENCHMARK_KEYS, Language, registry


@click.command()
@click.argument("query", required=False)
@languages_option("Resolve these (as QUERY does, several at once)", dest="names")
@json_option()
@click.option("--paper", is_flag=True, help="Only the 54 languages of the Kakugo paper.")
def languages(query: str | None, names: tuple[str, ...], as_json: bool, paper: bool) -> None:
    """Resolve QUERY (a name, ISO 639-1/639-3 or FLORES code) or list every language.

    An unknown QUERY exits non-zero and suggests close matches.
    """
    reg = registry()
    asked = ([query] if query else []) + split_csv(names)
    query = asked[0] if len(asked) == 1 else None
    langs: list[Language] = [reg.resolve(q) for q in asked] if asked else list(reg)
    if paper:
        langs = [lang for lang in langs if lang.kakugo_paper]
    if as_json:
        data = [lang.as_dict() for lang in langs]
        click.echo(json.dumps(data[0] if query else data, indent=2, ensure_ascii=False))
        return
    from kakugo_core.termtable import Col, fit, print_fitted, terminal_width

    if query:  # one language: a record (every id whole at any width)
        from kakugo_core.termtable import records

        cols = [Col(h) for h in ("id", "name", "iso 639-1", "iso 639-3", *BENCHMARK_KEYS)]
        lang = langs[0]
        click.echo(records(cols, [[lang.id, lang.name, lang.iso639_1 or "-", lang.iso639_3,
                                   *[lang.benchmarks.get(k) or "-" for k in BENCHMARK_KEYS]]]))
    else:
        cols = [Col("id", key=True), Col("name", key=True), Col("iso 639-1", drop=2),
                Col("iso 639-3", drop=1), Col("covered by", wrap=True)]
        rows = [[lang.id, lang.name, lang.iso639_1 or "-", lang.iso639_3,
                 ", ".join(_coverage(lang, k) for k in BENCHMARK_KEYS if lang.benchmarks.get(k))
                 or "-"] for lang in langs]
        print_fitted(fit(cols, rows, terminal_width(), title=f"{len(langs)} languages"))
    if query:
        missing = [k for k in BENCHMARK_KEYS if not langs[0].covered_by(k)]
        if missing:
            click.echo(f"{langs[0].name} is not covered by: {', '.join(missing)}")


def _coverage(lang: Language, benchmark: str) -> str:
    """A benchmark's name, with its own code for the language when that is not the id."""
    code = lang.benchmarks.get(benchmark)
    return benchmark if code in (True, lang.id) else f"{benchmark} ({code})"
