"""``kakugo dataset``: turn a generation work folder into the training dataset and its card."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("dataset")
@click.argument("language")
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path),
              help="The `kakugo generate` folder (default: <runs_dir>/<language id>/generate).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the dataset goes (default: <runs_dir>/<language id>/dataset).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="User TOML file.")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override one configuration key; repeatable.")
def dataset(
    language: str,
    work_dir: Path | None,
    out_dir: Path | None,
    config_file: str | None,
    overrides: tuple[str, ...],
) -> None:
    """Build the training dataset for LANGUAGE from generated responses and translations.

    Writes a Hugging Face `datasets` folder (splits train and validation; columns
    generation_method, prompt_type, topic, scenario, system, messages) with a dataset card
    README.md. Generated answers keep the teacher's reasoning in <think> tags under the think
    system prompt; translations are trained under the concise system prompt. Rows are
    de-duplicated, shuffled with [run].seed and split by [dataset].validation_fraction.
    """
    from kakugo_core.config import load_config
    from kakugo_core.dataset import build_dataset
    from kakugo_core.languages import resolve

    config = load_config(config_file, overrides)
    lang = resolve(language)
    base = Path(config["run"]["runs_dir"]) / lang.id
    summary = build_dataset(
        work_dir or base / "generate", out_dir or base / "dataset", config, lang
    )
    splits = ", ".join(f"{name} {n}" for name, n in summary.splits.items())
    methods = ", ".join(f"{name} {n}" for name, n in summary.methods.items())
    click.echo(f"dataset written to {summary.out_dir}: {splits} ({methods})")
