"""Global-MMLU: MMLU in 42 languages, with culturally-sensitive (CS) and -agnostic (CA) labels
(Singh et al., 2024). ``global_mmlu`` is the full set, ``global_mmlu_lite`` the Lite subset.

Prompt (MMLU's): a subject header, few-shot examples from the dev split (same subject first),
then ``question / A. .. D. / Answer:``; choices `` A``..`` D``. Metrics: ``acc``, ``acc_<category>``
for every subject category present (``acc_stem``, ``acc_humanities``, ...), ``acc_cs``/``acc_ca``.
"""

from __future__ import annotations

import re
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
from kakugo_core.toolkit.data import hub_revision, load_split
from kakugo_core.toolkit.fewshot import fewshot_for
from kakugo_core.toolkit.metrics import accuracy_scores
from kakugo_core.toolkit.sampling import sample_key

COLUMNS = ("sample_id", "subject", "subject_category", "question", "option_a", "option_b",
           "option_c", "option_d", "answer")
HEADER = "The following are multiple choice questions (with answers) about {subject}.\n\n"
TEMPLATE = "{question}\nA. {option_a}\nB. {option_b}\nC. {option_c}\nD. {option_d}\nAnswer:"
LETTERS = ("A", "B", "C", "D")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def format_question(row: Mapping[str, Any]) -> str:
    return TEMPLATE.format(**{k: str(row[k]).strip() for k in COLUMNS[3:8]})


def gold_index(row: Mapping[str, Any], code: str) -> int:
    answer = str(row["answer"]).strip().upper()
    if answer not in LETTERS:
        raise KakugoError(f"global_mmlu {code}: answer must be A-D, got {row['answer']!r} in "
                          f"{row['sample_id']}")
    return LETTERS.index(answer)


class GlobalMMLUBenchmark(MultipleChoiceBenchmark):
    """Global-MMLU (``CohereForAI/Global-MMLU``, config = Global-MMLU's language code)."""

    name = "global_mmlu"
    coverage_key = "global_mmlu"
    primary_metrics = ("acc",)
    hub_id = "CohereForAI/Global-MMLU"

    def prepare(self, language: Language, options: Mapping[str, Any]) -> PreparedTask:
        code = self.code_for(language)
        n_shot, limit, data_dir, chat = common_options(options)
        kwargs: dict[str, Any] = dict(data_dir=data_dir, hub_id=self.hub_id, hub_config=code,
                      revision=hub_revision(self.name, options))
        test = load_split(self.name, code, "test", COLUMNS, hub_split="test", **kwargs)
        dev = load_split(self.name, code, "dev", COLUMNS, hub_split="dev", **kwargs)
        by_subject: dict[str, list[dict[str, Any]]] = {}
        for row in dev.rows:
            by_subject.setdefault(str(row["subject"]), []).append(row)
        items = []
        seed = limit_seed(options)
        for row in apply_limit(test.rows, limit, seed, label=lambda r: gold_index(r, code)):
            subject = str(row["subject"])
            same = fewshot_for(by_subject.get(subject, []), n_shot, {str(row["sample_id"])},
                               key=lambda r: str(r["sample_id"]), seed=f"gmmlu:{code}:{subject}")
            used = {str(row["sample_id"])} | {str(s["sample_id"]) for s in same}
            shots = same + fewshot_for(dev.rows, n_shot - len(same), used,
                                       key=lambda r: str(r["sample_id"]), seed=f"gmmlu:{code}")
            context = HEADER.format(subject=subject.replace("_", " ")) + "".join(
                format_question(s) + f" {LETTERS[gold_index(s, code)]}\n\n" for s in shots
            ) + format_question(row)
            extra = {"category": slug(str(row["subject_category"])),
                     "cultural": str(row.get("cultural_sensitivity_label") or "").upper()}
            items.append(MCItem(str(row["sample_id"]), context, [f" {x}" for x in LETTERS],
                                gold_index(row, code), extra))
        digest = prompt_hash(benchmark=self.name, code=code, n_shot=n_shot, chat=chat,
                             source=[test.source, dev.source], n=len(items),
                             template=[HEADER, TEMPLATE],
                             **sample_key(limit, seed, True, len(test.rows)))
        return PreparedTask(self.name, language.id, n_shot, digest, test.source, items)

    def metrics(self, task: PreparedTask, predictions: list[dict[str, Any]]) -> list[Score]:
        scores = [accuracy_scores(predictions)]
        for category in sorted({p["category"] for p in predictions}):
            part = [p for p in predictions if p["category"] == category]
            scores.append(accuracy_scores(part, f"acc_{category}"))
        for label in ("CS", "CA"):
            part = [p for p in predictions if p["cultural"] == label]
            if part:
                scores.append(accuracy_scores(part, f"acc_{label.lower()}"))
        return scores


class GlobalMMLULiteBenchmark(GlobalMMLUBenchmark):
    """Global-MMLU Lite (``CohereForAI/Global-MMLU-Lite``): 200 CS + 200 CA items per language."""

    name = "global_mmlu_lite"
    hub_id = "CohereForAI/Global-MMLU-Lite"


@hookimpl
def register_benchmarks(register: Any) -> None:
    register("global_mmlu", GlobalMMLUBenchmark, aliases=("global-mmlu", "gmmlu"))
    register("global_mmlu_lite", GlobalMMLULiteBenchmark, aliases=("global-mmlu-lite",))
