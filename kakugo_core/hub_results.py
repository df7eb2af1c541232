"""Importing evaluation results from Hub model repositories: ``kakugo leaderboard import``.

Two sources per repository, read at one commit: the model card's ``model-index`` (the Hub's
documented format, written by Kakugo and by hand or other tools) and ``.eval_results/*.yaml``
(the Hub's newer structured format; Kakugo writes one per benchmark, with n and the standard
error in each entry's notes). Where both give the same cell, ``.eval_results`` wins (it carries
the sample count and standard error).

Each result becomes a store row keyed by the repository id as the model and the commit as the
revision, with ``prompt_hash`` ``"imported"`` and its provenance in ``versions``: ``source``
(``hub:OWNER/NAME (model-index)`` or ``(.eval_results/FILE)``), ``source_commit`` and
``source_url``. Mapping rules: a dataset id Kakugo knows (``Davlan/sib200``) becomes its
benchmark name (``sib200``), any other id is kept with its ``/`` as ``__`` (the id itself in
``versions["source_dataset"]``); the dataset config (or the task id) is the
language, resolved to its FLORES code when the registry knows it; the metric is the stored
metric name Kakugo wrote (``acc (3-shot)``), else the metric type (``accuracy`` -> ``acc``);
the shot count comes from ``N-shot`` in the metric name or notes (0 when absent); a percentage
(a fraction-type metric above 1) is divided by 100, so hand-written cards join the same
columns. Importing the same commit again changes nothing; a value that differs from a stored
one for the same key is reported, not written. Every row passes the store's one door
(:func:`kakugo_core.store.validate_row`): a card with a bad value (a NaN, an accuracy above
100 %, a language such as ``../x``) refuses the whole import, and nothing is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kakugo_core.errors import KakugoError
from kakugo_core.store import IMPORTED, ResultRow, ResultsStore

METRIC_NAMES = {"accuracy": "acc", "acc": "acc", "f1": "macro_f1", "macro_f1": "macro_f1",
                "chrf": "chrf", "bleu": "bleu", "exact_match": "exact_match"}
FRACTION_METRICS = frozenset({"acc", "macro_f1", "exact_match", "acc_norm"})
_NOTES = re.compile(r"^(?P<metric>[^,]+), (?P<shot>\d+)-shot, n=(?P<n>\d+), "
                    r"stderr=(?P<se>[^;]+);")
_SHOT = re.compile(r"(\d+)[- ]shot", re.I)


@dataclass
class ImportReport:
    """What an import found and stored."""

    repos: list[str] = field(default_factory=list)
    rows: list[ResultRow] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "repo: why"
    added: int = 0
    same: int = 0
    conflicts: list[str] = field(default_factory=list)


def _benchmark(dataset_id: str) -> str:
    """The benchmark name of a Hub dataset id: Kakugo's own name for one it knows, else the id
    with ``/`` written as ``__`` (a benchmark name is a file name of the site, never a path)."""
    from kakugo_core.toolkit.cards import KNOWN_BENCHMARKS

    for name, info in KNOWN_BENCHMARKS.items():
        if info.hub_dataset.lower() == dataset_id.lower():
            return name
    return dataset_id.replace("/", "__")


def _language(code: str) -> str:
    from kakugo_core.languages import resolve

    try:
        return resolve(code).id
    except KakugoError:
        return code


def _metric(name: str | None, kind: str | None) -> str:
    if name:
        bare = re.sub(r"\s*\(.*\)\s*$", "", name).strip()
        if re.fullmatch(r"[a-z0-9_+]+", bare):  # a stored metric name, as Kakugo writes it
            return bare
    kind = (kind or name or "score").strip()
    return METRIC_NAMES.get(kind.lower(), kind.lower().replace(" ", "_"))


def _scaled(metric: str, value: float) -> float:
    return value / 100.0 if metric in FRACTION_METRICS and value > 1.0 else value


def _row(repo: str, sha: str, dataset: str, language: str, n_shot: int, metric: str,
         value: float, stderr: float | None, n: int, created: str, source: str, url: str
         ) -> ResultRow:
    """One imported row; ``dataset`` is the card's dataset id, kept in ``versions`` where the
    benchmark name is not Kakugo's own."""
    benchmark = _benchmark(dataset)
    if benchmark == dataset:
        dataset = ""
    return ResultRow(repo, sha, benchmark, language, n_shot, IMPORTED, metric,
                     _scaled(metric, float(value)),
                     None if stderr is None else _scaled(metric, float(stderr)), n, created,
                     {"source": f"hub:{repo} ({source})", "source_commit": sha,
                      "source_url": url, **({"source_dataset": dataset} if dataset else {})})


