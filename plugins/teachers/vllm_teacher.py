"""Registers the in-process ``vllm`` teacher (the code lives in
``plugins.teachers._vllm_teacher_impl``).

It runs the teacher model itself, batch by batch, with ``vllm.LLM.chat``: no server to start.
To talk to a running ``vllm serve`` instead, use the ``openai`` teacher (alias ``vllm-server``).
"""

from __future__ import annotations

from typing import Any

from kakugo_core import hookimpl


def vllm_teacher(**options: Any) -> Any:
    """Build a ``VllmTeacher`` from ``[teacher]`` options (model, max_tokens, dtype, prices)
    plus vLLM engine options; keys meant for other teachers are ignored."""
    from plugins.teachers._vllm_teacher_impl import VllmTeacher

    return VllmTeacher(**options)


@hookimpl
def register_teachers(register: Any) -> None:
    register("vllm", vllm_teacher, aliases=("vllm-local",))
