"""Helpers for generator plugins: the teacher prompt templates, asking a teacher, and pulling
JSON out of what it answered (tolerant of prose and code fences around it)."""

from __future__ import annotations

from kakugo_core.generation import ask, prompt_templates, render
from kakugo_core.jsonparse import (
    JSONExtractionError,
    extract_json,
    extract_string,
    extract_string_list,
)

__all__ = [
    "JSONExtractionError", "ask", "extract_json", "extract_string", "extract_string_list",
    "prompt_templates", "render",
]
