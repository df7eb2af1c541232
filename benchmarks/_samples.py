"""Belebele-format items built from real FLORES sentences (the SIB-200 TSVs), for offline tests,
fixtures and the speed comparison with lm-eval.

Each passage is ``sentences`` FLORES sentences of one SIB-200 topic. Two simple but real
questions per passage: which of four sentences appears in it (three distractors from other
passages), and which topic it is about (four SIB-200 topics). Questions are in English.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from benchmarks._common import read_rows

TOPIC_QUESTION = "Which topic is the passage about?"
SENTENCE_QUESTION = "Which sentence appears in the passage?"


def belebele_rows(
    sib_dir: str | Path, code: str, passages: int = 6, sentences: int = 3, split: str = "test",
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Rows in Belebele's exact schema, from ``sib_dir/<code>/<split>.tsv``."""
    rows = read_rows(Path(sib_dir) / code / f"{split}.tsv", ("index_id", "category", "text"))
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_topic.setdefault(row["category"], []).append(row)
    rng = random.Random(seed)
    topics = sorted(by_topic)
    out: list[dict[str, Any]] = []
    used: set[str] = set()
    for number in range(passages):
        topic = topics[number % len(topics)]
        pool = [r for r in by_topic[topic] if r["index_id"] not in used]
        if len(pool) < sentences:
            break
        chosen = pool[:sentences]
        used.update(r["index_id"] for r in chosen)
        passage = " ".join(r["text"].strip() for r in chosen)
        link = f"flores:{code}:" + "-".join(r["index_id"] for r in chosen)
        others = [r["text"].strip() for r in rows if r["category"] != topic]
        right = rng.choice(chosen)["text"].strip()
        answers = rng.sample(others, 3) + [right]
        rng.shuffle(answers)
        out.append(_row(link, 1, passage, SENTENCE_QUESTION, answers, answers.index(right), code))
        wrong = rng.sample([t for t in topics if t != topic], 3) + [topic]
        rng.shuffle(wrong)
        out.append(_row(link, 2, passage, TOPIC_QUESTION, wrong, wrong.index(topic), code))
    return out


def _row(link: str, number: int, passage: str, question: str, answers: list[str], gold: int,
         code: str) -> dict[str, Any]:
    return {
        "link": link, "question_number": number, "flores_passage": passage,
        "question": question, "mc_answer1": answers[0], "mc_answer2": answers[1],
        "mc_answer3": answers[2], "mc_answer4": answers[3],
        "correct_answer_num": str(gold + 1), "dialect": code, "ds": "2023-05-03",
    }
