"""The transformers scoring backend (heavy: imports torch and transformers).

Log-likelihoods are computed the way lm-eval's ``HFLM`` tokenises them (context and continuation
encoded as in ``TemplateLM._encode_pair``), but every request that shares a context is scored
from ONE forward pass over that context: its KV cache is copied to each continuation, which is
then run on top of it. A multiple-choice item with k choices therefore costs one context pass
plus k short continuation passes, where lm-eval runs the whole context k times.

Contexts are batched right-padded (padding after the last real token changes no earlier
position) in batches sorted by length; continuations run on a copy of their context's cache.

Attention variants. Caches are always full key/value caches (nothing is dropped, whatever the
model's own cache would do for a sliding window). A sliding-window or chunked-attention layer
masks by position, so a continuation placed after the padding of a shorter context would see a
window shifted by the padding: when a batch's padded length passes the smallest window or chunk,
each context length gets its own continuation pass (no padding gap, true positions). Models with
layers that are not key/value attention (recurrent, linear attention) keep a state that padding
would change: they are scored the plain way, one pass over context + continuation per request.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from kakugo_core.errors import KakugoError
from kakugo_core.interfaces import (
    Backend,
    GenerationRequest,
    LoglikelihoodRequest,
    LoglikelihoodResult,
)
from kakugo_core.toolkit.files import model_folder_revision

log = logging.getLogger("kakugo")

local_revision = model_folder_revision  # the name the tests and lm-eval backend use


def _common_length(a: Sequence[int], b: Sequence[int], start: int = 0) -> int:
    """Length of the common prefix of two token lists known to agree on ``[:start]``."""
    n = min(len(a), len(b))
    for i in range(start, n):
        if a[i] != b[i]:
            return i
    return n


def pick_device(device: str | None) -> str:
    if device and device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def pick_dtype(dtype: str | None, device: str) -> torch.dtype:
    if dtype in (None, "", "auto"):
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
                "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}[dtype]
    except KeyError:
        raise KakugoError(f"unknown dtype {dtype!r}: use auto, float32, bfloat16 or float16")\
            from None


class HFBackend(Backend):
    """Scores with a transformers causal LM on CPU or GPU (bf16 on GPU by default)."""

    name = "transformers"
    #: attention_layout's answer, computed on its first call
    _layout: tuple[int | None, bool]

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
        prefix_token_id: int | None = None,
        trust_remote_code: bool = False,
        kv_reuse: bool = True,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from kakugo_core.toolkit.models import check_device, check_model_source

        check_device(device)
        check_model_source(str(model))
        self.model_id = str(model)
        self.device = pick_device(device)
        self.batch_size = max(1, int(batch_size))
        self.add_bos_token = add_bos_token
        self.kv_reuse = kv_reuse
        self.progress = progress
        from transformers.utils import logging as hf_logging

        from plugins.backends import _gguf

        local = Path(model).expanduser()
        gguf_file = _gguf.find_gguf(local)
        load: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code}
        #: facts about the weights that go into the stored result's ``versions``
        self.model_versions: dict[str, str] = {}
        if gguf_file is not None:  # llama.cpp's format, unpacked by transformers' GGUF loader
            self.model_versions = {"gguf_quant": _gguf.quant_type(gguf_file),
                                   "gguf_file": gguf_file.name}
            model = str(gguf_file.parent)
            load = {"gguf_file": gguf_file.name}
        bars_were_on = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # our own progress bars are showing
        try:
            with (_gguf.alone(gguf_file) if gguf_file is not None
                  else contextlib.nullcontext(model)) as source:
                self.tokenizer = AutoTokenizer.from_pretrained(source, **load)
                if gguf_file is not None:
                    load.update(_gguf.load_options())
                self.model = AutoModelForCausalLM.from_pretrained(
                    source, dtype=pick_dtype(dtype, self.device), **load,
                ).to(self.device)  # type: ignore[arg-type]
        except Exception as exc:  # OSError, ValueError, safetensors' and torch's own errors
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise KakugoError(
                f"cannot load model {model!r}: {first} (pass a local folder or a Hub id you can "
                "reach; `kakugo tiny-model DIR` builds an offline one)"
            ) from None
        finally:
            if bars_were_on:
                hf_logging.enable_progress_bar()
        self.model.eval()
        if gguf_file is not None:
            self.revision = _gguf.file_revision(gguf_file)
        elif local.is_dir():
            self.revision = local_revision(local)
        else:
            self.revision = revision or getattr(self.model.config, "_commit_hash", None) or ""
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._prefix_token_id = prefix_token_id
        self.max_length = int(max_length or self._model_max_length())

    # -- tokenisation (mirrors lm-eval's HFLM) ----------------------------------------------
    def _model_max_length(self) -> int:
        for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
            value = getattr(self.model.config, attr, None)
            if value:
                return int(value)
        tok_max = getattr(self.tokenizer, "model_max_length", None)
        return int(tok_max) if tok_max and tok_max < 10**7 else 2048

    @property
    def prefix_token_id(self) -> int:
        if self._prefix_token_id is not None:
            return self._prefix_token_id
        if self.tokenizer.bos_token_id is not None:
            return int(self.tokenizer.bos_token_id)
        return int(self.tokenizer.eos_token_id)

    def tok_encode(self, text: str, add_special_tokens: bool | None = None) -> list[int]:
        kwargs: dict[str, Any] = {}
        if add_special_tokens is not None:
            kwargs["add_special_tokens"] = add_special_tokens
        elif self.add_bos_token is not None:
            kwargs["add_special_tokens"] = self.add_bos_token
        if add_special_tokens is None and text.startswith(
            str(self.tokenizer.decode(self.prefix_token_id))
        ):
            kwargs["add_special_tokens"] = False
        return list(self.tokenizer.encode(text, **kwargs))

    def encode_pair(
        self, context: str, continuation: str, memo: dict[str, list[int]] | None = None
    ) -> tuple[list[int], list[int]]:
        """Token ids of (context, continuation) exactly as lm-eval's HFLM makes them; ``memo``
        keeps the contexts already encoded (the choices of one item share theirs)."""
        if context == "":
            cont = self.tok_encode(continuation, add_special_tokens=False)
            if cont and cont[0] == self.prefix_token_id:
                return cont[:1], cont[1:]
            return [self.prefix_token_id], cont
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces > 0:
            continuation = context[-n_spaces:] + continuation
            context = context[:-n_spaces]
        whole = self.tok_encode(context + continuation)
        if memo is None:
            ctx = self.tok_encode(context)
        else:
            if context not in memo:
                memo[context] = self.tok_encode(context)
            ctx = memo[context]
        return ctx, whole[len(ctx):]

    # -- log-likelihoods ---------------------------------------------------------------------
    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        memo: dict[str, list[int]] = {}
        encoded = [self.encode_pair(r.context, r.continuation, memo) for r in requests]
        return self.loglikelihood_tokens(encoded)

    def loglikelihood_tokens(
        self, encoded: Sequence[tuple[list[int], list[int]]]
    ) -> list[LoglikelihoodResult]:
        """Score (context ids, continuation ids) pairs, sharing each context's KV cache."""
        if not self.kv_reuse or not self.attention_layout()[1]:
            return self._loglikelihood_plain(encoded)
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, (ctx, cont) in enumerate(encoded):
            if not cont:
                raise KakugoError("empty continuation: a choice must add at least one token")
            keep = self.max_length + 1 - len(cont)
            ctx = ctx[-keep:] if keep > 0 else ctx[-1:]
            key = tuple(ctx) if self.kv_reuse else (index, *ctx)
            groups.setdefault(key, []).append(index)
        results: list[LoglikelihoodResult | None] = [None] * len(encoded)
        # Contexts are arranged in a tree of shared token prefixes (few-shot examples, then a
        # passage shared by several questions, ...). Each shared prefix is run once, on top of
        # its parent's cache, and its contexts are scored on top of it.
        for start, members, prefix_kv in self._walk(list(groups), 0, None, 0):
            order = sorted(members, key=lambda g: -(len(g) + max(len(encoded[i][1])
                                                                 for i in groups[g])))
            for first in range(0, len(order), self.batch_size):
                batch = order[first:first + self.batch_size]
                contexts = [list(g[start:]) if self.kv_reuse else list(g[1:]) for g in batch]
                members_of = [[(i, encoded[i][1]) for i in groups[g]] for g in batch]
                with torch.inference_mode():
                    scored = self._score_batch(contexts, members_of, prefix_kv, start)
                for index, result in scored:
                    results[index] = result
                if self.progress is not None:
                    self.progress(sum(len(m) for m in members_of))
        return [r for r in results if r is not None]

    def _loglikelihood_plain(
        self, encoded: Sequence[tuple[list[int], list[int]]]
    ) -> list[LoglikelihoodResult]:
        """lm-eval's computation: one pass over context + continuation per request (batched,
        right-padded), for models whose cache cannot be reused exactly."""
        device = self.device
        pad = int(self.tokenizer.pad_token_id)
        pairs = []
        for ctx, cont in encoded:
            if not cont:
                raise KakugoError("empty continuation: a choice must add at least one token")
            whole = (ctx + cont)[-(self.max_length + 1):]
            pairs.append((whole[:-1], len(cont)))
        order = sorted(range(len(pairs)), key=lambda i: -len(pairs[i][0]))
        results: list[LoglikelihoodResult | None] = [None] * len(pairs)
        for first in range(0, len(order), self.batch_size):
            batch = order[first:first + self.batch_size]
            width = max(len(pairs[i][0]) for i in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            for row, i in enumerate(batch):
                ids[row, :len(pairs[i][0])] = torch.tensor(pairs[i][0])
            needed = sorted({p for i in batch
                             for p in range(len(pairs[i][0]) - pairs[i][1], len(pairs[i][0]))})
            column = {p: c for c, p in enumerate(needed)}
            with torch.inference_mode():
                logits = self._call(input_ids=ids.to(device),
                                    logits_to_keep=torch.tensor(needed, device=device)).logits
            for row, i in enumerate(batch):
                seq, n = pairs[i]
                target = torch.tensor((encoded[i][0] + encoded[i][1])[-n:], device=device)
                cols = [column[p] for p in range(len(seq) - n, len(seq))]
                tail = F.log_softmax(logits[row, cols].float(), dim=-1)
                logprob = float(tail.gather(1, target.unsqueeze(1)).sum())
                greedy = bool((tail.argmax(-1) == target).all())
                results[i] = LoglikelihoodResult(logprob, greedy, n)
            if self.progress is not None:
                self.progress(len(batch))
        return [r for r in results if r is not None]

    # -- shared prefixes ---------------------------------------------------------------------
    MIN_PREFIX = 32  # shorter shared prefixes are not worth a pass of their own
    MAX_DEPTH = 6
    #: a prefix pass of its own must save at least this many token positions: many tiny
    #: groups (batches of 2) cost more in calls than they save in tokens
    MIN_SAVED = 128

    def prefix_plan(self, contexts: list[tuple[int, ...]]) -> list[tuple[int, int]]:
        """(shared prefix length, number of contexts) of each group (for tests and tuning)."""
        return [(start, len(m)) for start, m, _ in self._walk(contexts, 0, None, 0, dry=True)]

    def _walk(
        self, contexts: list[tuple[int, ...]], start: int, kv: Any, depth: int,
        dry: bool = False,
    ) -> Iterator[tuple[int, list[tuple[int, ...]], Any]]:
        """Yield (prefix length, contexts, prefix cache) groups, depth first, so at most one
        chain of prefix caches is alive at a time. All ``contexts`` share ``[:start]``."""
        if not self.kv_reuse or self._no_prefix_cache:
            yield 0, contexts, None
            return
        ordered = sorted(contexts)
        lcps = [_common_length(x, y, start) for x, y in zip(ordered[:-1], ordered[1:], strict=True)]
        loose: list[tuple[int, ...]] = []
        i = 0
        while i < len(ordered):
            j = i
            while j < len(lcps) and lcps[j] - start >= self.MIN_PREFIX:
                j += 1
            run = ordered[i:j + 1]
            i = j + 1
            if len(run) >= 2 and depth < self.MAX_DEPTH:
                shared = min(min(lcps[i - len(run):i - 1]), min(len(c) for c in run) - 1)
                saved = (shared - start) * (len(run) - 1)
                if shared - start >= self.MIN_PREFIX and saved >= self.MIN_SAVED:
                    child = None if dry else self._extend_cache(kv, start, run[0][start:shared])
                    if dry or child is not None:
                        yield from self._walk(run, shared, child, depth + 1, dry)
                        continue
            loose.extend(run)
        if loose:
            yield start, loose, kv

    _no_prefix_cache = False

    def _extend_cache(
        self, parent: list[tuple[Any, Any]] | None, start: int, tokens: tuple[int, ...]
    ) -> list[tuple[Any, Any]] | None:
        """Keys and values of every layer for parent prefix + ``tokens`` (batch 1), or None
        (and prefix sharing off) when the model's cache is not a plain key/value cache."""
        ids = torch.tensor([list(tokens)], device=self.device)
        cache = self._expanded_cache(parent, 1) if parent is not None else self._full_cache()
        positions = (start + torch.arange(len(tokens), device=self.device)).unsqueeze(0)
        with torch.inference_mode():
            out = self._call(input_ids=ids, position_ids=positions, use_cache=True,
                             logits_to_keep=1, **{self._cache_arg: cache})
        kv = self._kv_of(self._cache_of(out))
        if not kv or any(k is None or k.shape[-2] != start + len(tokens) for k, _ in kv):
            self._no_prefix_cache = True
            return None
        return kv

    @staticmethod
    def _kv_of(cache: Any) -> list[tuple[Any, Any]]:
        """Every layer's (keys, values), or [] for a cache that is not a plain key/value one
        (``layers`` in transformers >= 4.56, ``key_cache``/``value_cache`` lists before)."""
        try:
            if getattr(cache, "layers", None):
                return [(layer.keys, layer.values) for layer in cache.layers]
            keys, values = getattr(cache, "key_cache", None), getattr(cache, "value_cache", None)
            return list(zip(keys, values, strict=True)) if keys and values else []
        except (AttributeError, TypeError, ValueError):
            return []

    @staticmethod
    def _full_cache() -> Any:
        """A cache that keeps every position in every layer (built without the model config,
        which would make sliding-window layers drop all but the last window)."""
        from transformers import DynamicCache

        return DynamicCache()

    def _expanded_cache(self, prefix_kv: list[tuple[Any, Any]], rows: int) -> Any:
        return self._prefilled_cache([(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1))
                                      for k, v in prefix_kv])

    @staticmethod
    def _prefilled_cache(pairs: list[tuple[Any, Any]]) -> Any:
        """A cache holding ``pairs`` as they are, views included. ``DynamicCache``'s own
        constructor copies every tensor once more (it appends it to an empty one), and the
        forward pass copies them anyway when it appends the new positions: on a tiny Llama
        that extra copy was a sixth of SIB-200's scoring time."""
        from transformers import DynamicCache

        try:
            from transformers.cache_utils import DynamicLayer

            cache = DynamicCache()
            cache.layers = []
            for k, v in pairs:
                layer = DynamicLayer()
                layer.lazy_initialization(k, v)
                layer.keys, layer.values = k, v
                cache.layers.append(layer)
            return cache
        except (ImportError, AttributeError, TypeError):  # another cache layout: the plain way
            return DynamicCache(ddp_cache_data=pairs)

    # -- the model's forward API and attention layout ----------------------------------------
    @property
    def _cache_arg(self) -> str:
        """The forward keyword that takes a cache: ``cache`` in current transformers (where
        ``past_key_values`` is deprecated), ``past_key_values`` before."""
        import inspect

        if not hasattr(self, "_cache_arg_name"):
            params = inspect.signature(self.model.forward).parameters
            self._cache_arg_name = "cache" if "cache" in params else "past_key_values"
        return self._cache_arg_name

    @staticmethod
    def _cache_of(out: Any) -> Any:
        cache = getattr(out, "cache", None)
        return cache if cache is not None else getattr(out, "past_key_values", None)

    def attention_layout(self) -> tuple[int | None, bool]:
        """(span, cacheable): the fewest positions any layer attends to (its sliding window or
        attention chunk; None when every layer sees the whole sequence), and whether every
        layer is key/value attention whose cache can be reused exactly."""
        if hasattr(self, "_layout"):
            return self._layout
        config = self.model.config
        get_text = getattr(config, "get_text_config", None)
        cfg = get_text(decoder=True) if callable(get_text) else config
        types = set(getattr(cfg, "layer_types", None) or [])
        spans = []
        window = getattr(cfg, "sliding_window", None)
        if window and ("sliding_attention" in types or (
                not types and getattr(cfg, "use_sliding_window", True) is not False)):
            spans.append(int(window))
        chunk = getattr(cfg, "attention_chunk_size", None)
        if chunk and ("chunked_attention" in types or not types):
            spans.append(int(chunk))
        cacheable = types <= {"full_attention", "sliding_attention", "chunked_attention"}
        self._layout = (min(spans) if spans else None, cacheable)
        return self._layout

    def _call(self, **kwargs: Any) -> Any:
        """A forward pass; ``logits_to_keep`` is emulated for models that do not take it."""
        if "logits_to_keep" in kwargs and not self._keeps_logits:
            keep = kwargs.pop("logits_to_keep")
            out = self.model(**kwargs)
            out.logits = out.logits[:, keep] if torch.is_tensor(keep) else \
                out.logits[:, -keep:]
            return out
        return self.model(**kwargs)

    @property
    def _keeps_logits(self) -> bool:
        import inspect

        if not hasattr(self, "_keeps_logits_cache"):
            params = inspect.signature(self.model.forward).parameters
            self._keeps_logits_cache = "logits_to_keep" in params
        return self._keeps_logits_cache

    def _score_batch(
        self, contexts: list[list[int]], members: list[list[tuple[int, list[int]]]],
        prefix_kv: list[tuple[Any, Any]] | None = None, prefix_len: int = 0,
    ) -> list[tuple[int, LoglikelihoodResult]]:
        """One batch: contexts (after any shared prefix) right-padded in one causal pass with
        no padding mask (padding at the right changes no earlier position: lm-eval's layout),
        then every continuation longer than one token on a copy of its context's cache."""
        device = self.device
        pad = int(self.tokenizer.pad_token_id)
        rows_n = len(contexts)
        width = max(len(c) for c in contexts)
        ids = torch.full((rows_n, width), pad, dtype=torch.long)
        for row, ctx in enumerate(contexts):
            ids[row, :len(ctx)] = torch.tensor(ctx)
        ids = ids.to(device)
        lengths = torch.tensor([len(c) for c in contexts], device=device)
        last = [len(c) - 1 for c in contexts]
        keep = sorted(set(last))  # the only positions whose logits are needed
        needs_cache = any(len(cont) > 1 for group in members for _, cont in group)
        kwargs: dict[str, Any] = {}
        if prefix_kv is not None:
            kwargs[self._cache_arg] = self._expanded_cache(prefix_kv, rows_n)
        elif needs_cache:
            kwargs[self._cache_arg] = self._full_cache()
        positions = (prefix_len + torch.arange(width, device=device)).unsqueeze(0)
        out = self._call(input_ids=ids, position_ids=positions.expand(rows_n, -1),
                         use_cache=needs_cache, logits_to_keep=torch.tensor(keep, device=device),
                         **kwargs)
        column = torch.tensor([keep.index(p) for p in last], device=device)
        picked_logits = out.logits[torch.arange(rows_n, device=device), column]
        first = F.log_softmax(picked_logits.float(), dim=-1)  # predicts each cont[0]

        # Continuations longer than one token run on top of a copy of their context's cache.
        rows = [(g, i, cont) for g, group in enumerate(members) for i, cont in group]
        long_rows = [(g, i, cont) for g, i, cont in rows if len(cont) > 1]
        rest: dict[int, torch.Tensor] = {}
        if long_rows:
            kv = self._kv_of(self._cache_of(out))
            del out
            if not kv:
                raise KakugoError(
                    f"cannot read {type(self.model).__name__}'s key/value cache to score "
                    "multi-token continuations; pass kv_reuse=False or use --backend lm-eval")
            span, _ = self.attention_layout()
            cwidth = max(len(cont) - 1 for _, _, cont in long_rows)
            if span is None or len(set(last)) == 1 or prefix_len + width + cwidth <= span:
                # one pass; the mask hides the padding between each context and the width
                passes = [(long_rows, width)]
            else:
                # a window or chunk would be placed by padded positions: one pass per context
                # length, on the cache cut to that length (no gap, true positions)
                by_length: dict[int, list[tuple[int, int, list[int]]]] = {}
                for long_row in long_rows:
                    by_length.setdefault(len(contexts[long_row[0]]), []).append(long_row)
                passes = [(by_length[n], n) for n in sorted(by_length)]
            for part, upto in passes:
                rest.update(self._continue(kv, part, lengths, prefix_len, upto))
            del kv
        results = []
        for g, i, cont in rows:
            head = first[g]
            target = torch.tensor(cont, device=device)
            picked = [head[cont[0]]]
            greedy = bool(head.argmax() == cont[0])
            if len(cont) > 1:
                tail = rest[i][: len(cont) - 1]
                picked.append(tail.gather(1, target[1:].unsqueeze(1)).sum())
                greedy = greedy and bool((tail.argmax(-1) == target[1:]).all())
            logprob = float(torch.stack(picked).sum())
            results.append((i, LoglikelihoodResult(logprob, greedy, len(cont))))
        return results

    def _continue(
        self, kv: list[tuple[Any, Any]], rows: list[tuple[int, int, list[int]]],
        lengths: torch.Tensor, prefix_len: int, upto: int,
    ) -> dict[int, torch.Tensor]:
        """Log-probs of ``cont[1:]`` for each (context row, request, continuation), run on the
        first ``prefix_len + upto`` cached positions of its context row."""
        device = self.device
        pad = int(self.tokenizer.pad_token_id)
        select = torch.tensor([g for g, _, _ in rows], device=device)
        cache = self._prefilled_cache([(k[select, :, :prefix_len + upto],
                                        v[select, :, :prefix_len + upto]) for k, v in kv])
        cwidth = max(len(cont) - 1 for _, _, cont in rows)
        cids = torch.full((len(rows), cwidth), pad, dtype=torch.long)
        cmask = torch.zeros((len(rows), cwidth), dtype=torch.long)
        for row, (_, _, cont) in enumerate(rows):
            cids[row, :len(cont) - 1] = torch.tensor(cont[:-1])
            cmask[row, :len(cont) - 1] = 1
        cids, cmask = cids.to(device), cmask.to(device)
        ctx_mask = (torch.arange(upto, device=device).unsqueeze(0)
                    < lengths[select].unsqueeze(1)).long()
        full_mask = torch.cat([ctx_mask.new_ones((len(rows), prefix_len)), ctx_mask, cmask],
                              dim=1)
        cpos = (prefix_len + lengths[select]).unsqueeze(1) + \
            torch.arange(cwidth, device=device).unsqueeze(0)
        cout = self._call(input_ids=cids, attention_mask=full_mask, position_ids=cpos,
                          use_cache=True, **{self._cache_arg: cache})
        logprobs = F.log_softmax(cout.logits.float(), dim=-1)
        return {i: logprobs[row] for row, (_, i, _) in enumerate(rows)}

    def loglikelihood_full(self, context_ids: list[int], cont_ids: list[int]) -> float:
        """The plain computation (one pass over context + continuation, no cache): the
        reference the KV-reuse path is checked against."""
        ids = torch.tensor([(context_ids + cont_ids)[:-1]], device=self.device)
        with torch.inference_mode():
            logits = self._call(input_ids=ids, logits_to_keep=len(cont_ids)).logits[0]
        tail = F.log_softmax(logits.float(), dim=-1)
        target = torch.tensor(cont_ids, device=self.device)
        return float(tail.gather(1, target.unsqueeze(1)).sum())

    # -- generation --------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        outputs: list[str | None] = [None] * len(requests)
        encoded = [self.tok_encode(r.prompt) for r in requests]
        order = sorted(range(len(requests)), key=lambda i: -len(encoded[i]))
        # Requests with the same stop strings and budget are generated together.
        buckets: dict[tuple[tuple[str, ...], int], list[int]] = {}
        for i in order:
            buckets.setdefault((requests[i].stop, requests[i].max_new_tokens), []).append(i)
        for (stop, max_new), indices in buckets.items():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start:start + self.batch_size]
                texts = self._generate_batch([encoded[i] for i in chunk], stop, max_new)
                for i, text in zip(chunk, texts, strict=True):
                    outputs[i] = text
                if self.progress is not None:
                    self.progress(len(chunk))
        return [o or "" for o in outputs]

    def _generate_batch(
        self, prompts: list[list[int]], stop: tuple[str, ...], max_new: int
    ) -> list[str]:
        pad = int(self.tokenizer.pad_token_id)
        keep = max(1, self.max_length - max_new)
        prompts = [p[-keep:] for p in prompts]
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), pad, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, p in enumerate(prompts):
            ids[row, width - len(p):] = torch.tensor(p)
            mask[row, width - len(p):] = 1
        kwargs: dict[str, Any] = {}
        if stop:
            kwargs.update(stop_strings=list(stop), tokenizer=self.tokenizer)
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                max_new_tokens=max_new, do_sample=False, pad_token_id=pad, **kwargs,
            )
        texts = []
        for row in out[:, width:].tolist():
            text = str(self.tokenizer.decode(row, skip_special_tokens=True))
            for s in stop:
                if s:
                    text = text.split(s)[0]
            texts.append(text)
        return texts

    def apply_chat_template(self, prompt: str) -> str:
        if not getattr(self.tokenizer, "chat_template", None):
            return prompt
        return str(self.tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        ))

    def close(self) -> None:
        del self.model
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
