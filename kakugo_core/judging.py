"""Pairwise judging: a teacher compares two models' answers, in both orders, with a rubric.

The engine behind the ``judge`` benchmark and ``kakugo compare``; cheap to import (no torch).

* **Prompts** come from a JSONL/JSON file of rows with a ``prompt`` field (a generator's
  ``prompts.jsonl`` kept out of training; a row's ``context`` is put before the prompt, as in
  training), MT-Bench-style rows with ``turns`` (the first turn is used), or a run's
  ``dataset/`` folder, whose ``validation`` split the student never trained on.
* **Both orders.** Every pair (answer of model A, answer of model B) is judged twice, once with
  A shown first and once with B shown first, to cancel position bias.
* **Verdicts.** The rubric (``kakugo_core/data/judge_rubric.md``) asks for a last line
  ``Verdict: [[1]]``, ``[[2]]`` or ``[[tie]]``. A reply without one is *unparsed*: counted,
  never fatal.
* **Rule.** Each order gives A +1 (A better), 0 (tie) or -1 (B better); the pair is a *win* when
  the sum is positive, a *loss* when negative, a *tie* when zero. So win+win and win+tie are
  wins, win+loss (the judge followed the position) is a tie. A pair with an unparsed order is
  left out of the rates and counted in ``unparsed_pairs``.
* **Confidence.** Rates are proportions of pairs with a Wilson score interval (95 %); the
  stored ``stderr`` is the interval's half-width divided by 1.96, so ``value ± 1.96·stderr``
  has the Wilson interval's width (its centre is the Wilson centre, which :func:`wilson_interval`
  gives exactly).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from kakugo_core.errors import KakugoError
from kakugo_core.interfaces import (
    Backend,
    GenerationRequest,
    Score,
    Teacher,
    TeacherReply,
    TeacherRequest,
)
from kakugo_core.toolkit.metrics import wilson_interval, wilson_stderr

__all__ = [
    "OUTCOMES",
    "PairJudgement",
    "PromptItem",
    "answer_prompts",
    "combine_verdicts",
    "judge_pairs",
    "judge_request",
    "load_prompts",
    "parse_verdict",
    "position_bias",
    "preference_scores",
    "rubric_digest",
    "rubric_text",
    "wilson_interval",
]

#: the outcomes of a pair, from model A's side
OUTCOMES = ("win", "tie", "loss")
#: verdict labels: the answer shown first, the one shown second, or neither
FIRST, SECOND, TIE = "1", "2", "tie"

_VERDICT_BRACKETS = re.compile(r"\[\[\s*(1|2|tie)\s*\]\]", re.IGNORECASE)
_VERDICT_LINE = re.compile(
    r"verdict\s*[:：]\s*\**\s*(?:answer\s*)?(1|2|tie)\b", re.IGNORECASE
)


# -- prompts ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PromptItem:
    """One held-out prompt: a stable id and the user message the models answer."""

    id: str
    text: str


def _row_text(row: dict[str, Any]) -> str:
    if isinstance(row.get("prompt"), str) and row["prompt"].strip():
        context = row.get("context") or ""
        text = str(row["prompt"]).strip()
        return f"{str(context).strip()}\n\n{text}" if str(context).strip() else text
    turns = row.get("turns")
    if isinstance(turns, list) and turns and isinstance(turns[0], str) and turns[0].strip():
        return turns[0].strip()
    return ""


def _dataset_prompts(folder: Path) -> list[PromptItem]:
    """The first user turn of every generated row of a Kakugo dataset's ``validation`` split
    (rows the student never trained on); translated rows are skipped unless nothing else is
    there."""
    from datasets import load_from_disk

    try:
        dataset = load_from_disk(str(folder))
        split = dataset["validation"]
    except (OSError, KeyError, ValueError, FileNotFoundError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise KakugoError(f"{folder}: not a Kakugo dataset with a validation split ({first}); "
                          "pass a prompts JSONL file or the dataset/ folder of a run") from None
    rows = []
    for index, row in enumerate(split):
        user = next((m.get("content", "") for m in row.get("messages") or []
                     if m.get("role") == "user"), "")
        if user and user.strip():
            rows.append((index, row.get("generation_method", ""), user.strip()))
    generated = [r for r in rows if r[1] != "translate"]
    chosen = generated or rows
    if not chosen:
        raise KakugoError(f"{folder}: the validation split has no user prompts; build the "
                          "dataset with [dataset].validation_fraction > 0")
    return [PromptItem(f"validation:{index}", text) for index, _method, text in chosen]


def load_prompts(path: str | Path, limit: int | None = None,
                 seed: int | str | None = None) -> list[PromptItem]:
    """Prompts from a JSONL (or JSON list) file of rows with a ``prompt`` (or ``turns``) field
    (ids from ``id`` / ``question_id``, else the line number), or from a Kakugo dataset folder
    (its ``validation`` split: held out of training). With ``limit`` and a ``seed``: the seeded
    sample of that many that ``--limit`` draws everywhere (:func:`~kakugo_core.toolkit.
    sampling.sample_items`, in file order; what ``kakugo judge`` and ``compare`` use); without
    a seed, the first ``limit`` (as before ``seed`` was added). Bad input is a KakugoError."""
    path = Path(path)
    if path.is_dir():
        return _limited(_dataset_prompts(path), limit, seed)
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise KakugoError(f"{path}: no such prompts file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KakugoError(f"{path}: cannot read prompts: {exc}") from None
    rows: list[Any]
    if path.suffix == ".json":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise KakugoError(f"{path}: not valid JSON ({exc.msg}); expected a list of "
                              "objects with a 'prompt' field") from None
        if not isinstance(rows, list):
            raise KakugoError(f"{path}: expected a JSON list of objects with a 'prompt' field")
    else:
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise KakugoError(f"{path}: line {number} is not JSON ({exc.msg}); expected one "
                                  "object with a 'prompt' field per line") from None
    items: list[PromptItem] = []
    seen: set[str] = set()
    for number, row in enumerate(rows, 1):
        prompt = _row_text(row) if isinstance(row, dict) else ""
        if not prompt:
            raise KakugoError(f"{path}: row {number} has no 'prompt' text; every row needs one "
                              '(e.g. {"id": "q1", "prompt": "..."})')
        raw_id = row.get("id", row.get("question_id"))
        item_id = str(raw_id) if raw_id not in (None, "") else str(number)
        if item_id in seen:
            raise KakugoError(f"{path}: row {number} repeats id {item_id!r}; ids must be unique")
        seen.add(item_id)
        items.append(PromptItem(item_id, prompt))
    if not items:
        raise KakugoError(f"{path}: no prompts; write one JSON object with a 'prompt' per line")
    return _limited(items, limit, seed)


def _limited(items: list[PromptItem], limit: int | None,
             seed: int | str | None) -> list[PromptItem]:
    from kakugo_core.toolkit.sampling import sample_items

    if seed is None:
        return items[:limit] if limit and limit > 0 else items
    return sample_items(items, limit, seed)


def prompts_digest(items: Sequence[PromptItem]) -> str:
    """A short content hash of the prompts (ids and texts)."""
    payload = json.dumps([[p.id, p.text] for p in items], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def judge_options(
    config: Mapping[str, Any],
    *,
    prompts: str | Path,
    opponent: str,
    backend: str,
    backend_options: Mapping[str, Any],
    cache_file: str | Path | None = None,
    max_new_tokens: int | None = None,
    limit: int | None = None,
    limit_seed: int | None = None,
) -> dict[str, Any]:
    """The ``judge`` benchmark's options from a configuration's ``[judge]`` and ``[teacher]``
    sections (what ``kakugo judge`` and the run's bench stage pass)."""
    from kakugo_core.toolkit.sampling import parse_seed

    section = config["judge"]
    limit = section["limit"] if limit is None else limit
    seed = parse_seed(config.get("bench", {}).get("limit_seed", 0) if limit_seed is None
                      else limit_seed)
    return {
        "prompts": str(prompts), "opponent": opponent, "opponent_backend": backend,
        "opponent_options": dict(backend_options), "config": config,
        "cache_file": str(cache_file or section["cache_file"] or "") or None,
        "max_new_tokens": max_new_tokens or section["max_new_tokens"],
        "judge_temperature": section["temperature"], "judge_max_tokens": section["max_tokens"],
        "limit": limit or None, "limit_seed": seed,
    }


def answer_prompts(
    backend: Backend,
    items: Sequence[PromptItem],
    max_new_tokens: int = 512,
    chat_template: bool = True,
    progress: Callable[[int], None] | None = None,
    batch: int = 16,
) -> list[str]:
    """Greedy answers of one model to every prompt, through the model's chat template."""
    answers: list[str] = []
    for start in range(0, len(items), batch):
        part = items[start:start + batch]
        requests = [
            GenerationRequest(
                backend.apply_chat_template(p.text) if chat_template else p.text,
                stop=(), max_new_tokens=max_new_tokens,
            )
            for p in part
        ]
        answers.extend(a.strip() for a in backend.generate(requests))
        if progress is not None:
            progress(len(part))
    return answers


# -- the judge --------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def rubric_text() -> str:
    """The judge's instructions (a template with ``{language}``), as documented."""
    return resources.files("kakugo_core").joinpath("data/judge_rubric.md").read_text("utf-8")


def rubric_digest() -> str:
    """A short hash of the rubric and the user-message layout (part of result keys)."""
    payload = rubric_text() + USER_TEMPLATE
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:12]


