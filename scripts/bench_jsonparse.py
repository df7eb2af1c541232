"""How fast ``kakugo_core.jsonparse.extract_json`` finds JSON in teacher answers.

Competitor: a pure-Python balanced-bracket scan (try every ``{``/``[``, walk to its matching
bracket, then ``json.loads`` the longest span; what jsonparse did before it used the C decoder's
``raw_decode``). Cases: typical answers (bare, fenced, prose around, trailing commas) and
adversarial ones (many stray brackets, deep unclosed nesting). Prints seconds per call and the
ratio competitor / kakugo (above 1: kakugo is faster).

    python scripts/bench_jsonparse.py
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

from kakugo_core.jsonparse import extract_json

_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def _balanced_spans(text: str) -> Iterator[str]:
    i, n = 0, len(text)
    while i < n:
        if text[i] not in "{[":
            i += 1
            continue
        stack: list[str] = []
        in_string = escaped = False
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


def bracket_scan(text: str) -> Any:
    """The competitor."""
    for candidate in [text.strip(), *sorted(_balanced_spans(text), key=len, reverse=True)]:
        for attempt in (candidate, _TRAILING_COMMA.sub(r"\1", candidate)):
            try:
                return json.loads(attempt)
            except json.JSONDecodeError:
                continue
    raise ValueError("no JSON")


def _items(n: int) -> list[str]:
    return [f"pitakon nomer {i} babagan budaya Jawa lan sejarahe?" for i in range(n)]


CASES: dict[str, str] = {
    "bare list": json.dumps(_items(30), ensure_ascii=False),
    "fenced, prose": "Here you go:\n```json\n" + json.dumps(_items(30), indent=2) + "\n```\nDone.",
    "trailing commas": "Sure! " + json.dumps(_items(30)).replace('"]', '",]') + " Hope it helps.",
    "code in strings": "Result: " + json.dumps(
        [{"role": "user", "content": "```python\nprint([1, {2: 3}])\n```"}] * 20) + " end",
    "stray brackets": ("note [1, 2 and {x " * 1500) + json.dumps(_items(5)),
    "deep unclosed": "Answer: " + "[" * 1500 + " and finally " + json.dumps(_items(5)),
}


def _time(fn: Callable[[str], Any], text: str, budget: float = 0.5) -> float:
    runs, start = 0, time.perf_counter()
    while True:
        fn(text)
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed > budget:
            return elapsed / runs


def main() -> None:
    print(f"{'case':<18} {'kakugo s':>10} {'bracket-scan s':>15} {'ratio':>8}")
    for name, text in CASES.items():
        assert extract_json(text) == bracket_scan(text), name
        ours, theirs = _time(extract_json, text), _time(bracket_scan, text)
        print(f"{name:<18} {ours:>10.6f} {theirs:>15.6f} {theirs / ours:>7.1f}x")


if __name__ == "__main__":
    main()
