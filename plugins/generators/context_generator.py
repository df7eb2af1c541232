"""The ``context`` generator: prompts about real texts in the language, with the text prepended.

Texts come from ``[generate.context].source``: a Hub dataset streamed with ``datasets`` (config =
the language's FLORES id, e.g. ``HuggingFaceFW/fineweb-2`` / ``jav_Latn``) or a local file or
folder (see ``plugins.generators._gen_sources``). Each text is cut to its first ``max_text_tokens``
approximate subword tokens (runs of up to four word characters, or a punctuation mark); task
types rotate over the texts (translate, summarise, improve, classify, answer ×4); the teacher
writes ``prompts_asked`` prompts, ``prompts_kept`` of them are kept (a seeded choice), and the
text is stored in the row's ``context`` field to be prepended to the prompt.
Row ids: ``context:<text index>:<n>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

from kakugo_core import hookimpl
from kakugo_core.interfaces import GenerationContext, Generator
from kakugo_core.toolkit.generators import extract_string_list
from plugins.generators._gen_common import (
    ask_parsed,
    done_prefixes,
    prompt_row,
    reject,
    stable_random,
    template_request,
    templates,
    truncate_tokens,
)

TEXTS_PER_BATCH = 512


class ContextGenerator(Generator):
    """Prompts grounded in target-language web text."""

    name = "context"
    output = "prompts"

    def generate(self, context: GenerationContext) -> Iterator[dict[str, Any]]:
        from plugins.generators._gen_sources import corpus_texts

        opts = context.options
        tpl = templates(context, "context")
        task_types: list[str] = list(tpl["task_types"])
        n_asked = int(opts["prompts_asked"])
        n_kept = int(opts["prompts_kept"])
        done = done_prefixes(context.done_ids)
        subset = str(opts.get("subset") or context.language.id)
        texts = enumerate(corpus_texts(str(opts["source"]), subset, int(opts["max_texts"])))
        while True:
            batch = list(islice(texts, TEXTS_PER_BATCH))
            if not batch:
                return
            asks = []
            for index, text in batch:
                if f"context:{index}" in done:
                    continue
                task = task_types[index % len(task_types)]
                text = truncate_tokens(text, int(opts["max_text_tokens"]))
                request = template_request(
                    context, tpl["prompts"], text=text, task=tpl["tasks"][task], n=n_asked
                )
                asks.append(((index, task, text), request))
            for (index, task, text), parsed in ask_parsed(context, asks, extract_string_list):
                if isinstance(parsed, Exception):
                    yield reject(f"context:{index}:prompts", parsed.reason, str(parsed))
                    continue
                choices = parsed[:n_asked]
                kept = stable_random(context.seed, f"context:{index}").sample(
                    choices, min(n_kept, len(choices))
                )
                for i, prompt in enumerate(kept):
                    yield prompt_row(
                        f"context:{index}:{i}", "context", prompt, context_text=text, task=task
                    )


@hookimpl
def register_generators(register: Any) -> None:
    register("context", ContextGenerator)
