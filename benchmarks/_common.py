"""Shared machinery of the built-in benchmarks: data sources, few-shot choice, prompt hashes,
multiple-choice scoring and metrics. Cheap to import (no torch, no datasets at module top).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kakugo_core.errors import KakugoError, NotCoveredError
from kakugo_core.interfaces import (
    Backend,
    Benchmark,
    BenchmarkResult,
    LoglikelihoodRequest,
    Score,
)
from kakugo_core.languages import Language

#: the bundled real SIB-200 sample (five languages), FLORES-parallel by index_id
BUNDLED_SIB200 = Path(__file__).resolve().parent / "data" / "sib200"
LOCAL_SUFFIXES = (".jsonl", ".json", ".tsv", ".parquet")
#: bump when a template or the scoring changes, so old results are not mixed with new ones
ENGINE_VERSION = "2"
Row = dict[str, Any]


# -- data sources -----------------------------------------------------------------------------
@dataclass
class Split:
    """Rows of one split and where they came from (the label goes into the prompt hash)."""

    rows: list[Row]
    source: str


def _offline() -> bool:
    return any(
        os.environ.get(var, "") not in ("", "0", "false", "no")
        for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


_COMMIT = re.compile(r"[0-9a-f]{40}")
_resolved: dict[tuple[str, str], str] = {}


def resolve_revision(hub_id: str, revision: str) -> str:
    """The commit sha that ``revision`` (a branch, tag or sha) of dataset ``hub_id`` names now,
    so results record exactly which data they came from. Asked once per process."""
    if _COMMIT.fullmatch(revision):
        return revision
    key = (hub_id, revision)
    if key not in _resolved:
        try:
            from huggingface_hub import HfApi

            sha = HfApi().dataset_info(hub_id, revision=revision).sha
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise KakugoError(f"cannot resolve {hub_id}@{revision} on the Hub: {first}; check "
                              "the dataset id, the revision and your login") from None
        if not sha:
            raise KakugoError(f"the Hub gave no commit for {hub_id}@{revision}")
        _resolved[key] = sha
    return _resolved[key]


def find_local_file(data_dir: Path, benchmark: str, code: str, split: str) -> Path | None:
    """``DIR/<benchmark>/<code>/<split>.<ext>`` or ``DIR/<code>/<split>.<ext>``."""
    for base in (data_dir / benchmark / code, data_dir / code):
        for suffix in LOCAL_SUFFIXES:
            path = base / f"{split}{suffix}"
            if path.is_file():
                return path
    return None


def read_rows(path: Path, required: Sequence[str]) -> list[Row]:
    """Rows of a JSONL, JSON (list), TSV or parquet file; a malformed one is a KakugoError."""
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            rows = pq.read_table(path).to_pylist()
        elif path.suffix == ".tsv":
            with path.open(encoding="utf-8", newline="") as fh:
                rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
        elif path.suffix == ".json":
            rows = json.loads(path.read_text("utf-8"))
            if not isinstance(rows, list):
                raise ValueError("expected a JSON list of objects")
        else:
            rows = []
            for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise ValueError(f"line {number} is not JSON ({exc.msg})") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise KakugoError(f"{path}: cannot read benchmark data: {exc}") from None
    except Exception as exc:  # pyarrow's errors
        raise KakugoError(f"{path}: cannot read benchmark data: {exc}".splitlines()[0]) from None
    if not rows:
        raise KakugoError(f"{path}: no rows; fix or remove the file")
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise KakugoError(f"{path}: row {number} is not an object")
        missing = [c for c in required if row.get(c) in (None, "")]
        if missing:
            raise KakugoError(
                f"{path}: row {number} lacks {', '.join(missing)} (columns needed: "
                f"{', '.join(required)}; see docs/benchmarks.md)"
            )
    return rows


def rows_digest(rows: Sequence[Row]) -> str:
    return hashlib.sha256(
        json.dumps(rows, sort_keys=True, ensure_ascii=False, default=str).encode()
    ).hexdigest()[:16]


def load_split(
    benchmark: str,
    code: str,
    split: str,
    required: Sequence[str],
    *,
    data_dir: str | Path | None,
    hub_id: str,
    hub_config: str,
    hub_split: str,
    revision: str,
    bundled: Path | None = None,
) -> Split:
    """One split from ``data_dir``, else the bundled copy, else the Hub at ``revision``
    (resolved to its commit sha, which the source label records)."""
    if data_dir:
        root = Path(data_dir).expanduser()
        path = find_local_file(root, benchmark, code, split)
        if path is None:
            raise KakugoError(
                f"no {benchmark} {split} file for {code} in {root}: expected "
                f"{root}/{benchmark}/{code}/{split}.jsonl (or .tsv, .parquet); see "
                "docs/benchmarks.md"
            )
        rows = read_rows(path, required)
        return Split(rows, f"local:{rows_digest(rows)}")
    if bundled is not None:
        path = find_local_file(bundled, benchmark, code, split)
        if path is not None:
            rows = read_rows(path, required)
            return Split(rows, f"bundled:{rows_digest(rows)}")
    hint = (
        f"pass --data-dir DIR with {benchmark} files for {code} "
        f"(DIR/{benchmark}/{code}/{split}.jsonl; layout in docs/benchmarks.md)"
    )
    if _offline():
        raise KakugoError(f"no network (HF offline) and no local {benchmark} data for {code}: "
                          f"{hint}")
    revision = resolve_revision(hub_id, revision)
    try:
        import datasets

        dataset = datasets.load_dataset(hub_id, hub_config, split=hub_split, revision=revision)
        rows = [dict(r) for r in dataset]
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise KakugoError(f"cannot load {hub_id} ({hub_config}/{hub_split}@{revision}) from "
                          f"the Hub: {first}; {hint}") from None
    missing = [c for c in required if rows and c not in rows[0]]
    if missing or not rows:
        raise KakugoError(f"{hub_id} ({hub_config}) lacks columns {missing}; {hint}")
    return Split(rows, f"hub:{hub_id}@{revision}")


# -- few-shot ---------------------------------------------------------------------------------
def fewshot_for(
    pool: Sequence[Row],
    n_shot: int,
    exclude: set[str],
    key: Callable[[Row], str],
    seed: str,
) -> list[Row]:
    """``n_shot`` examples from ``pool``: the first ``n_shot`` of one fixed, seeded order shared
    by every item, except that an example whose key is in ``exclude`` (the scored item itself,
    or its passage) is replaced in place by the next unused one, so prompts keep the longest
    common prefix (the scoring engine computes a shared prefix once)."""
    if n_shot <= 0:
        return []
    order = list(range(len(pool)))
    random.Random(seed).shuffle(order)
    spare = (pool[i] for i in order[n_shot:] if key(pool[i]) not in exclude)
    chosen = []
    for index in order[:n_shot]:
        row = pool[index] if key(pool[index]) not in exclude else next(spare, None)
        if row is not None:
            chosen.append(row)
    return chosen


def prompt_hash(**parts: Any) -> str:
    """A short hash of everything that shapes a prompt and its scoring."""
    payload = json.dumps({"engine": ENGINE_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


# -- metrics ----------------------------------------------------------------------------------
def mean_stderr(values: Sequence[float]) -> float | None:
    """Standard error of a mean (lm-eval's formula: sample std with n-1, over sqrt(n)); for
    0/1 values this is the binomial standard error."""
    n = len(values)
    if n < 2:
        return None
    mu = sum(values) / n
    var = sum((v - mu) ** 2 for v in values) / (n - 1)
    return math.sqrt(var / n)


def macro_f1(golds: Sequence[str], preds: Sequence[str], labels: Sequence[str]) -> float:
    scores = []
    for label in labels:
        tp = sum(1 for g, p in zip(golds, preds, strict=True) if g == label and p == label)
        fp = sum(1 for g, p in zip(golds, preds, strict=True) if g != label and p == label)
        fn = sum(1 for g, p in zip(golds, preds, strict=True) if g == label and p != label)
        if tp + fp + fn == 0:
            continue  # a label absent from both: not part of the average (sklearn's labels=seen)
        scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores) if scores else 0.0


def bootstrap_stderr(
    n: int, statistic: Callable[[list[int]], float], resamples: int = 500, seed: int = 1234
) -> float | None:
    """Bootstrap standard error of ``statistic`` over item indices."""
    if n < 2:
        return None
    rng = random.Random(seed)
    values = [statistic([rng.randrange(n) for _ in range(n)]) for _ in range(resamples)]
    mu = sum(values) / len(values)
    return math.sqrt(sum((v - mu) ** 2 for v in values) / (len(values) - 1))


# -- multiple choice --------------------------------------------------------------------------
@dataclass
class MCItem:
    """One multiple-choice item, already formatted."""

    item_id: str
    context: str
    choices: list[str]  # continuations, each with its leading delimiter
    gold: int
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class PreparedTask:
    """What a benchmark will ask a backend, before any model is loaded."""

    benchmark: str
    language: str
    n_shot: int
    prompt_hash: str
    source: str
    items: list[Any]
    labels: list[str] = field(default_factory=list)


def score_multiple_choice(
    backend: Backend, items: Sequence[MCItem], progress: Callable[[int], None] | None = None,
    chunk: int = 256,
) -> list[dict[str, Any]]:
    """Ask the backend for every (context, choice) log-likelihood; pick the argmax."""
    predictions: list[dict[str, Any]] = []
    for start in range(0, len(items), chunk):
        part = items[start:start + chunk]
        requests = [LoglikelihoodRequest(it.context, c) for it in part for c in it.choices]
        results = backend.loglikelihood(requests)
        cursor = 0
        for item in part:
            scored = results[cursor:cursor + len(item.choices)]
            cursor += len(item.choices)
            logprobs = [r.logprob for r in scored]
            pred = max(range(len(logprobs)), key=lambda k: (logprobs[k], -k))
            predictions.append({
                "id": item.item_id, "gold": item.gold, "pred": pred,
                "correct": pred == item.gold, "logprobs": logprobs, **item.extra,
            })
        if progress is not None:
            progress(len(part))
    return predictions


def accuracy_scores(predictions: Sequence[Mapping[str, Any]], metric: str = "acc") -> Score:
    hits = [1.0 if p["correct"] else 0.0 for p in predictions]
    return Score(metric, sum(hits) / len(hits) if hits else 0.0, mean_stderr(hits), len(hits))


def apply_limit(items: list[Any], limit: int | None, seed: int | str = 0,
                label: Callable[[Any], Any] | None = None) -> list[Any]:
    """``limit`` items drawn with ``seed``, stratified by ``label`` when the benchmark has
    labels (see :mod:`kakugo_core.sampling`); all items without a limit."""
    from kakugo_core.sampling import sample_items

    return sample_items(items, limit, seed, label)


def limit_seed(options: Mapping[str, Any]) -> int:
    """``options["limit_seed"]`` (``bench.limit_seed``, 0 by default)."""
    from kakugo_core.sampling import parse_seed

    return parse_seed(options.get("limit_seed", 0))


class MultipleChoiceBenchmark(Benchmark):
    """A benchmark whose items are scored by the log-likelihood of each choice.

    Subclasses implement :meth:`prepare`; options understood by every built-in benchmark:
    ``n_shot`` (3), ``limit`` (0: all), ``data_dir``, ``chat_template`` (False), ``revision``,
    ``progress`` (a callable taking a number of finished items).
    """

    def code_for(self, language: Language) -> str:
        code = self.language_code(language)
        if not code:
            raise NotCoveredError(
                f"{self.name} does not cover {language.name} ({language.id}); drop it from "
                f"--benchmarks or --languages (`kakugo languages {language.id}` shows coverage)"
            )
        return code

    def prepare(self, language: Language, options: Mapping[str, Any]) -> PreparedTask:
        raise NotImplementedError

    def prompt_hash(self, language: Language, options: Mapping[str, Any]) -> str:
        """The hash of the prompts :meth:`evaluate` would use (no model needed)."""
        return self.prepare(language, options).prompt_hash

    def wrap(self, backend: Backend, task: PreparedTask, chat: bool) -> list[MCItem]:
        if not chat:
            return list(task.items)
        return [
            MCItem(it.item_id, backend.apply_chat_template(it.context.rstrip()),
                   [c.lstrip() for c in it.choices], it.gold, it.extra)
            for it in task.items
        ]

    def metrics(self, task: PreparedTask, predictions: list[dict[str, Any]]) -> list[Score]:
        return [accuracy_scores(predictions)]

    def evaluate(
        self, backend: Backend, language: Language, options: Mapping[str, Any]
    ) -> BenchmarkResult:
        task = self.prepare(language, options)
        items = self.wrap(backend, task, bool(options.get("chat_template")))
        predictions = score_multiple_choice(backend, items, options.get("progress"))
        return BenchmarkResult(
            self.name, language.id, task.n_shot, task.prompt_hash,
            self.metrics(task, predictions), predictions, data_source=task.source,
        )


def hub_revision(benchmark: str, options: Mapping[str, Any]) -> str:
    """``options["revision"]``, else ``options["revisions"][benchmark]``, else ``main``."""
    revisions = options.get("revisions") or {}
    return str(options.get("revision") or revisions.get(benchmark) or "main")


def common_options(options: Mapping[str, Any]) -> tuple[int, int | None, str | None, bool]:
    n_shot = int(options.get("n_shot", 3))
    if n_shot < 0:
        raise KakugoError(f"n_shot must be 0 or more, got {n_shot}")
    from kakugo_core.sampling import parse_limit

    limit = parse_limit(options.get("limit"), "limit")
    data_dir = options.get("data_dir") or None
    return n_shot, limit, data_dir, bool(options.get("chat_template"))
