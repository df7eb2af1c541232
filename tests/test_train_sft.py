"""Real fine-tuning of the tiny model on a tiny Kakugo dataset: full and LoRA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

THINK = "Think step by step before you answer, then give your answer."
CONCISE = "Answer concisely."
FAST = {"learning_rate": 3e-3, "max_length": 512, "gradient_accumulation_steps": 1,
        "per_device_batch_size": 2, "logging_steps": 2, "warmup_ratio": 0.1}



@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory, sib200_dir, dataset_builder):
    return dataset_builder.build_dataset(sib200_dir, tmp_path_factory.mktemp("ds") / "dataset",
                                    96, 16)


@pytest.fixture(scope="module")
def full_model(tmp_path_factory, tiny_model, dataset_dir):
    from kakugo_core.plugins import create

    out = tmp_path_factory.mktemp("full") / "model"
    return create("students", "hf").train(str(tiny_model), dataset_dir, out,
                                          {**FAST, "epochs": 2.0, "learning_rate": 5e-3})


@pytest.fixture(scope="module")
def paired_model(tmp_path_factory, tiny_model, sib200_dir, dataset_builder):
    """Trained on translation requests that appear under both system prompts."""
    from kakugo_core.plugins import create

    data = dataset_builder.build_paired_dataset(sib200_dir,
                                                tmp_path_factory.mktemp("pairs") / "d", 6)
    out = tmp_path_factory.mktemp("paired") / "model"
    return create("students", "hf").train(str(tiny_model), data, out, {
        **FAST, "epochs": 20.0, "learning_rate": 1e-2, "max_length": 256})


def _logprob(model, tokenizer, system, user, continuation):
    """log P(continuation | chat prompt) under the model."""
    import torch

    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                           return_dict=True)["input_ids"]
    tail = tokenizer(continuation, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([list(prompt) + tail])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(input_ids=ids).logits[0, :-1], -1)
    positions = range(len(prompt) - 1, ids.shape[1] - 1)
    return float(sum(logprobs[p, ids[0, p + 1]] for p in positions))


def test_validation_loss_falls_and_summary_is_written(full_model):
    summary = json.loads((full_model / "training_summary.json").read_text())
    assert summary["final_validation_loss"] < summary["initial_validation_loss"] - 1.0
    assert summary["tokens_seen"] > summary["assistant_tokens_seen"] > 0
    assert summary["train_examples"] == 96 and summary["validation_examples"] == 16
    assert summary["options"]["method"] == "full" and summary["optimizer_steps"] > 0
    sft = [s for s in summary["losses"] if s["stage"] == "sft"][0]
    assert len(sft["train"]) >= 5 and sft["train"][-1][1] < sft["train"][0][1]
    png = (full_model / "loss_curve.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    assert not list(full_model.parent.glob(".*partial*"))  # staging folder gone


def test_saved_model_loads_and_generates_under_both_prompts(full_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    from kakugo_core.testing import CHAT_TEMPLATE

    tokenizer = AutoTokenizer.from_pretrained(full_model)
    model = AutoModelForCausalLM.from_pretrained(full_model).eval()
    assert tokenizer.chat_template == CHAT_TEMPLATE
    assert (full_model / "chat_template.jinja").read_text() == CHAT_TEMPLATE
    assert list(full_model.glob("*.safetensors"))
    gen = GenerationConfig.from_pretrained(full_model)
    assert gen.eos_token_id == tokenizer.convert_tokens_to_ids("<|end|>")
    for system in (THINK, CONCISE):
        ids = tokenizer.apply_chat_template(
            [{"role": "system", "content": system},
             {"role": "user", "content": "Terjemahna menyang basa Jawa: The city is big."}],
            add_generation_prompt=True, return_tensors="pt", return_dict=True)
        out = model.generate(**ids, max_new_tokens=12, do_sample=False)
        assert out.shape[1] > ids["input_ids"].shape[1]
        assert isinstance(tokenizer.decode(out[0, ids["input_ids"].shape[1]:]), str)


def test_think_prompt_opens_with_think_and_concise_prompt_does_not(paired_model, tiny_model,
                                                                  sib200_dir, dataset_builder):
    """The same request: the think prompt makes ``<think>`` far likelier than the concise one
    (impossible unless the row's system prompt is part of what the model was trained on)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(paired_model)
    trained = AutoModelForCausalLM.from_pretrained(paired_model).eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    questions = [row["messages"][0]["content"]
                 for row in dataset_builder.paired_rows(sib200_dir, 6)[::2]]

    def gap(model):
        return sum(_logprob(model, tokenizer, THINK, q, "<think>\n")
                   - _logprob(model, tokenizer, CONCISE, q, "<think>\n")
                   for q in questions) / len(questions)

    trained_gap, base_gap = gap(trained), gap(base)
    assert trained_gap > 2.0 and trained_gap > base_gap + 2.0, (trained_gap, base_gap)
    # and greedy decoding follows the prompt
    for system, thinks in ((THINK, True), (CONCISE, False)):
        ids = tokenizer.apply_chat_template(
            [{"role": "system", "content": system}, {"role": "user", "content": questions[0]}],
            add_generation_prompt=True, return_tensors="pt", return_dict=True)
        out = trained.generate(**ids, max_new_tokens=6, do_sample=False)
        text = tokenizer.decode(out[0, ids["input_ids"].shape[1]:])
        assert text.startswith("<think>") == thinks, (system, text)


def test_lora_saves_adapter_and_merged_model_equals_base_plus_adapter(
        tmp_path, tiny_model, dataset_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kakugo_core.plugins import create

    out = create("students", "hf").train(
        str(tiny_model), dataset_dir, tmp_path / "lora",
        {**FAST, "method": "lora", "epochs": 1.0, "lora_rank": 8, "lora_alpha": 16,
         "lora_dropout": 0.0, "learning_rate": 1e-2})
    adapter = out / "adapter"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["r"] == 8 and config["lora_alpha"] == 16
    targets = {name.rsplit(".", 1)[-1] for name in config["target_modules"]}
    assert targets == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                       "down_proj"}  # every linear layer but the output head
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["final_validation_loss"] < summary["initial_validation_loss"]

    tokenizer = AutoTokenizer.from_pretrained(out)
    ids = tokenizer("Ing kutha iku akeh wong.", return_tensors="pt")["input_ids"]
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    with_adapter = PeftModel.from_pretrained(base, adapter).eval()
    with torch.no_grad():
        expected = with_adapter(input_ids=ids).logits
        got = merged(input_ids=ids).logits
        plain = AutoModelForCausalLM.from_pretrained(tiny_model)(input_ids=ids).logits
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    assert (got - plain).abs().max() > 1e-2  # the adapter changed something


def test_bad_inputs_are_one_line_errors(tmp_path, tiny_model, dataset_dir):
    from transformers import AutoTokenizer

    from kakugo_core.errors import KakugoError
    from kakugo_core.plugins import create

    student = create("students", "hf")
    with pytest.raises(KakugoError, match="base model folder .*nope does not exist"):
        student.train(str(tmp_path / "nope"), dataset_dir, tmp_path / "o1", FAST)
    no_template = tmp_path / "no-template"
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer.chat_template = None
    tokenizer.save_pretrained(no_template)
    for f in Path(tiny_model).glob("*.json"):
        if not (no_template / f.name).exists():
            (no_template / f.name).write_text(f.read_text())
    (no_template / "chat_template.jinja").unlink(missing_ok=True)
    with pytest.raises(KakugoError, match="no chat template"):
        student.train(str(no_template), dataset_dir, tmp_path / "o2", FAST)
    with pytest.raises(KakugoError, match="unknown training option"):
        student.train(str(tiny_model), dataset_dir, tmp_path / "o3", {"learning_rat": 1.0})
    with pytest.raises(KakugoError, match="method"):
        student.train(str(tiny_model), dataset_dir, tmp_path / "o4", {"method": "qlora"})
    (tmp_path / "o5").mkdir()
    (tmp_path / "o5" / "keep.txt").write_text("precious")
    with pytest.raises(KakugoError, match="not empty"):
        student.train(str(tiny_model), dataset_dir, tmp_path / "o5", FAST)
    assert (tmp_path / "o5" / "keep.txt").read_text() == "precious"


def test_padded_batches_train_too_and_eval_steps_are_recorded(tmp_path, tiny_model,
                                                              dataset_dir):
    from kakugo_core.plugins import create

    out = create("students", "hf").train(str(tiny_model), dataset_dir, tmp_path / "padded", {
        **FAST, "packing": False, "epochs": 0.5, "eval_steps": 8, "learning_rate": 5e-3})
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["attn_implementation"] == "sdpa" and summary["options"]["packing"] is False
    assert summary["train_rows"] == summary["train_examples"] == 96
    validation = summary["losses"][0]["validation"]
    assert len(validation) >= 3 and validation[0][0] == 0  # before, then every 8 steps
    assert summary["final_validation_loss"] < summary["initial_validation_loss"]


def test_bf16_mixed_precision_keeps_fp32_master_weights_and_saves_bf16(tmp_path, tiny_model,
                                                                       dataset_dir):
    from transformers import AutoModelForCausalLM

    from kakugo_core.plugins import create

    out = create("students", "hf").train(str(tiny_model), dataset_dir, tmp_path / "bf16", {
        **FAST, "precision": "bf16", "epochs": 0.5, "learning_rate": 5e-3})
    summary = json.loads((out / "training_summary.json").read_text())
    assert (summary["dtype"], summary["compute_dtype"]) == ("float32", "bfloat16")
    assert summary["final_validation_loss"] < summary["initial_validation_loss"]
    assert str(AutoModelForCausalLM.from_pretrained(out).dtype) == "torch.bfloat16"
