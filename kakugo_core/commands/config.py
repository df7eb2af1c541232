"""``kakugo config``: print the merged configuration."""

from __future__ import annotations

import json

import click

from kakugo_core.cli_options import config_options
from kakugo_core.config import load_config
from kakugo_core.secrets import redact


@click.command("config")
@config_options
def config_command(config_file: str | None, overrides: tuple[str, ...]) -> None:
    """Show the configuration: the paper's defaults, your file and --set overrides merged
    (credentials in URLs and key-like values masked)."""
    click.echo(redact(json.dumps(load_config(config_file, overrides), indent=2)))
