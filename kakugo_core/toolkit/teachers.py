"""Helpers for teacher plugins: the streaming base class, the errors the pipeline understands,
reasoning extraction, and building (cached) teachers from the configuration."""

from __future__ import annotations

from kakugo_core.reasoning import reasoning_from_message, split_reasoning
from kakugo_core.teacher_cache import CachedTeacher
from kakugo_core.teachers import (
    StreamingTeacher,
    TeacherError,
    TeacherRequestError,
    TeacherUnavailableError,
    cache_file_for,
    make_teacher,
)

__all__ = [
    "CachedTeacher", "StreamingTeacher", "TeacherError", "TeacherRequestError",
    "TeacherUnavailableError", "cache_file_for", "make_teacher", "reasoning_from_message",
    "split_reasoning",
]
