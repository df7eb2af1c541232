"""lm-eval integration (heavy: imports lm_eval): a backend that sends Kakugo's requests through
lm-eval's ``HFLM``, and an exporter that turns a Kakugo benchmark into an lm-eval task.

Exported tasks hold fully formatted prompts (few-shot examples included), so lm-eval scores
exactly the prompts Kakugo does: ``num_fewshot`` stays 0 and the choice continuations carry
their own leading space (``target_delimiter: ""``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kakugo_core.errors import KakugoError
from kakugo_core.interfaces import (
    Backend,
    GenerationRequest,
    LoglikelihoodRequest,
    LoglikelihoodResult,
)
from kakugo_core.languages import Language


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


def export_task(
    benchmark: Any, language: Language, out_dir: str | Path, options: Mapping[str, Any]
) -> Path:
    """Write ``<out_dir>/<task>.yaml`` and ``<task>.jsonl`` so that
    ``lm_eval --model hf --model_args pretrained=M --include_path OUT --tasks <task>``
    scores the same prompts as ``kakugo bench``; return the YAML's path.

    Multiple-choice benchmarks export ``output_type: multiple_choice`` (metric ``acc``);
    flores exports ``generate_until`` with lm-eval's ``chrf`` metric per direction."""
    task = benchmark.prepare(language, options)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = f"kakugo_{task.benchmark}_{task.language}_{task.n_shot}shot"
    docs = out / f"{name}.jsonl"
    if benchmark.name == "flores":
        rows = [{"id": it["id"], "direction": it["direction"], "query": it["prompt"],
                 "reference": it["reference"]} for it in task.items]
        body = (
            "output_type: generate_until\n"
            'doc_to_text: "{{query}}"\n'
            'doc_to_target: "{{reference}}"\n'
            "generation_kwargs:\n  until: [\"\\n\"]\n  do_sample: false\n"
            "metric_list:\n  - metric: chrf\n    aggregation: chrf\n    higher_is_better: true\n"
            "filter_list:\n  - name: strip\n    filter:\n      - function: regex\n"
            "        regex_pattern: \"^\\\\s*(.*?)\\\\s*$\"\n"
        )
    else:
        rows = [{"id": it.item_id, "query": it.context, "choices": it.choices, "gold": it.gold}
                for it in task.items]
        body = (
            "output_type: multiple_choice\n"
            'doc_to_text: "{{query}}"\n'
            'doc_to_choice: "{{choices}}"\n'
            'doc_to_target: "{{gold}}"\n'
            'target_delimiter: ""\n'
            "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n"
        )
    tmp = docs.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    tmp.replace(docs)
    yaml = (
        f"# Exported by Kakugo: {task.benchmark} {task.language}, {task.n_shot}-shot, "
        f"prompt hash {task.prompt_hash}, data {task.source}\n"
        f"task: {name}\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {json.dumps(str(docs.resolve()))}\n"
        "test_split: test\n"
        "num_fewshot: 0\n"
        + body
        + "metadata:\n  version: 1.0\n"
    )
    path = out / f"{name}.yaml"
    path.with_suffix(".yaml.tmp").write_text(yaml, "utf-8")
    path.with_suffix(".yaml.tmp").replace(path)
    return path
