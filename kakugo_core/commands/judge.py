"""``kakugo judge``: the teacher judges a model's answers against an opponent's, into the store."""

from __future__ import annotations

from pathlib import Path

import click

from kakugo_core.cli_options import (
    AliasedOption,
    config_options,
    languages_option,
    limit_options,
    model_option,
    one_language,
)


@click.command("judge")
@model_option("The candidate; rates are from its side", required=True)
@click.option("--opponent", cls=AliasedOption, old=("-o",), default=None, metavar="MODEL",
              help="The baseline it is compared with (default: judge.opponent).")
@click.option("--prompts", "-p", default=None, type=click.Path(),
              help="Held-out prompts: JSONL with a 'prompt' field, or a run's dataset/ folder "
                   "(its validation split) (default: judge.prompts).")
@languages_option("The prompts' language", one=True, old=("--language",))
@limit_options("prompts", "judge.limit")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=None,
              help="Answer budget per prompt (default: judge.max_new_tokens).")
@click.option("--cache-file", type=click.Path(dir_okay=False), default=None,
              help="Verdict cache (default: judge.cache_file, else the teacher cache folder).")
@click.option("--db", type=click.Path(dir_okay=False), default=None,
              help="Results database (default: bench.db, else $KAKUGO_DB, else the user's data "
                   "directory).")
@click.option("--backend", default=None, help="Generation backend (default: bench.backend).")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: bench.device).")
@click.option("--predictions", type=click.Path(dir_okay=False), default=None,
              help="Also write every pair's answers, verdicts and outcome to this JSONL file.")
@config_options
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def judge(
    model: str, opponent: str | None, prompts: str | None, languages: tuple[str, ...],
    limit: int | None, limit_seed: int | None, max_new_tokens: int | None,
    cache_file: str | None, db: str | None, backend: str | None,
    device: str | None, predictions: str | None, config_file: str | None,
    overrides: tuple[str, ...], no_progress: bool,
) -> None:
    """Let the teacher judge MODEL against an opponent on held-out prompts.

    Both models answer every prompt (greedy, chat template); the teacher compares each pair
    twice, once in each order, with the rubric of docs/judging.md. A pair is a win when the two
    verdicts favour MODEL overall (win+win, win+tie), a tie when they cancel. Win, tie and loss
    rates (95% Wilson intervals) go to the results store as benchmark "judge"; verdicts are
    cached, so a rerun pays for nothing already judged.

    \b
    Example (teacher at teacher.base_url):
      kakugo judge -m out/model --opponent ibm-granite/granite-4.0-micro \\
          -p heldout.jsonl -l jav
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from kakugo_core.config import load_config
    from kakugo_core.errors import KakugoError
    from kakugo_core.evaluation import backend_options
    from kakugo_core.judging import judge_options, position_bias, wilson_interval
    from kakugo_core.languages import resolve
    from kakugo_core.plugins import create
    from kakugo_core.store import ResultsStore

    language = one_language(languages) or ""
    config = load_config(config_file, overrides)
    section = config["judge"]
    opponent = opponent or section["opponent"]
    prompts = prompts or section["prompts"]
    if not opponent or not prompts:
        raise KakugoError("give --opponent MODEL and --prompts FILE (or set judge.opponent and "
                          "judge.prompts)")
    lang = resolve(language)
    if predictions:  # the one output rule, before anything is paid for
        from kakugo_core.files import prepare_output

        prepare_output(predictions, kind="file", option="--predictions",
                       inputs=[prompts, model, opponent, db or config["bench"]["db"]])
    name = backend or config["bench"]["backend"]
    options_for_backend = backend_options(config, name, device=device)
    benchmark = create("benchmarks", "judge")
    options = judge_options(config, prompts=prompts, opponent=opponent, backend=name,
                            backend_options=options_for_backend, cache_file=cache_file,
                            max_new_tokens=max_new_tokens, limit=limit,
                            limit_seed=limit_seed)
    task = benchmark.prepare(lang, options)  # bad prompts or settings fail before any loading
    with ResultsStore(db or config["bench"]["db"] or None) as store:
        store.check_writable()  # a store that cannot be written fails before any paid judging
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), disable=no_progress) as bar:
        work = bar.add_task(f"judge {model} vs {opponent}", total=len(task.items))
        scorer = create("backends", name, model=model, **options_for_backend)
        try:
            result = benchmark.evaluate(
                scorer, lang, {**options, "progress": lambda n: bar.advance(work, n)})
            revision = scorer.revision or ""
        finally:
            scorer.close()
    if predictions:
        from kakugo_core.scoring import write_predictions

        write_predictions(Path(predictions), result.predictions)
    with ResultsStore(db or config["bench"]["db"] or None) as store:
        store.put_result(model, revision, result, {"kakugo": _version(), **result.versions})
        where = store.path
    scores = {s.metric: s for s in result.scores}
    n = scores["win_rate"].n
    click.echo(f"{model} vs {opponent} on {n} pairs ({lang.id}), judged by {task.judge}:")
    for outcome in ("win", "tie", "loss"):
        score = scores[f"{outcome}_rate"]
        low, high = wilson_interval(round(score.value * n), n)
        click.echo(f"  {outcome}_rate {score.value:.3f}  (95% Wilson {low:.3f}-{high:.3f})")
    click.echo(f"  unparsed judge answers: {int(scores['unparsed'].value)} of "
               f"{scores['unparsed'].n}")
    bias = position_bias([(p["verdict_a_first"], p["verdict_b_first"])
                          for p in result.predictions])
    click.echo(f"  judge consistent across both orders on {bias['consistent']} of "
               f"{bias['pairs']} pairs; picked the first answer in {bias['first_chosen']} of "
               f"{bias['decisive']} decisive verdicts")
    click.echo(f"stored as judge in {where}")


def _version() -> str:
    from kakugo_core import __version__

    return __version__
