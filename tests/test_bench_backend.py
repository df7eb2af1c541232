"""The transformers backend: KV-cache reuse is exact, tokenisation and results match lm-eval."""

from __future__ import annotations

import pytest

from kakugo_core.interfaces import GenerationRequest, LoglikelihoodRequest
from kakugo_core.plugins import create

pytestmark = pytest.mark.slow

JAV = "Text: Mutasi nambah variasi genetik anyar.\nTopic:"
REQUESTS = [
    LoglikelihoodRequest(JAV, " science/technology"),
    LoglikelihoodRequest("Text: Mutasi nambah variasi genetik anyar.\nTopic:", " travel"),
    LoglikelihoodRequest("Text: Mutasi nambah variasi genetik anyar.\nTopic:", " geography"),
    LoglikelihoodRequest("Text: The PBS show has more than two-dozen Emmy awards.\nTopic: ",
                         "entertainment"),
    LoglikelihoodRequest("Short", " one"),
    LoglikelihoodRequest("", "A sentence scored from the prefix token alone."),
    LoglikelihoodRequest("P: a passage\nQ: which?\nA: x\nB: y\nAnswer:", " A"),
    LoglikelihoodRequest("P: a passage\nQ: which?\nA: x\nB: y\nAnswer:", " B"),
]


@pytest.fixture(scope="module")
def hf(tiny_model):
    backend = create("backends", "transformers", str(tiny_model), batch_size=3)
    yield backend
    backend.close()


@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_kv_reuse_equals_full_sequence_computation(hf, batch_size):
    hf.batch_size = batch_size
    results = hf.loglikelihood(REQUESTS)
    assert len(results) == len(REQUESTS)
    for request, result in zip(REQUESTS, results, strict=True):
        ctx, cont = hf.encode_pair(request.context, request.continuation)
        assert result.n_tokens == len(cont)
        assert result.logprob == pytest.approx(hf.loglikelihood_full(ctx, cont), abs=1e-4)
        assert result.logprob < 0


@pytest.mark.parametrize("layout", [(8, True), (None, False)])
def test_windowed_and_uncacheable_layouts_give_full_sequence_results(hf, layout):
    """A window smaller than the batch (one continuation pass per context length) and a model
    whose cache cannot be reused (plain scoring) both give the full-sequence values; the
    Gemma test in test_real_sliding_window.py checks a real window."""
    hf._layout = layout
    try:
        results = hf.loglikelihood(REQUESTS)
    finally:
        del hf._layout
    for request, result in zip(REQUESTS, results, strict=True):
        ctx, cont = hf.encode_pair(request.context, request.continuation)
        assert result.logprob == pytest.approx(hf.loglikelihood_full(ctx, cont), abs=1e-4)


def test_kv_reuse_can_be_switched_off_with_the_same_results(hf):
    shared = hf.loglikelihood(REQUESTS)
    hf.kv_reuse = False
    try:
        plain = hf.loglikelihood(REQUESTS)
    finally:
        hf.kv_reuse = True
    for a, b in zip(shared, plain, strict=True):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-4)
        assert a.is_greedy == b.is_greedy


def test_choices_get_different_scores(hf):
    a, b, c = hf.loglikelihood(REQUESTS[:3])
    assert len({round(a.logprob, 3), round(b.logprob, 3), round(c.logprob, 3)}) == 3


def test_tokenisation_and_loglikelihoods_match_lm_eval(hf, tiny_model):
    lm = create("backends", "lm-eval", str(tiny_model), batch_size=4)
    try:
        for request in REQUESTS:
            if request.context:
                assert hf.encode_pair(request.context, request.continuation) == \
                    lm.lm._encode_pair(request.context, request.continuation)
        ours, theirs = hf.loglikelihood(REQUESTS), lm.loglikelihood(REQUESTS)
        for a, b in zip(ours, theirs, strict=True):
            assert a.logprob == pytest.approx(b.logprob, abs=1e-4)
            assert a.is_greedy == b.is_greedy
            assert a.n_tokens == b.n_tokens
        prompts = [GenerationRequest("Javanese: Mutasi nambah\nEnglish:", max_new_tokens=12),
                   GenerationRequest("English: The show\nJavanese:", max_new_tokens=7),
                   GenerationRequest("Topic:", stop=("o",), max_new_tokens=9)]
        assert hf.generate(prompts) == lm.generate(prompts)
    finally:
        lm.close()


