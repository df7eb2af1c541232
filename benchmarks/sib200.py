"""SIB-200: 7-way topic classification of FLORES sentences (Adelani et al., 2024).

Each test sentence is scored by the log-likelihood of every label after the prompt; the
highest wins. Metrics: ``acc`` and ``macro_f1``. Few-shot examples come from the train split.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kakugo_core import hookimpl
from kakugo_core.errors import KakugoError
from kakugo_core.interfaces import Score
from kakugo_core.languages import Language
from kakugo_core.toolkit.benchmarks import (
    MCItem,
    MultipleChoiceBenchmark,
    PreparedTask,
    apply_limit,
    common_options,
    limit_seed,
    prompt_hash,
)
from kakugo_core.toolkit.data import BUNDLED_SIB200, hub_revision, load_split
from kakugo_core.toolkit.fewshot import fewshot_for
from kakugo_core.toolkit.metrics import accuracy_scores, bootstrap_stderr, macro_f1
from kakugo_core.toolkit.sampling import sample_key

HUB_ID = "Davlan/sib200"
LABELS = ("science/technology", "travel", "politics", "sports", "health", "entertainment",
          "geography")
HEADER = ("Classify the topic of each text as one of: " + ", ".join(LABELS) + ".\n\n")
#: one example; the scored item ends after "Topic:" and each label is a continuation " {label}"
TEMPLATE = "Text: {text}\nTopic:"
COLUMNS = ("index_id", "category", "text")


class Sib200Benchmark(MultipleChoiceBenchmark):
    """SIB-200 topic classification (``Davlan/sib200``, config = FLORES code)."""

    name = "sib200"
    coverage_key = "sib200"
    primary_metrics = ("acc",)
    hub_id = HUB_ID

    def prepare(self, language: Language, options: Mapping[str, Any]) -> PreparedTask:
        code = self.code_for(language)
        n_shot, limit, data_dir, chat = common_options(options)
        revision = hub_revision(self.name, options)
        kwargs: dict[str, Any] = dict(data_dir=data_dir, hub_id=HUB_ID, hub_config=code,
                                      revision=revision, bundled=BUNDLED_SIB200)
        test = load_split(self.name, code, "test", COLUMNS, hub_split="test", **kwargs)
        train = load_split(self.name, code, "train", COLUMNS, hub_split="train", **kwargs)
        seed = limit_seed(options)
        rows = apply_limit(test.rows, limit, seed, label=lambda r: r["category"])
        items = []
        for row in rows:
            shots = fewshot_for(train.rows, n_shot, {str(row["index_id"])},
                                key=lambda r: str(r["index_id"]), seed=f"sib200:{code}")
            context = HEADER + "".join(
                TEMPLATE.format(text=s["text"].strip()) + f" {s['category']}\n\n" for s in shots
            ) + TEMPLATE.format(text=str(row["text"]).strip())
            gold = LABELS.index(row["category"]) if row["category"] in LABELS else -1
            if gold < 0:
                raise KakugoError(f"sib200 {code}: unknown category {row['category']!r} "
                                  f"(expected one of {', '.join(LABELS)})")
            items.append(MCItem(str(row["index_id"]), context, [f" {lab}" for lab in LABELS],
                                gold))
        digest = prompt_hash(benchmark=self.name, code=code, n_shot=n_shot, chat=chat,
                             source=[test.source, train.source], n=len(items),
                             template=[HEADER, TEMPLATE],
                             **sample_key(limit, seed, True, len(test.rows)))
        return PreparedTask(self.name, language.id, n_shot, digest, test.source, items,
                            list(LABELS))

    def metrics(self, task: PreparedTask, predictions: list[dict[str, Any]]) -> list[Score]:
        golds = [LABELS[p["gold"]] for p in predictions]
        preds = [LABELS[p["pred"]] for p in predictions]
        for p in predictions:
            p["gold_label"], p["pred_label"] = LABELS[p["gold"]], LABELS[p["pred"]]

        def f1_of(indices: list[int]) -> float:
            return macro_f1([golds[i] for i in indices], [preds[i] for i in indices], LABELS)

        f1 = Score("macro_f1", macro_f1(golds, preds, LABELS),
                   bootstrap_stderr(len(golds), f1_of), len(golds))
        return [accuracy_scores(predictions), f1]


@hookimpl
def register_benchmarks(register: Any) -> None:
    register("sib200", Sib200Benchmark, aliases=("sib-200", "sib"))
