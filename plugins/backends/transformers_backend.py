"""Registers the ``transformers`` scoring backend (the code lives in
``plugins.backends._hf_backend``)."""

from __future__ import annotations

from typing import Any

from kakugo_core import hookimpl


def transformers_backend(model: str, **options: Any) -> Any:
    """Load ``model`` (Hub id or local folder) with transformers; see ``HFBackend``."""
    from plugins.backends._hf_backend import HFBackend

    return HFBackend(model, **options)


@hookimpl
def register_backends(register: Any) -> None:
    register("transformers", transformers_backend, aliases=("hf", "huggingface"))
