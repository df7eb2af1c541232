"""The ``responses`` generator: the teacher answers every prompt, its reasoning kept.

Each prompt of ``prompts.jsonl`` is answered once; an improved prompt replaces its original. The
user turn is the prompt's context text (if any), a blank line, then the prompt; the system prompt
is ``[responses].system`` of the prompt templates. Empty answers are rejected as
``empty_answer``, answers the teacher was cut off in (finish reason ``length``: the answer hit
``max_tokens``) as ``truncated``, so no half answer is trained on. Row ids:
``response:<prompt id>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kakugo_core import hookimpl
from kakugo_core.interfaces import GenerationContext, Generator
from kakugo_core.toolkit.generators import ask
from plugins.generators._gen_common import fill, reject, templates, user_message, user_request


def prompts_to_answer(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Prompt rows in file order, each original replaced by its improved version if any."""
    improved = {row["original_id"]: row for row in rows if row.get("prompt_type") == "improved"}
    return [
        improved.get(row["id"], row) for row in rows if row.get("prompt_type") != "improved"
    ]


class ResponsesGenerator(Generator):
    """Answers to the prompts, in the language, with the teacher's reasoning trace."""

    name = "responses"
    output = "responses"

    def generate(self, context: GenerationContext) -> Iterator[dict[str, Any]]:
        system = fill(templates(context, "responses")["system"], context)
        todo = [
            row for row in prompts_to_answer(context.rows)
            if f"response:{row['id']}" not in context.done_ids
        ]
        requests = [user_request(context, user_message(row), system=system) for row in todo]
        for index, reply in ask(context.teacher, requests):
            row = todo[index]
            row_id = f"response:{row['id']}"
            if not reply.content.strip():
                yield reject(row_id, "empty_answer")
                continue
            if reply.finish_reason == "length":
                yield reject(row_id, "truncated", reply.content[-200:])
                continue
            yield {
                "id": row_id,
                "prompt_id": row["id"],
                "method": row["method"],
                "prompt_type": row.get("prompt_type", "original"),
                "topic": row.get("topic", ""),
                "scenario": row.get("scenario", ""),
                "system": system,
                "user": user_message(row),
                "response": reply.content.strip(),
                "reasoning": reply.reasoning.strip(),
            }


@hookimpl
def register_generators(register: Any) -> None:
    register("responses", ResponsesGenerator, aliases=("response", "answers"))
