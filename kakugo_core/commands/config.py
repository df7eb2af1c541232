"""``kakugo config``: print the merged configuration."""

from __future__ import annotations

import json

import click

from kakugo_core.config import load_config


@click.command("config")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="User TOML file.")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override one key; repeatable.")
def config_command(config_file: str | None, overrides: tuple[str, ...]) -> None:
    """Show the configuration: the paper's defaults, your file and --set overrides merged."""
    click.echo(json.dumps(load_config(config_file, overrides), indent=2))
