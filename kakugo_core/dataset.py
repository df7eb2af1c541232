"""The dataset builder: a generation work folder → a training dataset and its card.

THE CONTRACT (what the training stage reads): a ``datasets.DatasetDict`` saved with
``save_to_disk(out_dir)``, splits ``train`` and ``validation``, columns

- ``generation_method`` (str): ``topic`` | ``scenario`` | ``context`` | ``translate``
- ``prompt_type`` (str): ``original`` | ``improved`` | ``translated``
- ``topic`` (str, "" if none), ``scenario`` (str, "" if none)
- ``system`` (str): the system prompt to train under
- ``messages`` (list of ``{"role": str, "content": str}``): user/assistant alternating, starting
  with the user and ending with the assistant; no system message in it.

Generated rows' assistant turn is ``"<think>\\n{reasoning}\\n</think>\\n\\n{answer}"`` under
``[dataset].think_system_prompt``; a generated row whose teacher kept no reasoning, and every
translated row, is a plain answer under ``[dataset].concise_system_prompt`` (an empty think
block would teach the student to skip thinking under the think prompt). Rows are
put in the order of their generation ``id`` (the files hold them in the order the teacher's
concurrent replies arrived, which changes from run to run), de-duplicated on their user turns
(case and whitespace folded; the first by id is kept), shuffled with ``[run].seed`` and split
by ``[dataset].validation_fraction``: the same rows give the same dataset whatever the order.
``out_dir/README.md`` is a dataset card (YAML metadata via ``huggingface_hub.DatasetCardData``).
The folder is written beside ``out_dir`` and renamed into place, so a failed build leaves any
earlier dataset untouched.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kakugo_core.config import Config
from kakugo_core.errors import KakugoError
from kakugo_core.languages import Language

COLUMNS = ("generation_method", "prompt_type", "topic", "scenario", "system", "messages")
METHODS = ("topic", "scenario", "context", "translate")


@dataclass
class DatasetSummary:
    """What :func:`build_dataset` wrote."""

    out_dir: str
    language: str
    splits: dict[str, int] = field(default_factory=dict)
    methods: dict[str, int] = field(default_factory=dict)
    prompt_types: dict[str, int] = field(default_factory=dict)
    rejects: dict[str, int] = field(default_factory=dict)  # generation and dataset stages
    teacher_model: str = ""

    @property
    def rows(self) -> int:
        return sum(self.splits.values())

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows": self.rows}


def think_turn(reasoning: str, answer: str) -> str:
    """An assistant turn with the teacher's reasoning kept in think tags."""
    return f"<think>\n{reasoning.strip()}\n</think>\n\n{answer.strip()}"


def _alternating(messages: list[dict[str, str]]) -> bool:
    if not messages or len(messages) % 2:
        return False
    for i, message in enumerate(messages):
        if set(message) != {"role", "content"}:
            return False
        if message["role"] != ("user" if i % 2 == 0 else "assistant"):
            return False
        if not isinstance(message["content"], str) or not message["content"].strip():
            return False
    return True


def _record_from_response(
    row: dict[str, Any], think_system: str, concise_system: str
) -> dict[str, Any]:
    reasoning, answer = str(row.get("reasoning") or ""), str(row.get("response", ""))
    return {
        "generation_method": str(row.get("method", "")),
        "prompt_type": str(row.get("prompt_type", "original")),
        "topic": str(row.get("topic") or ""),
        "scenario": str(row.get("scenario") or ""),
        "system": think_system if reasoning.strip() else concise_system,
        "messages": [
            {"role": "user", "content": str(row.get("user", ""))},
            {
                "role": "assistant",
                "content": think_turn(reasoning, answer) if reasoning.strip() else answer.strip(),
            },
        ],
    }


def _record_from_translation(row: dict[str, Any], concise_system: str) -> dict[str, Any]:
    messages = [
        {"role": str(m.get("role", "")), "content": str(m.get("content", ""))}
        for m in row.get("messages") or []
        if isinstance(m, dict)
    ]
    if len(messages) > 1 and messages[-1]["role"] == "user":
        messages = messages[:-1]  # a conversation ending on an unanswered user turn
    return {
        "generation_method": "translate",
        "prompt_type": "translated",
        "topic": "",
        "scenario": "",
        "system": concise_system,
        "messages": messages,
    }


