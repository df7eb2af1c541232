"""Built-in teacher ``openai``: any OpenAI-compatible chat endpoint (vLLM, llama.cpp's server,
Together, OpenAI, ...). The client lives in :mod:`plugins.teachers._openai_client`, imported on
first use so that registering stays cheap."""

from __future__ import annotations

from typing import Any

from kakugo_core import hookimpl


def openai_teacher(**options: Any) -> Any:
    """Build an ``OpenAITeacher`` from ``[teacher]`` options (model, base_url, api_key_env,
    concurrency, max_retries, timeout_s, max_tokens, prices, retry_base_s, retry_max_s)."""
    from plugins.teachers._openai_client import OpenAITeacher

    return OpenAITeacher(**options)


@hookimpl
def register_teachers(register: Any) -> None:
    register("openai", openai_teacher, aliases=("openai-compatible", "vllm-server"))
