"""Helpers shared by the built-in generators: JSON asks, rejects, token counts, stable choices.

Cheap to import (standard library and kakugo_core's public API only).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from kakugo_core.interfaces import GenerationContext, TeacherRequest
from kakugo_core.toolkit.generators import JSONExtractionError, ask, prompt_templates, render

T = TypeVar("T")
Meta = TypeVar("Meta")

#: approximate subword tokens: runs of up to four word characters, or one punctuation mark.
#: Close to a BPE count for English and fair across scripts written without spaces.
_TOKEN = re.compile(r"\w{1,4}|[^\w\s]")


def count_tokens(text: str) -> int:
    """Approximate subword token count (see ``_TOKEN``); no tokenizer download needed."""
    return len(_TOKEN.findall(text))


def truncate_tokens(text: str, max_tokens: int) -> str:
    """The first ``max_tokens`` approximate tokens of ``text``, cut at a token's end."""
    if max_tokens <= 0:
        return text
    for count, match in enumerate(_TOKEN.finditer(text), start=1):
        if count == max_tokens:
            return text[: match.end()]
    return text


def reject(row_id: str, reason: str, detail: str = "") -> dict[str, Any]:
    """A rejection record: counted by reason in the summary, never retried on resume."""
    row: dict[str, Any] = {"id": row_id, "reject": reason}
    if detail:
        row["detail"] = detail[:300]
    return row


def stable_random(seed: int, key: str) -> random.Random:
    """A generator of random numbers fixed by the run seed and one row id (resume-stable)."""
    return random.Random(f"{seed}:{key}")


def templates(context: GenerationContext, section: str) -> dict[str, Any]:
    return prompt_templates(section, str(context.options.get("prompts_file", "")))


def user_request(context: GenerationContext, text: str, system: str = "") -> TeacherRequest:
    """One user message (after an optional system prompt), sampled with the ``[teacher]``
    temperature and top_p that the runner passes in the options."""
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": text})
    sampling = {k: float(context.options[k]) for k in ("temperature", "top_p")
                if k in context.options}
    return TeacherRequest.chat(messages, **sampling)


def ask_parsed(
    context: GenerationContext,
    items: Sequence[tuple[Meta, TeacherRequest]],
    parse: Callable[[str], T],
) -> Iterator[tuple[Meta, T | JSONExtractionError]]:
    """Ask the teacher every request (one batch) and parse each answer; a parse failure is
    returned as the :class:`JSONExtractionError`, not raised."""
    requests = [request for _meta, request in items]
    for index, reply in ask(context.teacher, requests):
        meta = items[index][0]
        try:
            yield meta, parse(reply.content)
        except JSONExtractionError as exc:
            yield meta, exc


def done_prefixes(done_ids: Iterable[str]) -> set[str]:
    """Row ids without their last ``:part`` (the unit of work that produced them)."""
    return {row_id.rsplit(":", 1)[0] for row_id in done_ids}


def prompt_row(
    row_id: str, method: str, prompt: str, *, topic: str = "", scenario: str = "",
    context_text: str = "", **extra: Any,
) -> dict[str, Any]:
    """A row of ``prompts.jsonl``: the fields every later stage relies on, plus extras."""
    return {
        "id": row_id,
        "method": method,
        "prompt_type": "original",
        "prompt": prompt,
        "context": context_text,
        "topic": topic,
        "scenario": scenario,
        **extra,
    }


def user_message(row: dict[str, Any]) -> str:
    """The user turn of a prompt row: its context text (if any), a blank line, the prompt."""
    context_text = row.get("context") or ""
    return f"{context_text}\n\n{row['prompt']}" if context_text else str(row["prompt"])


def language_values(context: GenerationContext) -> dict[str, str]:
    return {"language": context.language.name}


def fill(template: str, context: GenerationContext, **values: Any) -> str:
    return render(template, **language_values(context), **values)


def template_request(context: GenerationContext, template: str, **values: Any) -> TeacherRequest:
    """A user request from a prompt template filled with the language and ``values``."""
    return user_request(context, fill(template, context, **values))

