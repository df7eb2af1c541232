"""Built-in teacher ``transformers``: a local Hugging Face model writes the data (offline, slow
but real). The implementation lives in :mod:`plugins.teachers._hf_teacher`, imported on first
use."""

from __future__ import annotations

from typing import Any

from kakugo_core import hookimpl


def transformers_teacher(**options: Any) -> Any:
    """Build a ``TransformersTeacher`` from ``[teacher]`` options (model, device, dtype,
    batch_size, max_tokens)."""
    from plugins.teachers._hf_teacher import TransformersTeacher

    return TransformersTeacher(**options)


@hookimpl
def register_teachers(register: Any) -> None:
    register("transformers", transformers_teacher, aliases=("hf", "local"))
