"""The ``transformers`` teacher: a local Hugging Face model writes the answers (offline, slow).

Prompts go through the model's chat template; requests with the same sampling parameters are
generated together in left-padded batches of ``batch_size``. ``temperature`` 0 means greedy;
otherwise sampling with ``temperature`` and ``top_p``, seeded by the request's ``seed`` extra
when it has one (a seeded request is generated on its own, so the same request always gets the
same answer). Reasoning is split out of the decoded text with the same rules as every other
teacher (:mod:`kakugo_core.reasoning`), then the tokenizer's special tokens are removed.
The model is loaded on the first request, so a fully cached run never loads it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from kakugo_core.errors import ConfigError, KakugoError
from kakugo_core.interfaces import TeacherReply, TeacherRequest
from kakugo_core.toolkit.teachers import StreamingTeacher, split_reasoning

log = logging.getLogger("kakugo")

_DTYPES = ("float32", "float16", "bfloat16")


class TransformersTeacher(StreamingTeacher):
    """A local causal LM with a chat template as the teacher."""

    name = "transformers"

    def __init__(
        self,
        model: str,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 8,
        max_tokens: int | None = 1024,
        **_other_teachers_options: Any,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"teacher.batch_size must be at least 1, got {batch_size}")
        if dtype not in ("auto", *_DTYPES):
            raise ConfigError(f"teacher.dtype {dtype!r} unknown: use auto or one of {_DTYPES}")
        self.model = model
        self.device_option = device
        self.dtype_option = dtype
        self.batch_size = int(batch_size)
        self.max_tokens = int(max_tokens) if max_tokens else None
        self.calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self._model: Any = None
        self._tokenizer: Any = None
        self._device = ""

    def __repr__(self) -> str:
        return f"TransformersTeacher(model={self.model!r}, device={self.device_option!r})"

    @property
    def cache_params(self) -> dict[str, Any]:
        return {"default_max_tokens": self.max_tokens}

    # -- loading -----------------------------------------------------------------------------
    def _load(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from kakugo_core.toolkit.models import check_device, check_model_source

        check_device(self.device_option)
        check_model_source(self.model, "teacher model")
        device = self.device_option
        if device in ("", "auto"):
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if self.dtype_option == "auto":
            dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        else:
            dtype = getattr(torch, self.dtype_option)
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.model)
            model = AutoModelForCausalLM.from_pretrained(self.model, dtype=dtype)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise KakugoError(
                f"cannot load teacher model {self.model!r}: {first}; give a local folder or a "
                f"Hub id that is downloaded (set teacher.model)"
            ) from None
        if not getattr(tokenizer, "chat_template", None):
            raise KakugoError(
                f"teacher model {self.model!r} has no chat template; use an instruction-tuned model"
            )
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        model.to(device)  # type: ignore[arg-type]
        model.eval()
        self._model, self._tokenizer, self._device = model, tokenizer, device

    @property
    def tokenizer(self) -> Any:
        """The teacher's tokenizer (loads the model on first use)."""
        self._load()
        return self._tokenizer

    # -- decoding ----------------------------------------------------------------------------
    def _stop_ids(self) -> set[int]:
        ids: set[int] = set()
        config = self._model.generation_config
        for value in (config.eos_token_id, self._tokenizer.eos_token_id):
            if isinstance(value, int):
                ids.add(value)
            elif value:
                ids.update(int(v) for v in value)
        return ids

    def finish_reason(self, token_ids: Sequence[int], used: int) -> str:
        """``"stop"`` when generation ended on a stop token, ``"length"`` when it ran out."""
        ended = used > 0 and int(token_ids[used - 1]) in self._stop_ids()
        return "stop" if ended else "length"

    def decode_reply(self, token_ids: Sequence[int]) -> tuple[str, str, int]:
        """``(reasoning, answer, completion tokens)`` from generated ids: cut at the first stop
        token, reasoning split out, special tokens removed."""
        self._load()
        stop = self._stop_ids()
        kept: list[int] = []
        used = 0
        for token in token_ids:
            token = int(token)
            used += 1
            if token in stop:
                break
            kept.append(token)
        text = self._tokenizer.decode(kept, skip_special_tokens=False)
        reasoning, answer = split_reasoning(text)
        specials = [t for t in self._tokenizer.all_special_tokens if t]
        for special in specials:
            reasoning = reasoning.replace(special, "")
            answer = answer.replace(special, "")
        return reasoning.strip(), answer.strip(), used

    # -- generation --------------------------------------------------------------------------
    def _generate(self, batch: Sequence[TeacherRequest]) -> list[TeacherReply]:
        import torch

        request = batch[0]
        extra = dict(request.extra)
        tokenizer, model = self._tokenizer, self._model
        texts = [
            tokenizer.apply_chat_template(r.as_messages(), tokenize=False,
                                          add_generation_prompt=True)
            for r in batch
        ]
        encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        encoded = {k: v.to(self._device) for k, v in encoded.items()}
        width = encoded["input_ids"].shape[1]
        max_new = request.max_tokens if request.max_tokens is not None else self.max_tokens
        max_new = max_new or 1024
        limit = getattr(model.config, "max_position_embeddings", None)
        if limit:
            max_new = max(1, min(max_new, int(limit) - width))
        sample = request.temperature > 0
        options: dict[str, Any] = {
            "max_new_tokens": max_new,
            "do_sample": sample,
            "pad_token_id": tokenizer.pad_token_id,
        }
        if sample:
            options.update(temperature=request.temperature, top_p=request.top_p, top_k=0)
            if "seed" in extra:
                torch.manual_seed(int(extra["seed"]))
        else:
            options.update(temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            output = model.generate(**encoded, **options)
        prompt_lengths = encoded["attention_mask"].sum(dim=1).tolist()
        replies = []
        for row, prompt_tokens in zip(output[:, width:].tolist(), prompt_lengths, strict=True):
            reasoning, answer, used = self.decode_reply(row)
            replies.append(TeacherReply(answer, reasoning, int(prompt_tokens), used, 0.0,
                                        finish_reason=self.finish_reason(row, used)))
        return replies

    def complete_iter(
        self, requests: Sequence[TeacherRequest]
    ) -> Iterator[tuple[int, TeacherReply]]:
        """Generate batch by batch (same sampling parameters per batch); yield each reply when
        its batch is done."""
        if not requests:
            return
        self._load()
        groups: dict[str, list[int]] = {}
        for index, request in enumerate(requests):
            params = repr((request.temperature, request.top_p, request.max_tokens, request.extra))
            groups.setdefault(params, []).append(index)
        for indices in groups.values():
            first = requests[indices[0]]
            # a seeded sample is generated alone, so its answer depends on nothing else
            seeded = first.temperature > 0 and "seed" in dict(first.extra)
            size = 1 if seeded else self.batch_size
            for start in range(0, len(indices), size):
                chunk = indices[start : start + size]
                replies = self._generate([requests[i] for i in chunk])
                for index, reply in zip(chunk, replies, strict=True):
                    self.calls += 1
                    self.prompt_tokens += reply.prompt_tokens
                    self.completion_tokens += reply.completion_tokens
                    yield index, reply

    def close(self) -> None:
        """Drop the model (and free GPU memory)."""
        self._model = self._tokenizer = None
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover
            pass