USER_TEMPLATE = (
    "[Question]\n{question}\n[End of question]\n\n"
    "[Answer 1]\n{first}\n[End of answer 1]\n\n"
    "[Answer 2]\n{second}\n[End of answer 2]\n\n"
    "Which answer is better for a {language}-speaking user? End with the verdict line."
)


def judge_request(
    question: str,
    first: str,
    second: str,
    language_name: str,
    temperature: float = 0.0,
    max_tokens: int | None = 2048,
) -> TeacherRequest:
    """The chat request asking the judge to compare ``first`` and ``second`` (in that order)."""
    system = rubric_text().replace("{language}", language_name)
    user = USER_TEMPLATE.format(
        question=question, first=first or "(empty answer)", second=second or "(empty answer)",
        language=language_name,
    )
    return TeacherRequest.chat(
        [{"role": "system", "content": system}, {"role": "user", "content": user}],
        temperature=temperature, max_tokens=max_tokens,
    )


def parse_verdict(text: str) -> str | None:
    """``"1"``, ``"2"`` or ``"tie"`` from a judge's reply (its last ``[[...]]`` or
    ``Verdict: ...``), or None when it gives none."""
    found = _VERDICT_BRACKETS.findall(text or "")
    if not found:
        found = _VERDICT_LINE.findall(text or "")
    return found[-1].lower() if found else None


