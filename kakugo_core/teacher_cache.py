"""A content-addressed, append-only cache in front of any teacher.

Each reply is one JSON line keyed by the sha256 of (teacher name, model, sampling parameters,
messages, and the teacher's own ``cache_params``), appended, flushed and fsync'd as soon as it
arrives (replies that arrive together share one write and one fsync), so a killed run
loses only the calls in flight and a rerun never pays twice. A line that
does not parse (e.g. the half-written last line of a killed run) is skipped with one warning.
Replies served from the cache carry ``cached=True`` and ``cost=0``; their original cost is
counted in :attr:`CachedTeacher.saved_cost`. Identical requests in one batch are asked once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

from kakugo_core.errors import KakugoError
from kakugo_core.interfaces import Teacher, TeacherReply, TeacherRequest
from kakugo_core.teachers import iter_complete_groups

log = logging.getLogger("kakugo")

__all__ = ["CachedTeacher", "paid_usage", "request_key"]

CACHE_FORMAT = 1


def request_key(teacher: Teacher, request: TeacherRequest) -> str:
    """The sha256 (hex) that identifies ``request`` to ``teacher``."""
    params = getattr(teacher, "cache_params", None)
    payload = {
        "teacher": teacher.name,
        "model": teacher.model,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": request.max_tokens,
        "extra": [[k, v] for k, v in request.extra],
        "teacher_params": params if isinstance(params, dict) else {},
        "messages": [[role, content] for role, content in request.messages],
    }
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _reply_from_record(record: dict[str, Any]) -> TeacherReply:
    return TeacherReply(
        content=str(record["content"]),
        reasoning=str(record.get("reasoning", "")),
        prompt_tokens=int(record.get("prompt_tokens", 0)),
        completion_tokens=int(record.get("completion_tokens", 0)),
        cost=float(record.get("cost", 0.0)),
        finish_reason=str(record.get("finish_reason", "")),
    )


def _read_entries(path: Path) -> tuple[dict[str, TeacherReply], list[int]]:
    """The replies a cache file holds by key (the first record of a key wins) and the numbers
    of its lines that do not parse."""
    entries: dict[str, TeacherReply] = {}
    bad_lines: list[int] = []
    if not path.is_file():
        return entries, bad_lines
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
                entries.setdefault(str(record["key"]), _reply_from_record(record))
            except (ValueError, KeyError, TypeError):
                bad_lines.append(number)
    return entries, bad_lines


def paid_usage(cache_file: Path | str) -> dict[str, float]:
    """What the calls recorded in ``cache_file`` cost when they were first asked: ``calls``,
    ``prompt_tokens``, ``completion_tokens`` and ``cost`` (each key counted once; unreadable
    lines skipped). A cache is only ever appended to, so this is everything paid through it,
    whichever run paid it; a missing file has cost nothing."""
    replies = _read_entries(Path(cache_file))[0].values()
    return {"calls": len(replies),
            "prompt_tokens": sum(r.prompt_tokens for r in replies),
            "completion_tokens": sum(r.completion_tokens for r in replies),
            "cost": sum((r.cost for r in replies), 0.0)}


class CachedTeacher(Teacher):
    """Wraps ``inner``; itself a Teacher with ``complete`` and ``complete_iter``.

    Running totals for progress bars: ``requests`` (asked of this wrapper), ``calls`` (sent to
    the inner teacher), ``hits`` (answered from the cache, duplicates in a batch included),
    ``prompt_tokens``/``completion_tokens``/``cost`` (of new calls only) and ``saved_cost``
    (what the hits cost when first asked)."""

    def __init__(self, inner: Teacher, cache_file: Path | str) -> None:
        self.inner = inner
        self.name = inner.name
        self.model = inner.model
        self.cache_file = Path(cache_file)
        self.requests = 0
        self.calls = 0
        self.hits = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost = 0.0
        self.saved_cost = 0.0
        self.skipped_lines = 0
        self._lock = threading.Lock()
        self._load()  # sets _entries

    # -- the file ----------------------------------------------------------------------------
    def _load(self) -> None:
        path = self.cache_file
        if path.is_dir():
            raise KakugoError(f"teacher cache {path} is a folder; give a file path")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._entries, bad_lines = _read_entries(path)
        if bad_lines:
            self.skipped_lines = len(bad_lines)
            shown = ", ".join(map(str, bad_lines[:5])) + (", ..." if len(bad_lines) > 5 else "")
            log.warning(
                "teacher cache %s: skipped %d unreadable line(s) (line %s); those requests will "
                "be asked again", path, len(bad_lines), shown,
            )
        # append mode; a last line cut short by a kill gets its newline so the next record
        # starts on a line of its own
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        size = os.fstat(self._fd).st_size
        if size:
            with path.open("rb") as handle:
                handle.seek(size - 1)
                if handle.read(1) != b"\n":
                    self._write(b"\n")

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)

    def _record(self, key: str, reply: TeacherReply) -> bytes:
        record = {
            "v": CACHE_FORMAT,
            "key": key,
            "teacher": self.inner.name,
            "model": self.inner.model,
            "content": reply.content,
            "reasoning": reply.reasoning,
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "cost": reply.cost,
            "finish_reason": reply.finish_reason,
            "time": round(time.time(), 3),
        }
        return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")

    def _append(self, entries: list[tuple[str, TeacherReply]]) -> None:
        """Write replies as lines with one write and one fsync (a group commit)."""
        data = b"".join(self._record(key, reply) for key, reply in entries)
        with self._lock:
            self._write(data)
            for key, reply in entries:
                self._entries[key] = reply

    def summary(self) -> str:
        """One line for a progress bar: new calls, cache hits, tokens and cost."""
        return (
            f"{self.calls} asked, {self.hits} cached, "
            f"{self.prompt_tokens + self.completion_tokens:,} tokens, ${self.cost:.4f}"
            f" (saved ${self.saved_cost:.4f})"
        )

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, request: object) -> bool:
        return isinstance(request, TeacherRequest) and self.key(request) in self._entries

    def key(self, request: TeacherRequest) -> str:
        """The cache key of ``request`` for the wrapped teacher."""
        return request_key(self.inner, request)

    # -- the Teacher interface ---------------------------------------------------------------
    def _hit(self, reply: TeacherReply) -> TeacherReply:
        self.hits += 1
        self.saved_cost += reply.cost
        return replace(reply, cost=0.0, cached=True)

    def complete_iter(
        self, requests: Sequence[TeacherRequest]
    ) -> Iterator[tuple[int, TeacherReply]]:
        """Yield ``(index, reply)``: cached replies first, then new ones as they arrive (each
        written to the cache before it is yielded)."""
        requests = list(requests)
        self.requests += len(requests)
        keys = [self.key(r) for r in requests]
        waiting: dict[str, list[int]] = {}
        for index, key in enumerate(keys):
            cached = self._entries.get(key)
            if cached is not None:
                yield index, self._hit(cached)
            else:
                waiting.setdefault(key, []).append(index)
        if not waiting:
            return
        todo_keys = list(waiting)
        todo = [requests[waiting[k][0]] for k in todo_keys]
        # closing: a caller that stops early stops the calls in flight at once
        with closing(iter_complete_groups(self.inner, todo)) as groups:
            for group in groups:
                fresh = [(todo_keys[i], replace(reply, cached=False)) for i, reply in group]
                self._append(fresh)  # durable before anyone sees it
                for key, reply in fresh:
                    self.calls += 1
                    self.prompt_tokens += reply.prompt_tokens
                    self.completion_tokens += reply.completion_tokens
                    self.cost += reply.cost
                    first, *duplicates = waiting[key]
                    yield first, reply
                    for index in duplicates:
                        yield index, self._hit(reply)

    def complete(self, requests: Sequence[TeacherRequest]) -> list[TeacherReply]:
        replies: list[TeacherReply | None] = [None] * len(requests)
        for index, reply in self.complete_iter(requests):
            replies[index] = reply
        return replies  # type: ignore[return-value]

    def close(self) -> None:
        """Close the cache file and the wrapped teacher."""
        fd, self._fd = getattr(self, "_fd", -1), -1
        if fd >= 0:
            os.close(fd)
        self.inner.close()

    def __enter__(self) -> CachedTeacher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CachedTeacher({self.inner!r}, cache_file={str(self.cache_file)!r})"
