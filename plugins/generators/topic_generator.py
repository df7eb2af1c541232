"""The ``topic`` generator: seed areas → macro-topics → topics → prompts in the language.

Kakugo's defaults: 8 general and 8 language seeds ("{language} culture", ...), 20 macro-topics
per seed, 10 topics per macro-topic, up to 3 prompts per topic. Seeds come from the
``[topic]`` section of the prompt templates; every count from ``[generate.topic]``.
Row ids: ``topic:<seed>:<macro>:<topic>:<n>`` (seeds ``g0``…, ``l0``…).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kakugo_core import hookimpl
from kakugo_core.errors import ConfigError
from kakugo_core.interfaces import GenerationContext, Generator
from kakugo_core.toolkit.generators import extract_string_list
from plugins.generators._gen_common import (
    ask_parsed,
    done_prefixes,
    fill,
    prompt_row,
    reject,
    template_request,
    templates,
)


def _take(seeds: list[str], n: int, kind: str) -> list[str]:
    if n > len(seeds):
        raise ConfigError(
            f"generate.topic.{kind} = {n}, but the prompt templates list only {len(seeds)} "
            f"{kind.replace('_', ' ')}; add more to [topic].{kind} of your prompts file"
        )
    return seeds[:n]


class TopicGenerator(Generator):
    """Prompts written in the language about topics drawn from general and language seeds."""

    name = "topic"
    output = "prompts"

    def generate(self, context: GenerationContext) -> Iterator[dict[str, Any]]:
        opts = context.options
        tpl = templates(context, "topic")
        general = _take(tpl["general_seeds"], int(opts["general_seeds"]), "general_seeds")
        local = _take(tpl["language_seeds"], int(opts["language_seeds"]), "language_seeds")
        seeds = [(f"g{i}", fill(s, context)) for i, s in enumerate(general)] + [
            (f"l{i}", fill(s, context)) for i, s in enumerate(local)
        ]
        done = done_prefixes(context.done_ids)
        n_macro = int(opts["macro_topics_per_seed"])
        n_topics = int(opts["topics_per_macro"])
        n_prompts = int(opts["prompts_per_topic"])

        # 1. macro-topics per seed
        asks = [
            ((key, seed), template_request(context, tpl["macro_topics"], seed=seed, n=n_macro))
            for key, seed in seeds
            if f"topic:{key}:macros" not in context.done_ids
        ]
        macros: list[tuple[str, str, str]] = []  # (key, seed, macro-topic)
        for (key, seed), parsed in ask_parsed(context, asks, extract_string_list):
            if isinstance(parsed, Exception):
                yield reject(f"topic:{key}:macros", parsed.reason, str(parsed))
                continue
            macros += [(f"{key}:{i}", seed, m) for i, m in enumerate(parsed[:n_macro])]

        # 2. topics per macro-topic
        asks2 = [
            (
                (key, seed, macro),
                template_request(
                    context, tpl["topics"], seed=seed, macro_topic=macro, n=n_topics
                ),
            )
            for key, seed, macro in macros
            if f"topic:{key}:topics" not in context.done_ids
        ]
        topics: list[tuple[str, str, str, str]] = []
        for (key, seed, macro), parsed in ask_parsed(context, asks2, extract_string_list):
            if isinstance(parsed, Exception):
                yield reject(f"topic:{key}:topics", parsed.reason, str(parsed))
                continue
            topics += [(f"{key}:{i}", seed, macro, t) for i, t in enumerate(parsed[:n_topics])]

        # 3. prompts per topic, in the language
        asks3 = [
            (
                (key, seed, macro, topic),
                template_request(
                    context, tpl["prompts"], topic=topic, macro_topic=macro, n=n_prompts
                ),
            )
            for key, seed, macro, topic in topics
            if f"topic:{key}" not in done
        ]
        for (key, seed, macro, topic), parsed in ask_parsed(context, asks3, extract_string_list):
            if isinstance(parsed, Exception):
                yield reject(f"topic:{key}:prompts", parsed.reason, str(parsed))
                continue
            for i, prompt in enumerate(parsed[:n_prompts]):
                yield prompt_row(
                    f"topic:{key}:{i}", "topic", prompt, topic=topic, seed=seed, macro_topic=macro
                )


@hookimpl
def register_generators(register: Any) -> None:
    register("topic", TopicGenerator, aliases=("topics",))
