"""The ``transformers`` teacher on the tiny offline Llama."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kakugo_core.config import load_config
from kakugo_core.errors import KakugoError
from kakugo_core.interfaces import TeacherRequest
from kakugo_core.plugins import create
from kakugo_core.teacher_cache import CachedTeacher
from kakugo_core.teachers import make_teacher

pytestmark = pytest.mark.slow

PROMPTS = ["Hello", "Sugeng enjing, piye kabare?", "What is the capital of Indonesia?"]


def ask(text: str, **params: Any) -> TeacherRequest:
    return TeacherRequest.chat([{"role": "user", "content": text}], **params)


@pytest.fixture(scope="module")
def teacher(tiny_model: Path) -> Any:
    t = create("teachers", "transformers", model=str(tiny_model), device="cpu", batch_size=2,
               max_tokens=12)
    yield t
    t.close()


def manual_greedy(teacher: Any, text: str, steps: int) -> list[int]:
    """Greedy decoding one token at a time with plain forward passes (no generate, no padding)."""
    import torch

    tokenizer, model = teacher.tokenizer, teacher._model
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                           add_generation_prompt=True)
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    produced: list[int] = []
    with torch.inference_mode():
        for _ in range(steps):
            next_id = int(model(ids).logits[0, -1].argmax())
            produced.append(next_id)
            if next_id == tokenizer.eos_token_id:
                break
            ids = torch.cat([ids, torch.tensor([[next_id]])], dim=1)
    return produced


def test_greedy_batched_replies_match_unbatched_forward_passes(teacher: Any) -> None:
    replies = teacher.complete([ask(p, temperature=0) for p in PROMPTS])
    for prompt, reply in zip(PROMPTS, replies, strict=True):
        ids = manual_greedy(teacher, prompt, 12)
        reasoning, content, used = teacher.decode_reply(ids)
        assert (reply.reasoning, reply.content, reply.completion_tokens) == (
            reasoning, content, used)
        chat = teacher.tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
        assert reply.prompt_tokens == len(teacher.tokenizer(chat, add_special_tokens=False)
                                          .input_ids)
        assert reply.cost == 0.0
    assert replies[0].content  # the tiny model does say something to "Hello"


def test_sampling_is_seeded_and_differs_from_greedy(teacher: Any) -> None:
    sampled = [ask(p, temperature=1.0, seed=7) for p in PROMPTS]
    first = teacher.complete(sampled)
    second = teacher.complete(sampled)
    assert [r.content for r in first] == [r.content for r in second]
    greedy = teacher.complete([ask(p, temperature=0) for p in PROMPTS])
    assert [r.content for r in first] != [r.content for r in greedy]


def test_max_tokens_and_streaming_order(teacher: Any) -> None:
    requests = [ask("Hello", temperature=1.0, seed=1, max_tokens=3),
                ask("Hello", temperature=0),
                ask("Hello", temperature=1.0, seed=1, max_tokens=3)]
    seen = list(teacher.complete_iter(requests))
    assert sorted(i for i, _ in seen) == [0, 1, 2]
    replies = dict(seen)
    assert replies[0].completion_tokens <= 3 and replies[2].completion_tokens <= 3
    for index, budget in ((0, 3), (1, 12), (2, 3)):  # ending early can only mean a stop
        reply = replies[index]
        assert reply.finish_reason in ("stop", "length")
        if reply.completion_tokens < budget:
            assert reply.finish_reason == "stop"
    assert replies[0].content == replies[2].content


def test_reasoning_is_split_with_the_common_rules(teacher: Any) -> None:
    tokenizer = teacher.tokenizer
    eos = tokenizer.eos_token_id
    think = tokenizer.encode("<think>Ana ing basa Jawa</think>Sugeng enjing",
                             add_special_tokens=False)
    assert teacher.decode_reply(think + [eos, 5, 6]) == (
        "Ana ing basa Jawa", "Sugeng enjing", len(think) + 1)
    assert teacher.finish_reason(think + [eos, 5, 6], len(think) + 1) == "stop"
    assert teacher.finish_reason(think, len(think)) == "length"  # ran out before a stop
    harmony = tokenizer.encode("analysisThe user greets.assistantfinalHalo",
                               add_special_tokens=False)
    assert teacher.decode_reply(harmony)[:2] == ("The user greets.", "Halo")


def test_cached_transformers_teacher_does_not_load_the_model_again(
    tiny_model: Path, tmp_path: Path
) -> None:
    config = load_config(extra={"teacher": {"plugin": "transformers", "model": str(tiny_model),
                                            "device": "cpu", "max_tokens": 6}})
    first = make_teacher(config, tmp_path / "c.jsonl")
    assert isinstance(first, CachedTeacher)
    fresh = first.complete([ask("Hello", temperature=0)])
    second = make_teacher(config, tmp_path / "c.jsonl")
    again = second.complete([ask("Hello", temperature=0)])
    assert again[0].cached and again[0].content == fresh[0].content
    assert second.inner._model is None  # answered without loading the model


def test_bad_models_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(KakugoError, match="teacher model folder .*missing does not exist"):
        create("teachers", "transformers", model=str(tmp_path / "missing")).complete([ask("x")])
    with pytest.raises(KakugoError, match="dtype"):
        create("teachers", "transformers", model="x", dtype="float8")


def test_a_local_model_served_over_http_answers_like_the_local_teacher(teacher: Any) -> None:
    from kakugo_core.teacher_server import OpenAICompatServer, teacher_responder

    requests = [ask(p, temperature=0, max_tokens=12) for p in PROMPTS]
    local = teacher.complete(requests)
    with OpenAICompatServer(teacher_responder(teacher)) as server:
        remote = create("teachers", "openai", model="tiny", base_url=server.base_url,
                        api_key_env="", concurrency=3).complete(requests)
        assert server.max_in_flight >= 1 and len(server.requests) == 3
    assert [(r.content, r.completion_tokens) for r in remote] == [
        (r.content, r.completion_tokens) for r in local]
