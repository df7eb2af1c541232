"""``kakugo plugins``: what is loaded, from where, and what it registered."""

from __future__ import annotations

import json
from typing import Any

import click

from kakugo_core.cli_options import json_option
from kakugo_core.plugins import get_host


@click.command()
@json_option()
def plugins(as_json: bool) -> None:
    """List loaded plugins with distribution, version, hooks and the names they registered."""
    host = get_host()
    rows: list[dict[str, Any]] = [
        {
            "name": info.name,
            "distribution": info.distribution,
            "version": info.version,
            "hooks": info.hooks,
            "registered": info.registered,
            "aliases": info.aliases,
            "settings": _settings(host, info.name),
            "problems": info.problems,
        }
        for info in sorted(host.infos.values(), key=lambda i: (i.distribution != "kakugo", i.name))
    ]
    failures = [f.__dict__ for f in host.failures]
    if as_json:
        payload = {"plugins": rows, "failures": failures, "clashes": host.clashes}
        click.echo(json.dumps(payload, indent=2))
        return
    from rich.console import Console

    from kakugo_core.termtable import Col, fit, print_fitted, terminal_width

    cols = [Col("plugin", key=True), Col("distribution", drop=2), Col("version", drop=1),
            Col("registered", wrap=True)]
    table_rows = [[row["name"], row["distribution"], row["version"],
                   "; ".join(f"{k}: {', '.join(_with_aliases(n, row['aliases']) for n in v)}"
                             for k, v in row["registered"].items()) or "-"]
                  for row in rows]
    console = Console()
    print_fitted(fit(cols, table_rows, terminal_width(), title="Kakugo plugins"), console)
    for row in rows:
        for problem in row["problems"]:
            console.print(f"[yellow]problem[/yellow] {row['name']} ({row['distribution']}): "
                          f"{problem}", soft_wrap=True)
    for failure in failures:
        console.print(f"[red]failed[/red] {failure['plugin']} ({failure['distribution']}): "
                      f"{failure['error']}")


def _with_aliases(name: str, aliases: dict[str, list[str]]) -> str:
    also = aliases.get(name)
    return f"{name} (alias {', '.join(also)})" if also else name


def _settings(host: Any, plugin: str) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """The settings each registration of ``plugin`` declares, by kind and name."""
    from kakugo_core.toolkit.settings import declared_settings

    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for kind, registry in host.registries.items():
        for reg in registry:
            if reg.plugin == plugin:
                try:
                    settings = declared_settings(reg.factory)
                except TypeError:
                    continue
                if settings:
                    out.setdefault(kind, {})[reg.name] = [s.describe() for s in settings]
    return out