def test_generation_stops_at_the_stop_string_and_respects_the_budget(hf):
    free, = hf.generate([GenerationRequest("Text: hello", stop=(), max_new_tokens=6)])
    assert free  # the untrained model produces something
    stopper = free[1]  # a character it will produce: everything from there is cut
    stopped, = hf.generate([GenerationRequest("Text: hello", stop=(stopper,), max_new_tokens=6)])
    assert stopper not in stopped
    assert free.startswith(stopped)
    n_tokens = len(hf.tokenizer.encode(free, add_special_tokens=False))
    assert n_tokens <= 6 + 1


def test_revision_is_a_content_hash_of_the_local_folder(hf, tiny_model):
    from plugins.backends._hf_backend import local_revision

    assert hf.revision == local_revision(tiny_model)
    assert hf.revision.startswith("sha256:")


def test_unloadable_model_is_one_line_error(tmp_path):
    from kakugo_core.errors import KakugoError

    with pytest.raises(KakugoError, match="model folder .*nothing-here does not exist") as info:
        create("backends", "transformers", str(tmp_path / "nothing-here"))
    assert "\n" not in str(info.value)


def test_shared_few_shot_prefix_is_computed_once_and_exact(hf, sib200_dir):
    lines = (sib200_dir / "jav_Latn" / "test.tsv").read_text("utf-8").splitlines()[1:12]
    texts = [line.split("\t")[2] for line in lines]
    shots = "".join(f"Text: {t}\nTopic: travel\n\n" for t in texts[:3])
    requests = [
        LoglikelihoodRequest(shots + f"Text: {t}\nTopic:", label)
        for t in texts[3:9] for label in (" travel", " science/technology", " sports")
    ] + [LoglikelihoodRequest(f"Text: {texts[9]}\nTopic:", " health")]  # shares nothing
    encoded = [hf.encode_pair(r.context, r.continuation) for r in requests]
    plan = hf.prefix_plan(list({tuple(c) for c, _ in encoded}))
    assert sorted(n for _, n in plan) == [1, 6]  # six share the shots, one shares nothing
    assert max(start for start, _ in plan) >= 32
    hf.batch_size = 4
    results = hf.loglikelihood(requests)
    for (ctx, cont), result in zip(encoded, results, strict=True):
        assert result.logprob == pytest.approx(hf.loglikelihood_full(ctx, cont), abs=1e-4)


def test_nested_prefixes_shots_then_passage(hf, sib200_dir):
    lines = (sib200_dir / "eng_Latn" / "test.tsv").read_text("utf-8").splitlines()[1:20]
    texts = [line.split("\t")[2] for line in lines]
    shots = "".join(f"P: {t}\nQ: Which?\nAnswer: A\n\n" for t in texts[:3])
    requests = [
        LoglikelihoodRequest(shots + f"P: {texts[3 + p]} {texts[10 + p]}\nQ: {q}\nAnswer:", c)
        for p in range(3) for q in ("Which topic?", "Which sentence is in it?")
        for c in (" A", " B", " C D")
    ]
    encoded = [hf.encode_pair(r.context, r.continuation) for r in requests]
    hf.MIN_SAVED = 0  # let every shared passage have its own pass
    try:
        plan = hf.prefix_plan(list({tuple(c) for c, _ in encoded}))
        assert sorted(n for _, n in plan) == [2, 2, 2]  # one group per passage, under the shots
        hf.batch_size = 2
        results = hf.loglikelihood(requests)
    finally:
        del hf.MIN_SAVED
    for (ctx, cont), result in zip(encoded, results, strict=True):
        assert result.logprob == pytest.approx(hf.loglikelihood_full(ctx, cont), abs=1e-4)
    hf.MIN_SAVED = 10**6  # no shared pass saves this much: all six contexts in one group
    try:
        assert [n for _, n in hf.prefix_plan(list({tuple(c) for c, _ in encoded}))] == [6]
    finally:
        del hf.MIN_SAVED
