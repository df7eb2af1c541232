"""The ``translate`` generator: English instruction conversations translated whole.

Source: ``[generate.translate].source`` — a Hub dataset streamed with ``datasets``
(default ``BAAI/Infinity-Instruct``, subset ``7M_core``; shuffled with the run seed through a
streaming buffer) or a local JSON/JSONL file in Infinity-Instruct's schema (sampled exactly with
the run seed). Only English rows (``langdetect`` "en" when the field is present) with plain
user/assistant turns, no ``<image>``/``<video>``/``<audio>`` and at most ``max_input_tokens``
approximate tokens are used; ``samples`` of them are translated, one conversation per request.

A translation is kept only when it parses as a JSON list of turns, its roles alternate starting
with the user, it has as many turns as the original, every turn's token ratio
(translated / original) lies within [``min_token_ratio``, ``max_token_ratio``], and it holds no
replacement characters or lone surrogates and no media tags. Each failure is a reject counted by
reason. Row ids: ``translate:<source id>``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from kakugo_core import hookimpl
from kakugo_core.interfaces import GenerationContext, Generator
from kakugo_core.toolkit.generators import JSONExtractionError, extract_json
from plugins.generators._gen_common import (
    ask_parsed,
    count_tokens,
    fill,
    reject,
    stable_random,
    templates,
    user_request,
)

MEDIA_TAG = re.compile(r"<\s*/?\s*(image|video|audio)\s*/?\s*>", re.IGNORECASE)
_BROKEN_UTF = re.compile("[\ufffd\ud800-\udfff]")
SHUFFLE_BUFFER = 50_000


class TranslationRejected(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


def eligible(row: dict[str, Any], max_input_tokens: int) -> list[dict[str, str]] | None:
    """The row's conversation when it may be translated, else None."""
    from plugins.generators._gen_sources import conversation

    lang = row.get("langdetect")
    if lang is not None and str(lang).lower() not in ("en", "eng"):
        return None
    messages = conversation(row)
    if messages is None or messages[0]["role"] != "user":
        return None
    if any(MEDIA_TAG.search(m["content"]) for m in messages):
        return None
    size = sum(count_tokens(m["content"]) for m in messages)
    if max_input_tokens > 0 and size > max_input_tokens:
        return None
    return messages


def check_translation(
    answer: str, source: list[dict[str, str]], min_ratio: float, max_ratio: float
) -> list[dict[str, str]]:
    """The translated turns, or :class:`TranslationRejected` / JSONExtractionError naming why."""
    value = extract_json(answer)
    if isinstance(value, dict):
        lists = [v for v in value.values() if isinstance(v, list)]
        value = lists[0] if len(lists) == 1 else None
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise JSONExtractionError("wrong_shape", "expected a JSON list of turns")
    turns = []
    for turn in value:
        role = str(turn.get("role", turn.get("from", ""))).lower()
        role = {"human": "user", "gpt": "assistant"}.get(role, role)
        content = turn.get("content", turn.get("value"))
        if not isinstance(content, str) or not content.strip():
            raise TranslationRejected("empty_turn")
        turns.append({"role": role, "content": content.strip()})
    if len(turns) != len(source):
        raise TranslationRejected("turn_count", f"{len(turns)} turns for {len(source)}")
    for i, turn in enumerate(turns):
        if turn["role"] != ("user" if i % 2 == 0 else "assistant"):
            raise TranslationRejected("roles", f"turn {i} is {turn['role']!r}")
    for turn, original in zip(turns, source, strict=True):
        if _BROKEN_UTF.search(turn["content"]):
            raise TranslationRejected("utf_error")
        if MEDIA_TAG.search(turn["content"]):
            raise TranslationRejected("media_tag")
        ratio = count_tokens(turn["content"]) / max(1, count_tokens(original["content"]))
        if not min_ratio <= ratio <= max_ratio:
            raise TranslationRejected("token_ratio", f"ratio {ratio:.2f}")
    return turns


def sample_conversations(
    context: GenerationContext,
) -> list[tuple[str, list[dict[str, str]]]]:
    """``(source id, messages)`` of the sampled English conversations, in a seeded order."""
    from plugins.generators._gen_sources import _is_local, instruction_rows

    opts = context.options
    source, samples = str(opts["source"]), int(opts["samples"])
    max_tokens = int(opts["max_input_tokens"])
    rows = instruction_rows(source, str(opts["subset"]))
    if not _is_local(source):
        return sample_stream(rows, context.seed, samples, max_tokens)
    pool = [
        (str(row.get("id", index)), messages)
        for index, row in enumerate(rows)
        if (messages := eligible(row, max_tokens)) is not None
    ]
    rng = stable_random(context.seed, "translate")
    return rng.sample(pool, min(samples, len(pool)))


def sample_stream(
    rows: Iterable[dict[str, Any]], seed: int, samples: int, max_tokens: int
) -> list[tuple[str, list[dict[str, str]]]]:
    """The first ``samples`` eligible conversations of a stream too large to hold, shuffled
    with the seed through a buffer when the stream can shuffle (a ``datasets`` dataset)."""
    stream: Any = rows
    if hasattr(stream, "shuffle"):
        stream = stream.shuffle(seed=seed, buffer_size=SHUFFLE_BUFFER)
    picked: list[tuple[str, list[dict[str, str]]]] = []
    for index, row in enumerate(stream):
        messages = eligible(row, max_tokens)
        if messages is not None:
            picked.append((str(row.get("id", index)), messages))
            if len(picked) >= samples:
                break
    return picked


class TranslateGenerator(Generator):
    """Whole conversations of an English instruction set, translated and checked."""

    name = "translate"
    output = "translations"

    def generate(self, context: GenerationContext) -> Iterator[dict[str, Any]]:
        opts = context.options
        tpl = templates(context, "translate")
        min_ratio, max_ratio = float(opts["min_token_ratio"]), float(opts["max_token_ratio"])
        asks = []
        for source_id, messages in sample_conversations(context):
            if f"translate:{source_id}" in context.done_ids:
                continue
            text = fill(
                tpl["prompt"], context, n=len(messages),
                conversation=json.dumps(messages, ensure_ascii=False, indent=1),
            )
            asks.append(((source_id, messages), user_request(context, text)))

        def parse(answer: str) -> Any:
            return answer  # checked below, where the source is known

        for (source_id, messages), answer in ask_parsed(context, asks, parse):
            row_id = f"translate:{source_id}"
            try:
                turns = check_translation(str(answer), messages, min_ratio, max_ratio)
            except (JSONExtractionError, TranslationRejected) as exc:
                yield reject(row_id, exc.reason, str(exc))
                continue
            yield {
                "id": row_id,
                "source_id": source_id,
                "method": "translate",
                "prompt_type": "translated",
                "messages": turns,
                "source_messages": messages,
            }


@hookimpl
def register_generators(register: Any) -> None:
    register("translate", TranslateGenerator, aliases=("translation",))
