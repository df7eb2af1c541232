"""``kakugo release``: publish a trained model (and its dataset) with a model card whose tables,
plot and eval results are queried from the results store."""

from __future__ import annotations

import click

from kakugo_core.cli_options import (
    config_options,
    languages_option,
    model_option,
    one_language,
    out_option,
    overwrite_option,
)


@click.command("release")
@model_option("The trained model folder (config.json, *.safetensors, tokenizer)",
              dest="model_dir", required=True)
@click.option("--base", "base_model", required=True, metavar="MODEL",
              help="The base model it was fine-tuned from, as named in the results store "
                   "(e.g. ibm-granite/granite-4.0-micro).")
@languages_option("The model's language", one=True, old=("--language",))
@click.option("--dataset", "dataset_dir", type=click.Path(file_okay=False),
              help="The `kakugo dataset` folder to publish too, as <repo-id>-data.")
@click.option("--target", metavar="NAME",
              help="Release target: 'folder' (default, offline) or 'hub'.")
@click.option("--repo-id", metavar="OWNER/NAME",
              help="Repository name (default: [release].repo_name, "
                   "'{user}/kakugo-{size}-{iso639_3}', e.g. alice/kakugo-3b-jav).")
@out_option("folder target: the destination (default kakugo-release/OWNER/NAME); hub target: "
            "keep a copy of what is uploaded here", kind="folder", dest="out_dir")
@click.option("--db", type=click.Path(dir_okay=False),
              help="Results database (default: bench.db from the configuration, else "
                   "$KAKUGO_DB, else the user's data directory).")
@click.option("--model-name", metavar="NAME",
              help="The student's name in the results store, when it is not the --model path.")
@click.option("--private/--public", default=None,
              help="hub: create the repository private (default: [release].private).")
@click.option("--revision", metavar="BRANCH",
              help="hub: commit to this branch (created from main when missing).")
@click.option("--create-pr", is_flag=True, help="hub: open a pull request instead of pushing.")
@click.option("--tag", metavar="TAG",
              help="hub: tag the release commit (default: [release].tag, "
                   "'release-{date}-{short_sha}').")
@click.option("--dry-run", is_flag=True,
              help="Assemble the release and print exactly which files would be uploaded, "
                   "changed or deleted; publish nothing.")
@overwrite_option("folder target: replace a -o/--out folder that holds something other than "
                  "an earlier Kakugo release.")
@click.option("--gguf", "gguf", metavar="TYPES",
              help="GGUF exports to include for llama.cpp/Ollama, comma-separated: F32, F16, "
                   "Q8_0; 'none' for none (default: release.gguf, F16,Q8_0; a model the "
                   "exporter cannot convert is then released without them, with a warning).")
@config_options
def release(
    model_dir: str,
    base_model: str,
    languages: tuple[str, ...],
    dataset_dir: str | None,
    target: str | None,
    repo_id: str | None,
    out_dir: str | None,
    db: str | None,
    model_name: str | None,
    private: bool | None,
    revision: str | None,
    create_pr: bool,
    tag: str | None,
    dry_run: bool,
    overwrite: bool,
    gguf: str | None,
    config_file: str | None,
    overrides: tuple[str, ...],
) -> None:
    """Release a trained model: weights, tokenizer, a model card with comparison tables
    (student vs. base and every other model in the results store, with deltas and standard
    errors), a bar chart and the Hub's eval results.

    The hub target needs a write token in HF_TOKEN or from `hf auth login`; it is never
    printed or written. Releasing something unchanged makes no new commit.

    \b
    Examples:
      kakugo release -m runs/jav/train/model --base ibm-granite/granite-4.0-micro \\
          -l Javanese --dataset runs/jav/dataset --target hub --dry-run
      kakugo release -m runs/jav/train/model --base ibm-granite/granite-4.0-micro \\
          -l jav -o release-jav
    """
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from kakugo_core.config import load_config
    from kakugo_core.release import release as run_release
    from kakugo_core.store import ResultsStore

    language = one_language(languages) or ""
    config = load_config(config_file, overrides)
    target = target or config["release"]["target"]
    _refuse_ignored(target, private=private, revision=revision, create_pr=create_pr, tag=tag)
    db_path = db or config["bench"].get("db") or None
    store = ResultsStore(db_path) if db_path is None else db_path
    console = Console(stderr=True)
    lines: list[str] = []
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True, disable=dry_run) as progress:
        task = progress.add_task("checking the inputs", total=None)

        def echo(line: str) -> None:
            if dry_run:
                lines.append(line)
            else:
                progress.update(task, description=line)

        result = run_release(
            model_dir, target=target, repo_id=repo_id,
            store=store, base_model=base_model, language=language, dataset_dir=dataset_dir,
            dry_run=dry_run, private=private, revision=revision, create_pr=create_pr, tag=tag,
            out_dir=out_dir, model_name=model_name, config=config, echo=echo,
            target_options={"overwrite": True} if overwrite else None,
            gguf_types=None if gguf is None else
            [t.strip() for t in gguf.split(",") if t.strip() and t.strip().lower() != "none"],
        )
    if dry_run:
        click.echo(f"dry run: nothing was published. {result.repo_id} would get:")
        for line in lines[1:]:
            click.echo(line)
        return
    if result.dataset is not None:
        state = "published" if result.dataset.changed else "unchanged, nothing committed"
        click.echo(f"dataset {result.dataset_repo_id}: {state} ({result.dataset.location})")
    if result.changed:
        extra = f", tag {result.tag}" if result.tag else ""
        extra += f", pull request {result.pr_url}" if result.pr_url else ""
        rev = f" at {result.revision[:12]}" if result.revision else ""
        click.echo(f"released {result.repo_id}{rev}: {len(result.files)} file(s) updated, "
                   f"{len(result.deleted)} deleted{extra} -> {result.location}")
    else:
        click.echo(f"{result.repo_id} is unchanged: nothing was committed ({result.location})")


def _refuse_ignored(target: str, **hub_only: object) -> None:
    """A usage error for a hub-only option given with a target that would ignore it (a target
    that needs no token publishes to a folder: no branches, pull requests, tags or privacy)."""
    from kakugo_core.plugins import registry

    if getattr(registry("release_targets").get(target).factory, "needs_token", True):
        return
    spelled = {"private": "--private/--public"}
    given = [spelled.get(name, f"--{name.replace('_', '-')}") for name, value in hub_only.items()
             if value not in (None, False, "")]
    if given:
        raise click.UsageError(f"{', '.join(given)} only apply to the hub target; the "
                               f"{target!r} target would ignore them")
