"""Belebele: 4-choice reading comprehension on FLORES passages (Bandarkar et al., 2024).

Prompt (lm-eval's ``belebele`` template): ``P: passage / Q: question / A: .. D: .. / Answer:``,
choices `` A``..`` D``. Belebele has only a test split, so few-shot examples come from it too,
never from the scored item's own passage. Metric: ``acc``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kakugo_core import hookimpl
from kakugo_core.errors import KakugoError
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
from kakugo_core.toolkit.sampling import sample_key

HUB_ID = "facebook/belebele"
COLUMNS = ("link", "question_number", "flores_passage", "question", "mc_answer1", "mc_answer2",
           "mc_answer3", "mc_answer4", "correct_answer_num")
TEMPLATE = ("P: {flores_passage}\nQ: {question}\nA: {mc_answer1}\nB: {mc_answer2}\n"
            "C: {mc_answer3}\nD: {mc_answer4}\nAnswer:")
LETTERS = ("A", "B", "C", "D")


def item_id(row: Mapping[str, Any]) -> str:
    return f"{row['link']}#{row['question_number']}"


def format_question(row: Mapping[str, Any]) -> str:
    fields = {k: str(row[k]).strip() for k in COLUMNS if k.startswith(("mc_", "flores"))}
    return TEMPLATE.format(question=str(row["question"]).strip(), **fields)


def gold_index(row: Mapping[str, Any], code: str) -> int:
    try:
        gold = int(str(row["correct_answer_num"]).strip()) - 1
    except ValueError:
        gold = -1
    if gold not in range(4):
        raise KakugoError(f"belebele {code}: correct_answer_num must be 1-4, got "
                          f"{row['correct_answer_num']!r} in {item_id(row)}")
    return gold


class BelebeleBenchmark(MultipleChoiceBenchmark):
    """Belebele (``facebook/belebele``, config = FLORES code)."""

    name = "belebele"
    coverage_key = "belebele"
    primary_metrics = ("acc",)
    hub_id = HUB_ID

    def prepare(self, language: Language, options: Mapping[str, Any]) -> PreparedTask:
        code = self.code_for(language)
        n_shot, limit, data_dir, chat = common_options(options)
        revision = hub_revision(self.name, options)
        split = load_split(self.name, code, "test", COLUMNS, data_dir=data_dir, hub_id=HUB_ID,
                           hub_config=code, hub_split="test", revision=revision)
        items = []
        seen: set[str] = set()
        for row in split.rows:
            if item_id(row) in seen:
                raise KakugoError(f"belebele {code}: item {item_id(row)} appears twice in "
                                  f"{split.source}; each item must appear once")
            seen.add(item_id(row))
        seed = limit_seed(options)
        for row in apply_limit(split.rows, limit, seed, label=lambda r: gold_index(r, code)):
            shots = fewshot_for(split.rows, n_shot, {str(row["link"])},
                                key=lambda r: str(r["link"]), seed=f"belebele:{code}")
            context = "".join(
                format_question(s) + f" {LETTERS[gold_index(s, code)]}\n\n" for s in shots
            ) + format_question(row)
            items.append(MCItem(item_id(row), context, [f" {x}" for x in LETTERS],
                                gold_index(row, code)))
        digest = prompt_hash(benchmark=self.name, code=code, n_shot=n_shot, chat=chat,
                             source=split.source, n=len(items), template=TEMPLATE,
                             **sample_key(limit, seed, True, len(split.rows)))
        return PreparedTask(self.name, language.id, n_shot, digest, split.source, items)


@hookimpl
def register_benchmarks(register: Any) -> None:
    register("belebele", BelebeleBenchmark)
