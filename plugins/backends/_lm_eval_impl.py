"""lm-eval integration (heavy: imports lm_eval): a backend that sends Kakugo's requests through
lm-eval's ``HFLM`` (the exporter of Kakugo tasks to lm-eval is :mod:`kakugo_core.lm_eval_tasks`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kakugo_core.errors import KakugoError
from kakugo_core.interfaces import (
    Backend,
    GenerationRequest,
    LoglikelihoodRequest,
    LoglikelihoodResult,
)


class LMEvalBackend(Backend):
    """Scores through ``lm_eval.models.huggingface.HFLM`` (lm-eval 0.4.x)."""

    name = "lm-eval"

    def __init__(
        self,
        model: str,
        *,
        revision: str | None = None,
        device: str | None = None,
        dtype: str | None = "auto",
        batch_size: int = 16,
        max_length: int | None = None,
        add_bos_token: bool | None = None,
        progress: Any = None,
        **hflm_options: Any,
    ) -> None:
        import torch
        from lm_eval.models.huggingface import HFLM

        from plugins.backends._hf_backend import local_revision

        for name in ("lm-eval", "lm_eval"):
            logging.getLogger(name).setLevel(logging.WARNING)
        if device in (None, "", "auto"):
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if dtype in (None, "", "auto"):
            dtype = "bfloat16" if str(device).startswith("cuda") else "float32"
        try:
            self.lm = HFLM(pretrained=model, revision=revision or "main", device=device,
                           dtype=dtype, batch_size=batch_size, max_length=max_length,
                           add_bos_token=add_bos_token, **hflm_options)
        except OSError as exc:
            raise KakugoError(f"lm-eval cannot load model {model!r}: "
                              f"{str(exc).splitlines()[0]}") from None
        self.model_id = str(model)
        folder = Path(model).expanduser()
        self.revision = local_revision(folder) if folder.is_dir() else (
            revision or getattr(self.lm.model.config, "_commit_hash", None) or "")

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        from lm_eval.api.instance import Instance

        instances = [Instance("loglikelihood", {}, (r.context, r.continuation), i)
                     for i, r in enumerate(requests)]
        scored = self.lm.loglikelihood(instances, disable_tqdm=True)
        out = []
        for request, (logprob, greedy) in zip(requests, scored, strict=True):
            n = len(self.lm._encode_pair(request.context, request.continuation)[1]) \
                if request.context else len(self.lm.tok_encode(request.continuation))
            out.append(LoglikelihoodResult(float(logprob), bool(greedy), n))
        return out

    def generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        from lm_eval.api.instance import Instance

        instances = [
            Instance("generate_until", {}, (r.prompt, {
                "until": list(r.stop), "max_gen_toks": r.max_new_tokens, "do_sample": False}), i)
            for i, r in enumerate(requests)
        ]
        return [str(t) for t in self.lm.generate_until(instances, disable_tqdm=True)]

    def apply_chat_template(self, prompt: str) -> str:
        if not getattr(self.lm.tokenizer, "chat_template", None):
            return prompt
        return str(self.lm.apply_chat_template([{"role": "user", "content": prompt}]))

    def close(self) -> None:
        del self.lm