def _points_for_a(verdict: str, a_first: bool) -> int:
    if verdict == TIE:
        return 0
    a_label = FIRST if a_first else SECOND
    return 1 if verdict == a_label else -1


def combine_verdicts(a_first: str | None, b_first: str | None) -> str | None:
    """The pair's outcome for model A from the verdict with A shown first and the verdict with
    B shown first: ``"win"``, ``"tie"``, ``"loss"``, or None when either did not parse."""
    if a_first is None or b_first is None:
        return None
    total = _points_for_a(a_first, True) + _points_for_a(b_first, False)
    return "win" if total > 0 else "loss" if total < 0 else "tie"


def position_bias(pairs: Sequence[tuple[str | None, str | None]]) -> dict[str, int]:
    """How much the judge followed positions, from (verdict A first, verdict B first) pairs:
    ``consistent`` pairs (both orders name the same model, or both tie) of ``pairs`` with both
    verdicts parsed, and ``first_chosen`` verdicts picking the first answer of ``decisive``
    (non-tie) verdicts. An unbiased judge picks the first position about half the time."""
    both = [(a, b) for a, b in pairs if a is not None and b is not None]
    consistent = sum(1 for a, b in both if _points_for_a(a, True) == _points_for_a(b, False))
    verdicts = [v for pair in pairs for v in pair if v is not None and v != TIE]
    return {"consistent": consistent, "pairs": len(both),
            "first_chosen": sum(1 for v in verdicts if v == FIRST), "decisive": len(verdicts)}


