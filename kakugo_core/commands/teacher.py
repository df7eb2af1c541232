"""``kakugo teacher``: ask the configured teacher one question, to check it before a long run."""

from __future__ import annotations

import json
import time

import click

from kakugo_core.cli_options import config_options, json_option
from kakugo_core.config import load_config


@click.command("teacher")
@config_options
@click.option("--prompt", default="Say good morning in Javanese, in one short sentence.",
              show_default=True, help="The user message to send.")
@click.option("--system", default="", help="An optional system message.")
@json_option("Print the reply as JSON.")
def teacher_command(
    config_file: str | None, overrides: tuple[str, ...], prompt: str, system: str, as_json: bool
) -> None:
    """Ask the configured teacher one question and show its answer, reasoning, tokens, cost and
    latency: a cheap check of the [teacher] settings (URL, model, API key variable, prices)
    before a long run. The answer is not cached.
    """
    from kakugo_core.interfaces import TeacherRequest
    from kakugo_core.teachers import make_teacher

    config = load_config(config_file, overrides)
    section = config["teacher"]
    teacher = make_teacher(config)
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    request = TeacherRequest.chat(
        messages, temperature=section["temperature"], top_p=section["top_p"]
    )
    started = time.monotonic()
    try:
        (reply,) = teacher.complete([request])
    finally:
        teacher.close()
    seconds = time.monotonic() - started
    result = {
        "plugin": section["plugin"],
        "model": teacher.model,
        "content": reply.content,
        "reasoning": reply.reasoning,
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "cost": reply.cost,
        "seconds": round(seconds, 3),
    }
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    click.echo(f"teacher: {section['plugin']} / {teacher.model}")
    if reply.reasoning:
        shown = reply.reasoning if len(reply.reasoning) <= 500 else reply.reasoning[:500] + "..."
        click.echo(f"reasoning: {shown}")
    click.echo(f"answer: {reply.content}")
    click.echo(
        f"{reply.prompt_tokens} prompt + {reply.completion_tokens} completion tokens, "
        f"${reply.cost:.6f}, {seconds:.2f} s"
    )
