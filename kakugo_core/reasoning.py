"""Splitting a model's reasoning out of its answer.

Teachers return their reasoning in one of three forms, and every teacher plugin applies the same
rules through :func:`reasoning_from_message` / :func:`split_reasoning`:

1. a separate field of the chat message, ``reasoning_content`` (vLLM, DeepSeek) or ``reasoning``
   (newer vLLM, OpenRouter, Ollama);
2. think tags inside the text: ``<think>…</think>answer``, also with the opening tag missing
   (chat templates that put ``<think>`` into the prompt, so the reply starts inside it);
3. gpt-oss's harmony channels: ``<|channel|>analysis<|message|>…<|end|><|start|>assistant
   <|channel|>final<|message|>answer``, or the same with the special tokens stripped, which reads
   ``analysis…assistantfinalanswer``.

Text in none of these forms is all answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REASONING_FIELDS = ("reasoning_content", "reasoning")

_THINK = re.compile(r"^\s*(?:<think>)?(?P<reasoning>.*?)</think>(?P<answer>.*)$", re.DOTALL)
_OPEN_THINK_ONLY = re.compile(r"^\s*<think>(?P<reasoning>.*)$", re.DOTALL)
# harmony with special tokens: any number of analysis/commentary messages, then the final one
_HARMONY_FINAL = re.compile(
    r"<\|channel\|>\s*final\s*(?:<\|constrain\|>[^<]*)?<\|message\|>(?P<answer>.*)$", re.DOTALL
)
_HARMONY_MESSAGE = re.compile(
    r"<\|channel\|>\s*(?:analysis|commentary)[^<]*<\|message\|>(?P<text>.*?)"
    r"(?=<\|end\|>|<\|start\|>|<\|channel\|>|<\|return\|>|$)",
    re.DOTALL,
)
_HARMONY_TRAILERS = re.compile(r"(?:<\|return\|>|<\|end\|>|<\|call\|>)\s*$")
# harmony with the special tokens decoded away
_HARMONY_PLAIN = re.compile(
    r"^\s*analysis(?P<reasoning>.*?)assistantfinal(?P<answer>.*)$", re.DOTALL
)


def split_reasoning(text: str) -> tuple[str, str]:
    """Split ``text`` into ``(reasoning, answer)``, both stripped; reasoning is "" when the text
    carries no markers."""
    if not text:
        return "", ""
    if "<|channel|>" in text:
        final = _HARMONY_FINAL.search(text)
        head = text[: final.start()] if final else text
        reasoning = "\n\n".join(
            m.group("text").strip() for m in _HARMONY_MESSAGE.finditer(head) if m.group("text")
        )
        answer = _HARMONY_TRAILERS.sub("", final.group("answer")) if final else ""
        return reasoning.strip(), answer.strip()
    plain = _HARMONY_PLAIN.match(text)
    if plain:
        return plain.group("reasoning").strip(), plain.group("answer").strip()
    think = _THINK.match(text)
    if think:
        return think.group("reasoning").strip(), think.group("answer").strip()
    unclosed = _OPEN_THINK_ONLY.match(text)
    if unclosed:  # cut off while still thinking: no answer yet
        return unclosed.group("reasoning").strip(), ""
    return "", text.strip()


def reasoning_from_message(message: Mapping[str, Any]) -> tuple[str, str]:
    """``(reasoning, answer)`` of an OpenAI-style chat message: a reasoning field when there is
    one, and think markers split out of the content either way."""
    field_reasoning = ""
    for name in REASONING_FIELDS:
        value = message.get(name)
        if isinstance(value, str) and value.strip():
            field_reasoning = value.strip()
            break
    content = message.get("content") or ""
    if not isinstance(content, str):  # a list of content parts
        content = "".join(
            part.get("text", "") for part in content if isinstance(part, Mapping)
        )
    inline_reasoning, answer = split_reasoning(content)
    reasoning = "\n\n".join(r for r in (field_reasoning, inline_reasoning) if r)
    return reasoning, answer
