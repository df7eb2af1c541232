"""``kakugo compare export`` / ``kakugo compare import``: native speakers judge two models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from kakugo_core.cli_options import (
    AliasedOption,
    config_options,
    languages_option,
    limit_options,
    model_option,
    one_language,
    out_option,
)


def answer_with(
    models: list[str], items: list[Any], backend: str, options: dict[str, Any],
    max_new_tokens: int, progress: bool = True,
) -> tuple[list[list[str]], list[str]]:
    """Every model's answers to every prompt (one model loaded at a time), with a progress bar;
    returns the answers and the models' revisions."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from kakugo_core.judging import answer_prompts
    from kakugo_core.plugins import create

    answers, revisions = [], []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), disable=not progress) as bar:
        for model in models:
            task = bar.add_task(f"loading {model}", total=len(items))
            scorer = create("backends", backend, model=model, **options)
            try:
                bar.update(task, description=f"answering with {model}")

                def advance(n: int, task_id: Any = task) -> None:
                    bar.advance(task_id, n)

                answers.append(answer_prompts(scorer, items, max_new_tokens, progress=advance))
                revisions.append(scorer.revision or "")
            finally:
                scorer.close()
    return answers, revisions


@click.group("compare")
def compare() -> None:
    """Side-by-side answers of two models for native speakers, and their votes back.

    \b
    1. `kakugo compare export` writes compare.html (send it), compare.csv (the same for a
       spreadsheet) and key.json (keep it: it says which model is behind A and B).
    2. Speakers vote on the page and press "Download votes" (or fill the CSV's vote column).
    3. `kakugo compare import VOTES... --key key.json` stores the result as benchmark
       human_preference (win_rate, tie_rate, loss_rate of the first --model).
    """


@compare.command("export")
@model_option("Give exactly two: the candidate first, then the opponent; rates are imported "
              "from the first model's side", multiple=True, required=True)
@click.option("--prompts", "-p", required=True, type=click.Path(),
              help="Held-out prompts: JSONL with a 'prompt' field (e.g. translated MT-Bench "
                   "questions), or a run's dataset/ folder (its validation split, never "
                   "trained on).")
@languages_option("The prompts' language", one=True, old=("--language",))
@out_option("Folder for compare.html, compare.csv and the private key.json", kind="folder",
            dest="out_dir", required=True)
@click.option("--seed", type=int, default=None,
              help="Draws which model is shown as A per item, and the item order "
                   "(default: compare.seed).")
@limit_options("prompts", "compare.limit")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=None,
              help="Answer budget per prompt (default: compare.max_new_tokens).")
@click.option("--backend", default=None, help="Generation backend (default: bench.backend).")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: bench.device).")
@click.option("--overwrite", cls=AliasedOption, old=("--force",), is_flag=True,
              help="Replace the key.json already in -o/--out (votes on its page become "
                   "unusable unless the new export is identical), or a folder holding files "
                   "Kakugo did not make.")
@config_options
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def export_command(
    models: tuple[str, ...], prompts: str, languages: tuple[str, ...], out_dir: str,
    seed: int | None, limit: int | None, limit_seed: int | None, max_new_tokens: int | None,
    backend: str | None, device: str | None, overwrite: bool, config_file: str | None,
    overrides: tuple[str, ...], no_progress: bool,
) -> None:
    """Write a page of side-by-side answers of two MODELs for native speakers.

    Model identities are hidden and sides randomised; the page needs no network and works
    offline from a file or an e-mail attachment.

    \b
    Example:
      kakugo compare export -m out/model -m ibm-granite/granite-4.0-micro \\
          -p heldout.jsonl -l Javanese -o review-jav
    """
    from kakugo_core.compare import KEY_FILE, export_comparison
    from kakugo_core.config import load_config
    from kakugo_core.errors import KakugoError
    from kakugo_core.evaluation import backend_options
    from kakugo_core.files import prepare_output
    from kakugo_core.judging import load_prompts
    from kakugo_core.languages import resolve
    from kakugo_core.toolkit.sampling import parse_seed

    language = one_language(languages) or ""
    if len(models) != 2:
        raise KakugoError(f"give exactly two --model options (candidate, then opponent); got "
                          f"{len(models)}")
    if models[0] == models[1]:
        raise KakugoError(f"both --model options are {models[0]!r}; compare two different models")
    # the one output rule, and the key, checked before hours of generation, not after
    prepare_output(out_dir, kind="folder", inputs=[prompts, *models], overwrite=overwrite,
                   marker=KEY_FILE)
    key_path = Path(out_dir) / KEY_FILE
    if key_path.exists() and not overwrite:
        raise KakugoError(f"{key_path} already exists: votes on its page need it; choose another "
                          "-o/--out folder, or pass --overwrite to replace it")
    config = load_config(config_file, overrides)
    section = config["compare"]
    lang = resolve(language)
    limit = section["limit"] if limit is None else limit
    seed_limit = parse_seed(config["bench"]["limit_seed"] if limit_seed is None else limit_seed,
                            "--limit-seed")
    items = load_prompts(prompts, limit or None, seed_limit)
    name = backend or config["bench"]["backend"]
    answers, revisions = answer_with(
        list(models), items, name, backend_options(config, name, device=device),
        max_new_tokens or section["max_new_tokens"], progress=not no_progress,
    )
    paths = export_comparison(
        items, answers[0], answers[1], models=(models[0], models[1]), language=lang,
        out_dir=out_dir, seed=section["seed"] if seed is None else seed,
        revisions=(revisions[0], revisions[1]), force=overwrite,
    )
    click.echo(f"{paths.items} items for {lang.name} ({lang.id}), export {paths.export_id}:")
    click.echo(f"  send:         {paths.html}  (or {paths.csv})")
    click.echo(f"  keep private: {paths.key}  (needed by `kakugo compare import`)")


@compare.command("import")
@click.argument("votes", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--key", "-k", "key_file", required=True, type=click.Path(dir_okay=False),
              help="The key.json written by `kakugo compare export` with the page.")
@click.option("--db", type=click.Path(dir_okay=False), default=None,
              help="Results database (default: bench.db, else $KAKUGO_DB, else the user's data "
                   "directory).")
@config_options
def import_command(
    votes: tuple[str, ...], key_file: str, db: str | None, config_file: str | None,
    overrides: tuple[str, ...],
) -> None:
    """Store native speakers' VOTES (downloaded JSON files or filled-in CSVs) as benchmark
    human_preference: the first model's win, tie and loss rates against the second.

    Each voter's last vote per item counts; every file must come from the export of --key.
    """
    from kakugo_core.compare import import_votes, store_preference
    from kakugo_core.config import load_config
    from kakugo_core.store import ResultsStore

    preference = import_votes([Path(v) for v in votes], key_file)
    config = load_config(config_file, overrides)
    with ResultsStore(db or config["bench"]["db"] or None) as store:
        store_preference(store, preference)
        where = store.path
    key = preference.key
    click.echo(f"{preference.votes} votes from {len(preference.voters)} voter(s) on "
               f"{preference.items} items, {key.language}: {key.candidate} vs {key.opponent}")
    for outcome in ("win", "tie", "loss"):
        score = next(s for s in preference.scores() if s.metric == f"{outcome}_rate")
        low, high = preference.interval(outcome)
        click.echo(f"  {outcome}_rate {score.value:.3f}  (95% Wilson {low:.3f}-{high:.3f})")
    click.echo(f"stored as human_preference in {where}")
