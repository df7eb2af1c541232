"""The ``scenario`` generator: broad scenarios → detailed scenarios → prompts in the language.

Kakugo's defaults: 30 general and 30 language-specific broad scenarios, 30 detailed scenarios
each, 5 prompts per detailed scenario (``[generate.scenario]``).
Row ids: ``scenario:<broad>:<detailed>:<n>`` (broad ``g0``…, ``l0``…).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kakugo_core import hookimpl
from kakugo_core.interfaces import GenerationContext, Generator
from kakugo_core.toolkit.generators import extract_string_list
from plugins.generators._gen_common import (
    ask_parsed,
    done_prefixes,
    prompt_row,
    reject,
    template_request,
    templates,
)


class ScenarioGenerator(Generator):
    """Prompts a user in a concrete situation would send, written in the language."""

    name = "scenario"
    output = "prompts"

    def generate(self, context: GenerationContext) -> Iterator[dict[str, Any]]:
        opts = context.options
        tpl = templates(context, "scenario")
        done = done_prefixes(context.done_ids)
        n_detailed = int(opts["detailed_per_scenario"])
        n_prompts = int(opts["prompts_per_scenario"])

        # 1. broad scenarios: general ones and ones specific to the language's speakers
        asks = [
            ((kind, n), template_request(context, tpl[f"{kind}_scenarios"], n=n))
            for kind, n in (
                ("general", int(opts["general_scenarios"])),
                ("language", int(opts["language_scenarios"])),
            )
            if n > 0 and f"scenario:{kind}:broad" not in context.done_ids
        ]
        broad: list[tuple[str, str]] = []
        for (kind, n), parsed in ask_parsed(context, asks, extract_string_list):
            if isinstance(parsed, Exception):
                yield reject(f"scenario:{kind}:broad", parsed.reason, str(parsed))
                continue
            broad += [(f"{kind[0]}{i}", s) for i, s in enumerate(parsed[:n])]

        # 2. detailed scenarios per broad one
        asks2 = [
            ((key, scenario), template_request(
                context, tpl["detailed_scenarios"], scenario=scenario, n=n_detailed
            ))
            for key, scenario in broad
            if f"scenario:{key}:detailed" not in context.done_ids
        ]
        detailed: list[tuple[str, str, str]] = []
        for (key, scenario), parsed in ask_parsed(context, asks2, extract_string_list):
            if isinstance(parsed, Exception):
                yield reject(f"scenario:{key}:detailed", parsed.reason, str(parsed))
                continue
            detailed += [(f"{key}:{i}", scenario, d) for i, d in enumerate(parsed[:n_detailed])]

        # 3. prompts per detailed scenario
        asks3 = [
            ((key, scenario, detail), template_request(
                context, tpl["prompts"], scenario=detail, n=n_prompts
            ))
            for key, scenario, detail in detailed
            if f"scenario:{key}" not in done
        ]
        for (key, scenario, detail), parsed in ask_parsed(context, asks3, extract_string_list):
            if isinstance(parsed, Exception):
                yield reject(f"scenario:{key}:prompts", parsed.reason, str(parsed))
                continue
            for i, prompt in enumerate(parsed[:n_prompts]):
                yield prompt_row(
                    f"scenario:{key}:{i}", "scenario", prompt, scenario=detail,
                    broad_scenario=scenario,
                )


@hookimpl
def register_generators(register: Any) -> None:
    register("scenario", ScenarioGenerator, aliases=("scenarios",))
