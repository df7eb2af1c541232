"""Robust JSON extraction from teacher answers.

Teachers wrap JSON in prose, in ```json fences, in ``<think>`` blocks, and leave trailing commas.
:func:`extract_json` tries, in order: every fenced block, the whole answer, then every balanced
``{...}`` / ``[...]`` span found in the text; each candidate is tried as is and with trailing
commas and smart quotes repaired. Failures raise :class:`JSONExtractionError`, whose ``reason`` is
a short slug (``empty``, ``no_json``, ``invalid_json``, ``wrong_shape``) that the generation
runner counts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
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


def _balanced_spans(text: str) -> Iterator[str]:
    """Every maximal ``{...}`` or ``[...]`` span, respecting strings and escapes."""
    i = 0
    n = len(text)
    while i < n:
        if text[i] not in "{[":
            i += 1
            continue
        stack: list[str] = []
        in_string = False
        escaped = False
        end = -1
        for j in range(i, n):
            ch = text[j]
            if in_string:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == '"':
                    in_string = False
                continue
            if ch == '"':
                in_string = True
            elif ch in "{[":
                stack.append("}" if ch == "{" else "]")
            elif ch in "}]":
                if not stack or stack.pop() != ch:
                    break
                if not stack:
                    end = j
                    break
        if end >= 0:
            yield text[i : end + 1]
            i = end + 1
        else:
            i += 1


def _candidates(text: str) -> Iterator[str]:
    without_think = _THINK.sub("", text)
    for block in _FENCE.findall(without_think):
        yield block.strip()
    yield without_think.strip()
    # an unclosed fence: everything after the opening marker
    opened = re.search(r"```[ \t]*(?:json5?|JSON)?[ \t]*\n", without_think)
    if opened:
        yield without_think[opened.end() :].strip()
    spans = sorted(_balanced_spans(without_think), key=len, reverse=True)
    yield from spans


def _loads(candidate: str) -> Any:
    for attempt in (
        candidate,
        _TRAILING_COMMA.sub(r"\1", candidate),
        _TRAILING_COMMA.sub(r"\1", candidate.translate(_SMART_QUOTES)),
    ):
        try:
            return json.loads(attempt)
        except (json.JSONDecodeError, RecursionError):
            continue
    raise ValueError("not JSON")


def extract_json(text: str | None) -> Any:
    """The first JSON value found in a teacher answer; :class:`JSONExtractionError` otherwise."""
    if text is None or not text.strip():
        raise JSONExtractionError("empty", "the teacher's answer was empty")
    saw_bracket = False
    for candidate in _candidates(text):
        if not candidate:
            continue
        saw_bracket = saw_bracket or any(c in candidate for c in "{[")
        try:
            return _loads(candidate)
        except ValueError:
            continue
    if not saw_bracket:
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
