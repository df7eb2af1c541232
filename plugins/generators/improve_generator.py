"""The ``improve`` generator: the teacher rewrites a share of the prompts into better ones.

A prompt is chosen with probability ``[generate.improve].fraction`` (default 0.5), decided by the
run seed and the prompt's id, so the choice survives resumes. The improved prompt is written as a
new row ``improved:<original id>`` (``prompt_type`` "improved") that replaces the original in the
``responses`` stage; when the teacher's answer does not parse, the original is kept. For context
prompts only the request is rewritten; the text stays as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kakugo_core import hookimpl
from kakugo_core.interfaces import GenerationContext, Generator
from kakugo_core.toolkit.generators import extract_string
from plugins.generators._gen_common import (
    ask_parsed,
    reject,
    stable_random,
    template_request,
    templates,
)


def chosen_for_improvement(seed: int, row_id: str, fraction: float) -> bool:
    """Whether the prompt with this id is rewritten (stable for a seed)."""
    return stable_random(seed, f"improve:{row_id}").random() < fraction


class ImproveGenerator(Generator):
    """Rewrites a seeded share of the original prompts."""

    name = "improve"
    output = "prompts"

    def generate(self, context: GenerationContext) -> Iterator[dict[str, Any]]:
        fraction = float(context.options["fraction"])
        tpl = templates(context, "improve")
        asks = [
            (row, template_request(context, tpl["prompt"], prompt=row["prompt"]))
            for row in context.rows
            if row.get("prompt_type", "original") == "original"
            and f"improved:{row['id']}" not in context.done_ids
            and chosen_for_improvement(context.seed, row["id"], fraction)
        ]
        for row, parsed in ask_parsed(context, asks, lambda text: extract_string(text, "prompt")):
            if isinstance(parsed, Exception):
                yield reject(f"improved:{row['id']}", parsed.reason, str(parsed))
                continue
            yield {
                **row,
                "id": f"improved:{row['id']}",
                "prompt_type": "improved",
                "prompt": parsed,
                "original_id": row["id"],
                "original_prompt": row["prompt"],
            }


@hookimpl
def register_generators(register: Any) -> None:
    register("improve", ImproveGenerator)