@dataclass
class PairJudgement:
    """Both judgements of one prompt's pair of answers."""

    id: str
    prompt: str
    answer_a: str
    answer_b: str
    verdict_a_first: str | None
    verdict_b_first: str | None
    outcome: str | None
    replies: list[str] = field(default_factory=list)  # judge answers: A first, B first

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "prompt": self.prompt, "answer_a": self.answer_a,
            "answer_b": self.answer_b, "verdict_a_first": self.verdict_a_first,
            "verdict_b_first": self.verdict_b_first, "outcome": self.outcome,
            "judge_replies": list(self.replies),
        }


def judge_pairs(
    teacher: Teacher,
    items: Sequence[PromptItem],
    answers_a: Sequence[str],
    answers_b: Sequence[str],
    language_name: str,
    temperature: float = 0.0,
    max_tokens: int | None = 2048,
    progress: Callable[[int], None] | None = None,
) -> list[PairJudgement]:
    """Ask the judge about every pair in both orders (one batch of ``2 × len(items)``
    requests, streamed) and combine the verdicts."""
    from kakugo_core.teachers import iter_complete

    if not len(items) == len(answers_a) == len(answers_b):
        raise ValueError("items, answers_a and answers_b must have the same length")
    requests: list[TeacherRequest] = []
    for item, a, b in zip(items, answers_a, answers_b, strict=True):
        requests.append(judge_request(item.text, a, b, language_name, temperature, max_tokens))
        requests.append(judge_request(item.text, b, a, language_name, temperature, max_tokens))
    replies: list[TeacherReply | None] = [None] * len(requests)
    for index, reply in iter_complete(teacher, requests):
        replies[index] = reply
        if progress is not None:
            progress(1)
    judgements = []
    for k, (item, a, b) in enumerate(zip(items, answers_a, answers_b, strict=True)):
        first_reply, second_reply = replies[2 * k], replies[2 * k + 1]
        texts = [r.content if r is not None else "" for r in (first_reply, second_reply)]
        v_a_first, v_b_first = parse_verdict(texts[0]), parse_verdict(texts[1])
        judgements.append(PairJudgement(
            item.id, item.text, a, b, v_a_first, v_b_first,
            combine_verdicts(v_a_first, v_b_first), texts,
        ))
    return judgements


# -- statistics -------------------------------------------------------------------------------
def preference_scores(outcomes: Sequence[str | None]) -> list[Score]:
    """``win_rate``, ``tie_rate`` and ``loss_rate`` over the decided outcomes (n = their
    number, stderr from the Wilson interval), plus ``unparsed`` (how many were None)."""
    decided = [o for o in outcomes if o is not None]
    unknown = [o for o in decided if o not in OUTCOMES]
    if unknown:
        raise ValueError(f"unknown outcome {unknown[0]!r}; expected one of {OUTCOMES}")
    n = len(decided)
    scores = []
    for outcome in OUTCOMES:
        k = decided.count(outcome)
        scores.append(Score(f"{outcome}_rate", k / n if n else 0.0, wilson_stderr(k, n), n))
    scores.append(Score("unparsed", float(len(outcomes) - n), None, len(outcomes)))
    return scores
