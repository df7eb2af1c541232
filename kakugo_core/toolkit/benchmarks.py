"""Building benchmarks: the multiple-choice base class, prepared items, the prompt hash and the
options every benchmark understands.

A multiple-choice benchmark implements :meth:`MultipleChoiceBenchmark.prepare`, returning a
:class:`PreparedTask` of :class:`MCItem` s (context, choices, gold); scoring, chat templates and
accuracy come from the base class. See docs/plugins.md for a complete example.
"""

from __future__ import annotations

import hashlib
import json
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
from kakugo_core.toolkit.data import Split, hub_revision, load_split
from kakugo_core.toolkit.metrics import accuracy_scores

#: bump when a template or the scoring changes, so old results are not mixed with new ones
ENGINE_VERSION = "2"


#: class attributes that say how a model card names a benchmark on the Hub
CARD_ATTRIBUTES = ("hub_dataset", "task_type", "task_name", "split")
#: prefix of those attributes where they are stored with each result
CARD_PREFIX = "card_"


def card_metadata(benchmark: object) -> dict[str, str]:
    """A benchmark's card attributes as stored with its results (``card_hub_dataset``, ...), so
    a release names the task even where no installed plugin registers the benchmark (a task
    file benched by path, a store merged from another machine)."""
    return {CARD_PREFIX + name: str(value) for name in CARD_ATTRIBUTES
            if (value := getattr(benchmark, name, None))}


def prompt_hash(**parts: Any) -> str:
    """A short hash of everything that shapes a prompt and its scoring."""
    payload = json.dumps({"engine": ENGINE_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


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


def apply_limit(items: list[Any], limit: int | None, seed: int | str = 0,
                label: Callable[[Any], Any] | None = None) -> list[Any]:
    """``limit`` items drawn with ``seed``, stratified by ``label`` when the benchmark has
    labels (see :mod:`kakugo_core.toolkit.sampling`); all items without a limit."""
    from kakugo_core.toolkit.sampling import sample_items

    return sample_items(items, limit, seed, label)


def limit_seed(options: Mapping[str, Any]) -> int:
    """``options["limit_seed"]`` (``bench.limit_seed``, 0 by default)."""
    from kakugo_core.toolkit.sampling import parse_seed

    return parse_seed(options.get("limit_seed", 0))


class MultipleChoiceBenchmark(Benchmark):
    """A benchmark whose items are scored by the log-likelihood of each choice.

    Subclasses implement :meth:`prepare`; options understood by every built-in benchmark:
    ``n_shot`` (3), ``limit`` (0: all), ``data_dir``, ``chat_template`` (False), ``revision``,
    ``progress`` (a callable taking a number of finished items). With :attr:`hub_id` and
    :attr:`columns` set, :meth:`load` reads a split from ``--data-dir``, the bundled folder or
    the Hub.
    """

    #: the Hugging Face dataset (its config is the language's code), for :meth:`load`
    hub_id: str = ""
    #: the columns every row must have, for :meth:`load`
    columns: tuple[str, ...] = ()
    #: a folder of files shipped with the plugin (``<code>/<split>.jsonl``), tried before the Hub
    bundled: Path | None = None

    def load(self, language: Language, options: Mapping[str, Any], split: str) -> Split:
        """One split for ``language``: ``--data-dir`` files
        (``DIR/<name>/<code>/<split>.jsonl|.tsv|.json|.parquet``), else :attr:`bundled`, else
        the Hub at the configured revision (resolved to its commit)."""
        code = self.code_for(language)
        return load_split(self.name.split(":")[-1], code, split, self.columns,
                          data_dir=options.get("data_dir") or None, hub_id=self.hub_id,
                          hub_config=code, hub_split=split, bundled=self.bundled,
                          revision=hub_revision(self.name, options))

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


def common_options(options: Mapping[str, Any]) -> tuple[int, int | None, str | None, bool]:
    n_shot = int(options.get("n_shot", 3))
    if n_shot < 0:
        raise KakugoError(f"n_shot must be 0 or more, got {n_shot}")
    from kakugo_core.toolkit.sampling import parse_limit

    limit = parse_limit(options.get("limit"), "limit")
    data_dir = options.get("data_dir") or None
    return n_shot, limit, data_dir, bool(options.get("chat_template"))
