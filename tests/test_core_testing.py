"""The offline tiny model that every other test stands on."""

from __future__ import annotations

from pathlib import Path

from kakugo_core.testing import build_tiny_model


def test_tiny_model_loads_chats_and_generates(tiny_model: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert model.config.head_dim == 32 and model.config.num_hidden_layers == 2
    assert (tiny_model / "model.safetensors").exists()

    messages = [{"role": "system", "content": "Answer concisely."},
                {"role": "user", "content": "Kepiye kabare?"},
                {"role": "assistant", "content": "Apik."}]
    text = tok.apply_chat_template(messages, tokenize=False)
    assert text.index("<|system|>") < text.index("<|user|>") < text.index("<|assistant|>")
    enc = tok.apply_chat_template(messages, return_dict=True, return_assistant_tokens_mask=True)
    masked = [t for t, m in zip(enc["input_ids"], enc["assistant_masks"], strict=True) if m]
    assert tok.decode(masked) == "Apik.<|end|>"

    prompt = tok.apply_chat_template(messages[:2], add_generation_prompt=True, return_tensors="pt",
                                     return_dict=True)
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > prompt["input_ids"].shape[1]


def test_tiny_model_is_reused_when_inputs_match(tmp_path: Path) -> None:
    texts = ["sugeng enjing", "good morning"] * 50
    first = build_tiny_model(tmp_path / "m", texts, vocab_size=300)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    build_tiny_model(tmp_path / "m", texts, vocab_size=300)
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    build_tiny_model(tmp_path / "m", texts, vocab_size=301)
    assert (first / "model.safetensors").stat().st_mtime_ns != stamp
