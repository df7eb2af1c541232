"""Making the configured teacher, and the streaming form of ``Teacher.complete``.

``make_teacher(config, cache_file)`` builds the plugin named by ``config["teacher"]["plugin"]``
with the other keys of the ``[teacher]`` section as options and, given a cache file, wraps it in
a :class:`~kakugo_core.teacher_cache.CachedTeacher`, so nothing paid for is asked twice.

``iter_complete(teacher, requests)`` yields ``(index, reply)`` as replies arrive, from any
teacher: teachers that stream (a ``complete_iter`` method, e.g. :class:`StreamingTeacher`
subclasses) give each reply as soon as it is ready; others answer the batch at once.
``iter_complete_groups`` yields lists of the replies ready together (for group commits).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from kakugo_core.errors import KakugoError
from kakugo_core.interfaces import Teacher, TeacherReply, TeacherRequest

__all__ = [
    "StreamingTeacher",
    "TeacherError",
    "TeacherRequestError",
    "TeacherUnavailableError",
    "cache_file_for",
    "iter_complete",
    "iter_complete_groups",
    "make_teacher",
]

#: keys of the ``[teacher]`` section that configure the host, not the plugin
HOST_KEYS = ("plugin", "cache_dir")
CACHE_FILE_NAME = "teacher-cache.jsonl"


class TeacherError(KakugoError):
    """A teacher failed in a way the caller must act on."""


class TeacherRequestError(TeacherError):
    """The teacher refused a request (a 4xx other than 429): retrying cannot help."""


class TeacherUnavailableError(TeacherError):
    """The teacher kept failing (timeouts, 5xx, 429, broken replies) after every retry."""


class StreamingTeacher(Teacher):
    """A teacher that yields replies as they finish; ``complete`` collects them in order."""

    @property
    def cache_params(self) -> dict[str, Any]:
        """Teacher-level settings that change answers, mixed into cache keys."""
        return {}

    def complete_iter(
        self, requests: Sequence[TeacherRequest]
    ) -> Iterator[tuple[int, TeacherReply]]:
        """Yield ``(index into requests, reply)`` in completion order."""
        raise NotImplementedError

    def complete_groups(
        self, requests: Sequence[TeacherRequest]
    ) -> Iterator[list[tuple[int, TeacherReply]]]:
        """Lists of ``(index, reply)`` that became ready together (default: one by one)."""
        for item in self.complete_iter(requests):
            yield [item]

    def complete(self, requests: Sequence[TeacherRequest]) -> list[TeacherReply]:
        replies: list[TeacherReply | None] = [None] * len(requests)
        for index, reply in self.complete_iter(requests):
            replies[index] = reply
        missing = [i for i, r in enumerate(replies) if r is None]
        if missing:  # pragma: no cover - a plugin bug, not a user error
            raise RuntimeError(f"{self.name} teacher gave no reply for requests {missing[:5]}")
        return replies  # type: ignore[return-value]


def iter_complete(
    teacher: Teacher, requests: Sequence[TeacherRequest]
) -> Iterator[tuple[int, TeacherReply]]:
    """``(index, reply)`` pairs from any teacher, as soon as it can give them."""
    stream = getattr(teacher, "complete_iter", None)
    if callable(stream):
        yield from stream(requests)
        return
    yield from enumerate(teacher.complete(requests))


def iter_complete_groups(
    teacher: Teacher, requests: Sequence[TeacherRequest]
) -> Generator[list[tuple[int, TeacherReply]], None, None]:
    """Lists of ``(index, reply)`` pairs, each list the replies that were ready together."""
    groups = getattr(teacher, "complete_groups", None)
    if callable(groups):
        with closing(groups(requests)) as stream:
            yield from stream
        return
    for item in iter_complete(teacher, requests):
        yield [item]


def teacher_options(config: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(plugin name, options)`` from a full config (with a ``teacher`` table) or from the
    ``[teacher]`` table itself."""
    section = dict(config.get("teacher", config))
    plugin = section.get("plugin")
    if not plugin:
        raise KakugoError("no teacher plugin configured: set teacher.plugin (e.g. 'openai')")
    options = {k: v for k, v in section.items()
               if k not in HOST_KEYS and not isinstance(v, dict)}  # tables: plugins' settings
    if "teacher" in config:
        from kakugo_core.plugin_settings import settings_for

        options.update(settings_for(config, "teachers", str(plugin)))
    return str(plugin), options


def make_teacher(config: Mapping[str, Any], cache_file: Path | str | None = None) -> Teacher:
    """The configured teacher, wrapped in the content-addressed cache when ``cache_file`` is
    given. Options are the ``[teacher]`` keys (a plugin ignores the ones it does not use)."""
    from kakugo_core.plugins import registry

    plugin, options = teacher_options(config)
    teacher: Teacher = registry("teachers").create(plugin, **options)
    if cache_file is None:
        return teacher
    from kakugo_core.teacher_cache import CachedTeacher

    return CachedTeacher(teacher, Path(cache_file))


def cache_file_for(config: Mapping[str, Any], run_dir: Path | str) -> Path:
    """Where a run keeps its teacher cache: ``teacher.cache_dir`` when set, else
    ``<run_dir>/cache``; the file is ``teacher-cache.jsonl`` in that folder."""
    section = config.get("teacher", config)
    folder = section.get("cache_dir") or ""
    base = Path(folder).expanduser() if folder else Path(run_dir) / "cache"
    return base / CACHE_FILE_NAME
