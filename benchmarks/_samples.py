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

from kakugo_core.toolkit.data import read_rows

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


def sib200_training_texts(sib_dir: str | Path, codes: list[str], split: str = "train") -> list[str]:
    """SIB-200 items formatted as the sib200 benchmark's prompt plus the gold label."""
    from benchmarks.sib200 import TEMPLATE

    texts = []
    for code in codes:
        for row in read_rows(Path(sib_dir) / code / f"{split}.tsv", ("index_id", "category",
                                                                      "text")):
            texts.append(TEMPLATE.format(text=row["text"].strip()) + f" {row['category']}")
    return texts


def train_tiny_model(
    model_dir: str | Path, out_dir: str | Path, texts: list[str], steps: int = 60,
    batch_size: int = 16, lr: float = 3e-3, seed: int = 0,
) -> Path:
    """A few steps of plain causal-LM training of a (tiny) model on ``texts``, saved to
    ``out_dir``: enough for predictions that depend on the input, so parity checks and speed
    comparisons are not comparing a constant answer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = Path(out_dir)
    stamp = out / ".kakugo-trained"
    key = f"{model_dir}:{len(texts)}:{steps}:{batch_size}:{lr}:{seed}"
    if stamp.exists() and stamp.read_text() == key:
        return out
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    rng = random.Random(seed)
    for _ in range(steps):
        batch = tokenizer(rng.sample(texts, min(batch_size, len(texts))), return_tensors="pt",
                          padding=True, truncation=True, max_length=128)
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    stamp.write_text(key)
    return out
