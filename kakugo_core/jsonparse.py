"""Robust JSON extraction from teacher answers.

Teachers wrap JSON in prose, in ```json fences, in ``<think>`` blocks, and leave trailing commas.
:func:`extract_json` tries, in order: every fenced block, the whole answer, then the longest
``{...}`` / ``[...]`` value embedded in the text; each as written, then with trailing commas and
curly quotes repaired. Failures raise :class:`JSONExtractionError`, whose ``reason`` is
a short slug (``empty``, ``no_json``, ``invalid_json``, ``wrong_shape``) that the generation
runner counts.
"""

from __future__ import annotations

import json
import re
from typing import Any

from kakugo_core.errors import KakugoError

_FENCE = re.compile(r"```[ \t]*(?:json5?|JSON)?[ \t]*\n?(.*?)```", re.DOTALL)
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_SMART_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"'})


class JSONExtractionError(KakugoError):
    """A teacher answer held no usable JSON; ``reason`` names why, for counting."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


_DECODER = json.JSONDecoder()
_OPENER = re.compile(r"[\[{]")


def _repair(text: str) -> str:
    """Trailing commas removed, curly double quotes made straight."""
    return _TRAILING_COMMA.sub(r"\1", text.translate(_SMART_QUOTES))


def _loads(candidate: str) -> Any:
    for attempt in (candidate, _repair(candidate)):
        try:
            return json.loads(attempt)
        except (json.JSONDecodeError, RecursionError):
            continue
    raise ValueError("not JSON")


def _longest_value(text: str) -> tuple[bool, Any]:
    """The longest top-level JSON object or array embedded in ``text``. Each ``{``/``[`` is tried
    with the C decoder (which fails fast), and a found value is skipped over as a whole, so the
    scan stays near-linear even on answers full of stray brackets."""
    best: tuple[int, Any] | None = None
    position = 0
    while True:
        match = _OPENER.search(text, position)
        if match is None:
            break
        try:
            value, end = _DECODER.raw_decode(text, match.start())
        except (json.JSONDecodeError, RecursionError):
            position = match.start() + 1
            continue
        if best is None or end - match.start() > best[0]:
            best = (end - match.start(), value)
        position = end
    return (best is not None), (best[1] if best else None)


def extract_json(text: str | None) -> Any:
    """The JSON value of a teacher answer; :class:`JSONExtractionError` when there is none.

    Tried in order: each fenced block, the whole answer (outside ``<think>``), an unclosed
    fence's rest, then the longest ``{...}``/``[...]`` embedded in the answer — each as written,
    then with trailing commas and curly quotes repaired."""
    if text is None or not text.strip():
        raise JSONExtractionError("empty", "the teacher's answer was empty")
    body = _THINK.sub("", text)
    whole = [block.strip() for block in _FENCE.findall(body)] + [body.strip()]
    opened = re.search(r"```[ \t]*(?:json5?|JSON)?[ \t]*\n", body)
    if opened:
        whole.append(body[opened.end() :].strip())
    for candidate in whole:
        if candidate:
            try:
                return _loads(candidate)
            except ValueError:
                pass
    for variant in (body, _repair(body)):
        found, value = _longest_value(variant)
        if found:
            return value
    if not any(c in body for c in "{[\u201c"):
        raise JSONExtractionError("no_json", "the teacher's answer holds no JSON")
    raise JSONExtractionError("invalid_json", "the teacher's answer holds malformed JSON")


def extract_string_list(text: str | None, key: str | None = None) -> list[str]:
    """A list of non-empty strings: a JSON list, or the list under ``key`` (or under the only
    list-valued key) of a JSON object. Items that are objects contribute their first string."""
    value = extract_json(text)
    if isinstance(value, dict):
        if key is not None and isinstance(value.get(key), list):
            value = value[key]
        else:
            lists = [v for v in value.values() if isinstance(v, list)]
            if len(lists) != 1:
                raise JSONExtractionError(
                    "wrong_shape", f"expected a JSON list{f' under {key!r}' if key else ''}"
                )
            value = lists[0]
    if not isinstance(value, list):
        raise JSONExtractionError("wrong_shape", "expected a JSON list of strings")
    items: list[str] = []
    for item in value:
        if isinstance(item, dict):
            item = next((v for v in item.values() if isinstance(v, str)), None)
        if isinstance(item, str) and item.strip():
            items.append(item.strip())
    if not items:
        raise JSONExtractionError("wrong_shape", "the JSON list holds no strings")
    return items


def extract_string(text: str | None, key: str) -> str:
    """The non-empty string under ``key`` of a JSON object (or a bare JSON string)."""
    value = extract_json(text)
    if isinstance(value, dict):
        value = value.get(key)
    elif isinstance(value, list) and len(value) == 1:
        value = value[0]
        if isinstance(value, dict):
            value = value.get(key)
    if not isinstance(value, str) or not value.strip():
        raise JSONExtractionError("wrong_shape", f"expected a JSON object with a string {key!r}")
    return value.strip()
