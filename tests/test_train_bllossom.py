"""Bllossom strategies: vocabulary expansion and bilingual alignment pretraining, alone and
composed with LoRA fine-tuning."""

from __future__ import annotations

import json

import pytest

from kakugo_core.errors import KakugoError


@pytest.fixture(scope="module")
def javanese(sib200_dir):
    from kakugo_core.testing import read_sib200_texts

    return read_sib200_texts(sib200_dir, ["jav_Latn"])


def test_expansion_lowers_fertility_and_initialises_new_rows(tiny_model, javanese):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from plugins.students import _vocab

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    old = model.get_input_embeddings().weight.detach().clone()
    heldout, corpus = javanese[:100], javanese[100:]
    before, _ = _vocab.fertility(tokenizer, heldout)
    new_tokenizer, report = _vocab.expand_vocabulary(model, tokenizer, corpus, 150,
                                                     heldout_fraction=0.1)
    after, _ = _vocab.fertility(new_tokenizer, heldout)
    assert len(report.new_token_ids) == 150 and report.fertility_after < report.fertility_before
    assert after < before - 0.05, (before, after)
    # text round-trips exactly and other languages still tokenize as before
    for text in heldout[:20]:
        assert new_tokenizer.decode(new_tokenizer(text, add_special_tokens=False)["input_ids"]) \
            == text
    english = "The weather in the city was warm and the people were happy."
    assert new_tokenizer(english)["input_ids"] == tokenizer(english)["input_ids"]
    # each new row is the mean of its base pieces' rows
    weights = model.get_input_embeddings().weight
    assert weights.shape[0] >= max(report.new_token_ids) + 1
    torch.testing.assert_close(weights[: old.shape[0]], old)
    word = report.examples[0]["word"]
    new_id = new_tokenizer.convert_tokens_to_ids(word)
    pieces = tokenizer.convert_tokens_to_ids(
        [t.value for t in tokenizer.backend_tokenizer.model.tokenize(word)])
    assert new_id in report.new_token_ids and len(pieces) > 1
    torch.testing.assert_close(weights[new_id], old[pieces].mean(0))
    assert new_tokenizer.chat_template == tokenizer.chat_template


def test_expansion_needs_text_to_learn_from(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from plugins.students import _vocab

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    with pytest.raises(KakugoError, match="no target-language word"):
        _vocab.expand_vocabulary(model, tokenizer, ["a b", "c d"], 10)
    with pytest.raises(KakugoError, match="does not exist"):
        _vocab.read_corpus("/nonexistent/corpus.txt")


def _by_id(sib200_dir, lang):
    rows = {}
    for split in ("train", "dev", "test"):
        for line in (sib200_dir / lang / f"{split}.tsv").read_text().splitlines()[1:]:
            index_id, _category, text = line.split("\t", 2)
            rows[index_id] = text
    return rows


def test_parallel_alignment_texts_pair_translations(sib200_dir):
    from plugins.students import _alignment

    texts = _alignment.parallel_texts(sib200_dir, ["jav_Latn", "eng_Latn"])
    jav, eng = _by_id(sib200_dir, "jav_Latn"), _by_id(sib200_dir, "eng_Latn")
    pairs = {(jav[i], eng[i]) for i in jav} | {(eng[i], jav[i]) for i in jav}
    assert len(texts) == 2 * len(jav)
    assert all(tuple(text.split("\n")) in pairs for text in texts)
    with pytest.raises(KakugoError, match="at least two"):
        _alignment.parallel_texts(sib200_dir, ["jav_Latn"])


def test_vocab_expansion_alignment_and_lora_compose(tmp_path, tiny_model, sib200_dir,
                                                    dataset_builder):
    """The full Bllossom recipe on the tiny model: expand, align on parallel text, LoRA SFT; the
    result loads in plain transformers, generates and uses the new tokens."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kakugo_core.plugins import create

    dataset = dataset_builder.build_dataset(sib200_dir, tmp_path / "dataset", 40, 8)
    out = create("students", "hf").train(str(tiny_model), dataset, tmp_path / "model", {
        "method": "lora", "epochs": 1.0, "learning_rate": 1e-2, "max_length": 512,
        "gradient_accumulation_steps": 1, "per_device_batch_size": 2, "logging_steps": 1,
        "vocab_expansion_tokens": 64, "alignment_pretraining": True,
        "alignment_source": str(sib200_dir), "alignment_languages": ["jav_Latn", "eng_Latn"],
        "alignment_epochs": 0.05, "alignment_learning_rate": 1e-3,
    })
    summary = json.loads((out / "training_summary.json").read_text())
    vocab = summary["vocab_expansion"]
    assert vocab["added_tokens"] == 64
    assert vocab["fertility_after"] < vocab["fertility_before"]
    assert summary["alignment"]["texts"] > 1000
    stages = [s["stage"] for s in summary["losses"]]
    assert stages == ["alignment", "sft"] and all(s["train"] for s in summary["losses"])
    assert summary["final_validation_loss"] < summary["initial_validation_loss"]

    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    base_rows = AutoModelForCausalLM.from_pretrained(tiny_model).get_input_embeddings().weight
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer) > base_rows.shape[0]
    adapter_cfg = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter_cfg["trainable_token_indices"]
    text = "Ing kutha iku akeh wong"
    assert max(tokenizer(text)["input_ids"]) >= base_rows.shape[0] or \
        len(tokenizer(text)["input_ids"]) <= len(AutoTokenizer.from_pretrained(tiny_model)(
            text)["input_ids"])
    ids = tokenizer.apply_chat_template(
        [{"role": "system", "content": "Answer concisely."},
         {"role": "user", "content": "Terjemahna menyang basa Jawa: The river is long."}],
        add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        generated = model.generate(**ids, max_new_tokens=8, do_sample=False)
    assert generated.shape[1] > ids["input_ids"].shape[1]
