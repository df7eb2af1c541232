"""KV reuse on a real sliding-window model (Gemma 3 270M, 512-token window on 5 of 6 layers):
contexts longer than the window, batched with shorter ones, give the log-likelihoods of the
plain full-sequence pass (what lm-eval computes)."""

from __future__ import annotations

import pytest

from kakugo_core.plugins import create
from kakugo_core.testing import read_sib200_texts

pytestmark = pytest.mark.slow
SHOT_LABELS = [" science/technology", " entertainment", " geography", " travel"]
CHOICES = [" science/technology", " travel and geography"]  # 3 and 4 Gemma tokens


def _requests(sib200_dir) -> list[tuple[str, str]]:
    """Few-shot topic prompts with 3, 11 and 14 examples (about 170, 560 and 690 Gemma
    tokens), so one batch mixes contexts shorter and longer than the 512-token window; all
    share their first three examples (a shared-prefix pass)."""
    texts = read_sib200_texts(sib200_dir, ["jav_Latn"])
    shots = [f"Sentence: {t}\nTopic:{SHOT_LABELS[k % len(SHOT_LABELS)]}\n\n"
             for k, t in enumerate(texts[:20])]
    out = []
    for item, n_shots in enumerate((3, 11, 14)):
        context = "".join(shots[:n_shots]) + f"Sentence: {texts[100 + item]}\nTopic:"
        out.extend((context, choice) for choice in CHOICES)
    return out


def test_kv_reuse_equals_full_sequence_past_the_sliding_window(gemma_model, sib200_dir):
    from kakugo_core.interfaces import LoglikelihoodRequest

    backend = create("backends", "transformers", str(gemma_model), batch_size=4)
    try:
        span, cacheable = backend.attention_layout()
        assert (span, cacheable) == (512, True)
        pairs = _requests(sib200_dir)
        encoded = [backend.encode_pair(c, x) for c, x in pairs]
        lengths = sorted({len(c) + len(x) for c, x in encoded})
        assert lengths[0] < span < lengths[-1]  # both sides of the window are exercised
        assert min(len(x) for _, x in encoded) > 1  # multi-token choices (the affected ones)
        reused = backend.loglikelihood([LoglikelihoodRequest(c, x) for c, x in pairs])
        full = [backend.loglikelihood_full(c, x) for c, x in encoded]
        deltas = [abs(r.logprob - f) for r, f in zip(reused, full, strict=True)]
        print(f"max |delta logprob| {max(deltas):.3g} over {len(deltas)} requests")
        assert max(deltas) < 1e-4, f"max |delta logprob| {max(deltas):.4g}"
    finally:
        backend.close()
