"""Parity with lm-eval 0.4.x on a real pretrained model (Gemma 3 270M): per-item
log-likelihoods and predictions on SIB-200 (3-shot) and Belebele-format items, and greedy
generation with stop strings scored by chrF++ on FLORES, equal to lm-eval's ``HFLM``."""

from __future__ import annotations

from pathlib import Path

import pytest

from kakugo_core.languages import resolve
from kakugo_core.plugins import create

pytestmark = pytest.mark.slow
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def backends(gemma_model):
    ours = create("backends", "transformers", str(gemma_model), batch_size=8)
    theirs = create("backends", "lm-eval", str(gemma_model), batch_size=8)
    yield ours, theirs
    ours.close()
    theirs.close()


@pytest.mark.parametrize(("benchmark", "options"), [
    ("sib200", {"n_shot": 3, "limit": 4}),
    ("belebele", {"n_shot": 1, "limit": 3, "data_dir": str(FIXTURES)}),
])
def test_per_item_loglikelihoods_equal_lm_eval(backends, benchmark, options):
    ours, theirs = backends
    bench = create("benchmarks", benchmark)
    a = bench.evaluate(ours, resolve("jav_Latn"), options)
    b = bench.evaluate(theirs, resolve("jav_Latn"), options)
    assert len(a.predictions) == options["limit"]
    assert [p["pred"] for p in a.predictions] == [p["pred"] for p in b.predictions]
    worst = max(abs(x - y) for pa, pb in zip(a.predictions, b.predictions, strict=True)
                for x, y in zip(pa["logprobs"], pb["logprobs"], strict=True))
    print(f"{benchmark}: max |delta logprob| against lm-eval {worst:.3g}")
    assert worst < 1e-4
    assert a.scores[0].value == b.scores[0].value


def test_chat_template_scoring_equals_lm_eval(backends):
    """Gemma's turn format around the prompt (its template from the converted folder), the
    label scored as the model's reply, the same as lm-eval's chat-template path."""
    ours, theirs = backends
    bench = create("benchmarks", "sib200")
    options = {"n_shot": 0, "limit": 3, "chat_template": True}
    task = bench.prepare(resolve("jav_Latn"), options)
    wrapped = bench.wrap(ours, task, True)
    assert wrapped[0].context.startswith("<bos><start_of_turn>user\n")
    assert wrapped[0].context.endswith("<start_of_turn>model\n")
    assert [i.context for i in bench.wrap(theirs, task, True)] == [i.context for i in wrapped]
    a = bench.evaluate(ours, resolve("jav_Latn"), options)
    b = bench.evaluate(theirs, resolve("jav_Latn"), options)
    assert [p["pred"] for p in a.predictions] == [p["pred"] for p in b.predictions]
    for pa, pb in zip(a.predictions, b.predictions, strict=True):
        assert pa["logprobs"] == pytest.approx(pb["logprobs"], abs=1e-4)


def test_flores_generation_with_stop_strings_equals_lm_eval(backends):
    ours, theirs = backends
    bench = create("benchmarks", "flores")
    options = {"n_shot": 1, "limit": 2, "max_new_tokens": 12}
    a = bench.evaluate(ours, resolve("sun_Latn"), options)
    b = bench.evaluate(theirs, resolve("sun_Latn"), options)
    assert [p["hypothesis"] for p in a.predictions] == [p["hypothesis"] for p in b.predictions]
    assert any(p["hypothesis"].strip() for p in a.predictions)  # the real model translates
    assert all("\n" not in p["hypothesis"] for p in a.predictions)  # stopped at the newline
    assert [(s.metric, s.value) for s in a.scores] == [(s.metric, s.value) for s in b.scores]
