"""``kakugo dataset``: turn a generation work folder into the training dataset and its card."""

from __future__ import annotations

from pathlib import Path

import click

from kakugo_core.cli_options import (
    config_options,
    languages_option,
    one_language,
    out_option,
    overwrite_option,
)


@click.command("dataset")
@click.argument("language", required=False)
@languages_option("The dataset's language (or give it as LANGUAGE)", one=True)
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path),
              help="The `kakugo generate` folder (default: <runs_dir>/<language id>/generate).")
@out_option("Where the dataset goes (default: <runs_dir>/<language id>/dataset)",
            kind="folder", dest="out_dir")
@overwrite_option()
@config_options
def dataset(
    language: str | None,
    languages: tuple[str, ...],
    work_dir: Path | None,
    out_dir: str | None,
    overwrite: bool,
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
    from kakugo_core.dataset import SUMMARY_FILE, build_dataset
    from kakugo_core.files import prepare_output
    from kakugo_core.languages import resolve

    name = one_language(languages, language) or ""
    config = load_config(config_file, overrides)
    lang = resolve(name)
    base = Path(config["run"]["runs_dir"]) / lang.id
    work, out = work_dir or base / "generate", Path(out_dir) if out_dir else base / "dataset"
    prepare_output(out, kind="folder", inputs=[work], overwrite=overwrite, marker=SUMMARY_FILE)
    summary = build_dataset(work, out, config, lang)
    splits = ", ".join(f"{name} {n}" for name, n in summary.splits.items())
    methods = ", ".join(f"{name} {n}" for name, n in summary.methods.items())
    click.echo(f"dataset written to {summary.out_dir}: {splits} ({methods})")