def rows_from_model_index(repo: str, sha: str, card_text: str, created: str, url: str
                          ) -> list[ResultRow]:
    """Rows from a model card's ``model-index`` (via huggingface_hub's parser)."""
    from huggingface_hub import ModelCard

    try:
        card = ModelCard(card_text, ignore_metadata_errors=True)
    except Exception as exc:  # a card whose YAML does not parse at all
        raise KakugoError(f"{repo}: unreadable model card ({exc})") from None
    out = []
    for result in getattr(card.data, "eval_results", None) or []:
        if result.metric_value is None or not isinstance(result.metric_value, (int, float)):
            continue
        metric = _metric(result.metric_name, result.metric_type)
        shot = _SHOT.search(result.metric_name or "") or _SHOT.search(result.dataset_name or "")
        args = result.metric_args or {}
        n_shot = int(shot.group(1)) if shot else int(args.get("num_fewshot", args.get(
            "n_shot", 0)) or 0)
        language = _language(result.dataset_config or "") if result.dataset_config else "all"
        out.append(_row(repo, sha, result.dataset_type, language, n_shot, metric,
                        result.metric_value, None, 0, created, "model-index", url))
    return out


def rows_from_eval_results(repo: str, sha: str, name: str, text: str, created: str, url: str
                           ) -> list[ResultRow]:
    """Rows from one ``.eval_results/*.yaml`` file (a list of ``{dataset: {id, task_id},
    value, date, notes}``)."""
    import yaml

    try:
        entries = yaml.safe_load(text) or []
    except yaml.YAMLError as exc:
        raise KakugoError(f"{repo}: {name} is not YAML ({exc})") from None
    out = []
    for entry in entries if isinstance(entries, list) else []:
        dataset = entry.get("dataset") or {}
        value = entry.get("value")
        if not isinstance(value, (int, float)) or not dataset.get("id"):
            continue
        task = str(dataset.get("task_id") or "all")
        language, _, task_metric = task.partition("/")
        notes = str(entry.get("notes") or "")
        match = _NOTES.match(notes)
        metric = task_metric or (match.group("metric") if match else "score")
        n_shot = int(match.group("shot")) if match else int(
            (_SHOT.search(notes) or [0, 0])[1])
        n = int(match.group("n")) if match else 0
        stderr = None
        if match and match.group("se") != "n/a":
            stderr = float(match.group("se"))
        date = str(entry.get("date") or created)
        out.append(_row(repo, sha, str(dataset["id"]), _language(language), n_shot,
                        metric, value, stderr, n, date, name, url))
    return out


def find_repos(api: Any, repos: Sequence[str], author: str | None, search: str | None,
               tags: Sequence[str], limit: int | None) -> list[str]:
    """The repository ids named, plus those the Hub lists for the author/search/tag filter."""
    out = list(repos)
    if author or search or tags:
        try:
            found = api.list_models(author=author, search=search, filter=list(tags) or None,
                                    limit=limit)
            out += [m.id for m in found]
        except Exception as exc:
            from kakugo_core.toolkit.hub import hub_error

            raise hub_error(exc, "listing models") from None
    return list(dict.fromkeys(out))


def read_repo(api: Any, repo: str) -> list[ResultRow]:
    """Every result of one model repository at its current commit."""
    from huggingface_hub import hf_hub_download

    info = api.model_info(repo)
    sha = info.sha or ""
    created = info.last_modified.isoformat(timespec="seconds") if info.last_modified else ""
    from huggingface_hub import constants

    url = f"{constants.ENDPOINT}/{repo}"
    names = [s.rfilename for s in info.siblings or []]
    by_key: dict[tuple[str, ...], ResultRow] = {}
    if "README.md" in names:
        path = hf_hub_download(repo, "README.md", revision=sha, token=api.token)
        with open(path, encoding="utf-8") as fh:
            for row in rows_from_model_index(repo, sha, fh.read(), created, url):
                by_key[(row.benchmark, row.language, row.metric)] = row
    for name in sorted(n for n in names if n.startswith(".eval_results/")
                       and n.endswith((".yaml", ".yml"))):
        path = hf_hub_download(repo, name, revision=sha, token=api.token)
        with open(path, encoding="utf-8") as fh:
            for row in rows_from_eval_results(repo, sha, name, fh.read(), created, url):
                by_key[(row.benchmark, row.language, row.metric)] = row  # it has n and stderr
    return list(by_key.values())


def import_results(store: ResultsStore, repos: Sequence[str] = (), *, author: str | None = None,
                   search: str | None = None, tags: Iterable[str] = (),
                   limit: int | None = None, token: str | None = None) -> ImportReport:
    """Read the results of the named / found repositories into ``store``."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    from kakugo_core.distributed import merge_rows

    api = HfApi(token=token)
    wanted = find_repos(api, repos, author, search, list(tags), limit)
    if not wanted:
        raise KakugoError("no repositories: name some, or give --author, --search or --tag")
    report = ImportReport()
    for repo in wanted:
        try:
            rows = read_repo(api, repo)
        except RepositoryNotFoundError:
            report.skipped.append(f"{repo}: no such model repository")
            continue
        except KakugoError as exc:
            report.skipped.append(str(exc))
            continue
        except Exception as exc:
            from kakugo_core.toolkit.hub import hub_error

            report.skipped.append(str(hub_error(exc, f"reading {repo}")))
            continue
        if not rows:
            report.skipped.append(f"{repo}: no model-index or .eval_results in its card")
            continue
        report.repos.append(repo)
        report.rows += rows
    merged = merge_rows(report.rows, store, source="import")
    report.added, report.same, report.conflicts = merged.added, merged.same, merged.conflicts
    return report