def _dedupe_key(record: dict[str, Any]) -> str:
    users = [m["content"] for m in record["messages"] if m["role"] == "user"]
    return "\x1e".join(" ".join(u.casefold().split()) for u in users)


def _by_id(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in the order of their ``id`` (the whole row breaks ties), not of their arrival."""
    return sorted(rows, key=lambda r: (str(r.get("id", "")),
                                       json.dumps(r, sort_keys=True, ensure_ascii=False)))


def collect_records(
    work_dir: Path, config: Config
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """Contract records from ``responses.jsonl`` and ``translations.jsonl``, checked and
    de-duplicated, in ``id`` order (not file order, which follows the arrival of concurrent
    teacher replies); plus the count of dropped rows per ``dataset:<reason>``."""
    from kakugo_core.generation import read_rows

    settings = config["dataset"]
    dropped: Counter[str] = Counter()
    records = [
        _record_from_response(row, settings["think_system_prompt"],
                              settings["concise_system_prompt"])
        for row in _by_id(read_rows(work_dir, "responses"))
    ] + [
        _record_from_translation(row, settings["concise_system_prompt"])
        for row in _by_id(read_rows(work_dir, "translations"))
    ]
    kept: list[dict[str, Any]] = []
    seen: set[str] = set()
    for record in records:
        if record["generation_method"] not in METHODS or not _alternating(record["messages"]):
            dropped["dataset:invalid"] += 1
            continue
        if settings["dedupe"]:
            key = _dedupe_key(record)
            if key in seen:
                dropped["dataset:duplicate"] += 1
                continue
            seen.add(key)
        kept.append(record)
    return kept, dropped


def split_records(
    records: list[dict[str, Any]], validation_fraction: float, seed: int
) -> dict[str, list[dict[str, Any]]]:
    """Shuffle with the seed; the first ``round(n * fraction)`` rows (at least one when there
    are two or more rows and the fraction is positive) become the validation split."""
    shuffled = list(records)
    random.Random(seed).shuffle(shuffled)
    n_val = round(len(shuffled) * validation_fraction)
    if validation_fraction > 0 and len(shuffled) >= 2:
        n_val = min(max(1, n_val), len(shuffled) - 1)
    return {"train": shuffled[n_val:], "validation": shuffled[:n_val]}


def features() -> Any:
    """The contract's ``datasets.Features``."""
    from datasets import Features, List, Value

    return Features(
        {
            "generation_method": Value("string"),
            "prompt_type": Value("string"),
            "topic": Value("string"),
            "scenario": Value("string"),
            "system": Value("string"),
            "messages": List({"role": Value("string"), "content": Value("string")}),
        }
    )


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bin for ``n`` rows."""
    bins = [
        (1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"),
    ]
    for limit, name in bins:
        if n < limit:
            return name
    return "10M<n<100M"


def _language_codes(language: Language) -> list[str]:
    return [code for code in (language.iso639_1, language.iso639_3) if code]


def dataset_card(summary: DatasetSummary, language: Language, config: Config) -> Any:
    """The dataset card (``huggingface_hub.DatasetCard``) for a built dataset."""
    from huggingface_hub import DatasetCard, DatasetCardData

    settings = config["dataset"]
    sources = ["original"]
    if summary.methods.get("translate"):
        sources.append("extended|BAAI/Infinity-Instruct")
    data = DatasetCardData(
        language=_language_codes(language),
        license=settings["license"],
        size_categories=[size_category(summary.rows)],
        task_categories=["text-generation"],
        multilinguality="monolingual",
        language_creators=["machine-generated"],
        annotations_creators=["machine-generated"],
        source_datasets=sources,
        pretty_name=f"Kakugo {language.name}",
        tags=["kakugo", "synthetic", "instruction-tuning", "reasoning"],
        language_details=language.id,
        teacher_model=summary.teacher_model or "unknown",
        generation_counts=dict(summary.methods),
        prompt_type_counts=dict(summary.prompt_types),
        rejection_counts=dict(summary.rejects),
        splits=dict(summary.splits),
    )
    rows = "\n".join(f"| {m} | {summary.methods.get(m, 0)} |" for m in METHODS)
    rejects = "\n".join(f"| {k} | {v} |" for k, v in sorted(summary.rejects.items())) or "| - | 0 |"
    body = f"""# Kakugo {language.name} ({language.id})

Synthetic instruction data in {language.name}, written by the teacher model
`{summary.teacher_model or 'unknown'}` with [Kakugo](https://arxiv.org/abs/2601.14051):
prompts about topics, scenarios and real {language.name} texts (half of them rewritten by an
"improve" pass), answered by the teacher with its reasoning kept, plus English instruction
conversations translated whole.

## Format

A `datasets.DatasetDict` (splits `train`: {summary.splits.get('train', 0)} rows, `validation`:
{summary.splits.get('validation', 0)} rows) with columns `generation_method`, `prompt_type`,
`topic`, `scenario`, `system` and `messages` (user/assistant turns, starting with the user).
Generated rows' answers read `<think>\\nreasoning\\n</think>\\n\\nanswer` and are trained under
the system prompt "{settings['think_system_prompt']}"; translated rows, and generated rows whose
teacher gave no reasoning, are plain answers under "{settings['concise_system_prompt']}".

## Rows per generation method

| method | rows |
|---|---|
{rows}

## Rejected while generating and building

| stage:reason | count |
|---|---|
{rejects}

## Licence

{settings['license']}. Translated rows derive from BAAI/Infinity-Instruct (CC BY-SA 4.0).
"""
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


#: the summary every dataset folder holds; its presence says Kakugo made the folder
SUMMARY_FILE = "kakugo_dataset.json"


def _teacher_model(work_dir: Path) -> str:
    path = work_dir / "summary.json"
    if not path.exists():
        return ""
    try:
        return str(json.loads(path.read_text("utf-8")).get("teacher_model", ""))
    except (json.JSONDecodeError, AttributeError):
        return ""


def _generation_rejects(work_dir: Path) -> Counter[str]:
    from kakugo_core.generation import count_rows

    return Counter(count_rows(work_dir)[1])


def _replace_dir(tmp: Path, out: Path) -> None:
    old = out.with_name(out.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    if old.exists():
        shutil.rmtree(old)


def build_dataset(
    work_dir: str | Path, out_dir: str | Path, config: Config, language: str | Language
) -> DatasetSummary:
    """Build the contract dataset and its card from a generation work folder."""
    from datasets import Dataset, DatasetDict

    from kakugo_core.languages import resolve

    lang = resolve(language)
    work, out = Path(work_dir), Path(out_dir)
    if not work.is_dir():
        raise KakugoError(f"work folder {work} does not exist; run `kakugo generate` first")
    records, dropped = collect_records(work, config)
    if not records:
        raise KakugoError(
            f"{work} holds no responses or translations; run `kakugo generate` there first"
        )
    splits = split_records(
        records, float(config["dataset"]["validation_fraction"]), int(config["run"]["seed"])
    )
    rejects = _generation_rejects(work) + dropped
    summary = DatasetSummary(
        out_dir=str(out),
        language=lang.id,
        splits={name: len(rows) for name, rows in splits.items()},
        methods=_counts(r["generation_method"] for r in records),
        prompt_types=_counts(r["prompt_type"] for r in records),
        rejects=dict(sorted(rejects.items())),
        teacher_model=_teacher_model(work),
    )
    feats = features()
    dataset = DatasetDict(
        {
            name: Dataset.from_list(rows, features=feats)
            if rows else Dataset.from_dict({c: [] for c in COLUMNS}, features=feats)
            for name, rows in splits.items()
        }
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        dataset.save_to_disk(str(tmp))
        dataset_card(summary, lang, config).save(tmp / "README.md")
        (tmp / SUMMARY_FILE).write_text(
            json.dumps(summary.as_dict(), indent=2, ensure_ascii=False) + "\n", "utf-8"
        )
        _replace_dir(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return summary


def _counts(values: Iterable[str]) -> dict[str, int]:
    return dict(sorted(Counter(values).items()))
