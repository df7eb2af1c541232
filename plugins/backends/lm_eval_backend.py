"""Registers the ``lm-eval`` scoring backend: Kakugo's requests through lm-eval's ``HFLM``
(for cross-checks against the reference implementation). Code in
``plugins.backends._lm_eval_impl``."""

from __future__ import annotations

from typing import Any

from kakugo_core import hookimpl


def lm_eval_backend(model: str, **options: Any) -> Any:
    """Load ``model`` with ``lm_eval.models.huggingface.HFLM``; see ``LMEvalBackend``."""
    from plugins.backends._lm_eval_impl import LMEvalBackend

    return LMEvalBackend(model, **options)


@hookimpl
def register_backends(register: Any) -> None:
    register("lm-eval", lm_eval_backend, aliases=("lm_eval", "lmeval", "lm-eval-hf"))
