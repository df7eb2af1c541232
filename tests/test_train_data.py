"""SFT data: the assistant-only mask, truncation rules, packing without cross-attention, and
clear errors for datasets the trainer cannot use."""

from __future__ import annotations

import pytest

from kakugo_core.errors import KakugoError


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.fixture(scope="module")
def sample_rows(sib200_dir, dataset_builder):
    return dataset_builder.rows(sib200_dir, 12)


def _decoded_assistant_text(tokenizer, ids, mask):
    return tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if m])


def test_mask_covers_exactly_the_assistant_turns(tokenizer, sample_rows):
    from plugins.students import _sft_data as data

    for row in sample_rows:
        ids, mask = data.assistant_mask(tokenizer, data.conversation(row), True)
        expected = "".join(m["content"] + "<|end|>" for m in row["messages"]
                           if m["role"] == "assistant")
        assert _decoded_assistant_text(tokenizer, ids, mask) == expected
        # nothing of the system prompt or user turns is in the loss
        rendered_other = tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if not m])
        assert row["system"] in rendered_other
        assert all(m["content"] in rendered_other for m in row["messages"]
                   if m["role"] == "user")


def test_prefix_rendering_finds_the_same_mask_as_generation_blocks(tokenizer, sample_rows):
    from plugins.students import _sft_data as data

    for row in sample_rows:
        messages = data.conversation(row)
        assert data.assistant_mask(tokenizer, messages, False) == \
            data.assistant_mask(tokenizer, messages, True)


def test_template_without_generation_blocks_uses_prefix_rendering(tiny_model, sample_rows):
    from transformers import AutoTokenizer

    from kakugo_core.testing import CHAT_TEMPLATE
    from plugins.students import _sft_data as data

    plain = AutoTokenizer.from_pretrained(tiny_model)
    plain.chat_template = CHAT_TEMPLATE.replace("{% generation %}", "").replace(
        "{% endgeneration %}", "")
    assert not data.has_generation_blocks(plain)
    example = data.tokenize_row(plain, sample_rows[3], 4096)
    kept = [t for t in example.labels if t != data.IGNORE_INDEX]
    text = plain.decode(kept)
    assert text.count("<|end|>") == 2 and "Topike apa?" not in text


def test_empty_mask_fails_loudly(tiny_model, sample_rows):
    from transformers import AutoTokenizer

    from plugins.students import _sft_data as data

    silent = AutoTokenizer.from_pretrained(tiny_model)
    silent.chat_template = ("{% for m in messages %}{% if m['role'] != 'assistant' %}"
                            "{{ m['content'] }}{% endif %}{% endfor %}"
                            "{% generation %}{% endgeneration %}")
    with pytest.raises(KakugoError, match="mask is empty"):
        data.tokenize_row(silent, sample_rows[0], 4096)


def test_truncation_that_removes_a_whole_answer_fails_or_drops(tokenizer, sample_rows):
    from plugins.students import _sft_data as data

    row = sample_rows[3]  # two turns
    ids, mask = data.assistant_mask(tokenizer, data.conversation(row))
    first_answer_start = mask.index(1)
    with pytest.raises(KakugoError, match="whole answer"):
        data.tokenize_row(tokenizer, row, first_answer_start)
    assert data.tokenize_row(tokenizer, row, first_answer_start, overlong="drop") is None
    # cutting inside the last answer keeps what fits
    cut = len(ids) - 2
    example = data.tokenize_row(tokenizer, row, cut)
    assert len(example) == cut and example.input_ids == ids[:cut]


def test_rows_must_alternate_user_and_assistant(tokenizer):
    from plugins.students import _sft_data as data

    bad = {"system": "", "messages": [{"role": "assistant", "content": "hi"}]}
    with pytest.raises(KakugoError, match="alternate"):
        data.tokenize_row(tokenizer, bad, 100)


def test_packing_fills_bins_and_restarts_positions(tokenizer, sample_rows):
    from plugins.students import _sft_data as data

    examples = data.tokenize_split(tokenizer, sample_rows, 4096)
    bins = data.pack_examples(examples, 512)
    assert sorted(id(e) for b in bins for e in b) == sorted(id(e) for e in examples)
    assert all(sum(len(e) for e in b) <= 512 for b in bins)
    row = data.packed_row(bins[0])
    starts = [i for i, p in enumerate(row["position_ids"]) if p == 0]
    assert len(starts) == len(bins[0])
    assert all(row["labels"][s] == data.IGNORE_INDEX for s in starts)
    batch = data.PackedCollator()([row])
    assert batch["cu_seq_lens_q"].tolist() == [*starts, len(row["input_ids"])]
    assert batch["max_length_q"] == max(len(e) for e in bins[0])


@pytest.mark.parametrize("attention", ["sdpa", "eager", "sdpa_varlen"])
def test_packed_examples_do_not_attend_to_each_other(attention, tiny_model, tokenizer,
                                                     sample_rows):
    """Logits of a packed row equal each example's logits computed alone."""
    import torch
    from transformers import AutoModelForCausalLM

    from plugins.students import _sft_data as data
    from plugins.students import _varlen

    _varlen.register()
    model = AutoModelForCausalLM.from_pretrained(tiny_model,
                                                 attn_implementation=attention).eval()
    assert model.config.use_cache  # the case where transformers would skip the packed mask
    examples = data.tokenize_split(tokenizer, sample_rows[:3], 4096)
    batch = data.PackedCollator()([data.packed_row(examples)])
    with torch.no_grad():
        packed = model(**batch).logits[0]  # exactly what the Trainer passes
        offset = 0
        for example in examples:
            alone = model(input_ids=torch.tensor([example.input_ids])).logits[0]
            torch.testing.assert_close(packed[offset:offset + len(example)], alone,
                                       atol=1e-4, rtol=1e-4)
            offset += len(example)


def test_padded_collator_masks_padding(tokenizer, sample_rows):
    from plugins.students import _sft_data as data

    examples = data.tokenize_split(tokenizer, sample_rows[:4], 4096)
    rows = data.build_rows(examples, packing=False, max_length=4096)
    batch = data.PaddedCollator(tokenizer.pad_token_id)(rows)
    width = max(len(e) for e in examples)
    assert batch["input_ids"].shape == (4, width)
    assert int(batch["attention_mask"].sum()) == sum(len(e) for e in examples)
    assert bool((batch["labels"][batch["attention_mask"] == 0] == data.IGNORE_INDEX).all())


def test_dataset_errors_are_one_line(tmp_path, sib200_dir, dataset_builder):
    from datasets import Dataset, DatasetDict

    from plugins.students import _sft_data as data

    with pytest.raises(KakugoError, match="does not exist"):
        data.load_kakugo_dataset(tmp_path / "missing")
    (tmp_path / "junk").mkdir()
    with pytest.raises(KakugoError, match="save_to_disk"):
        data.load_kakugo_dataset(tmp_path / "junk")
    DatasetDict({"train": Dataset.from_list([{"text": "x"}])}).save_to_disk(tmp_path / "cols")
    with pytest.raises(KakugoError, match="lacks column") as info:
        data.load_kakugo_dataset(tmp_path / "cols")
    assert "\n" not in str(info.value)
    good = dataset_builder.build_dataset(sib200_dir, tmp_path / "good", 6, 3)
    loaded = data.load_kakugo_dataset(good)
    assert set(loaded) == {"train", "validation"} and len(loaded["train"]) == 6
    assert set(data.CONTRACT_COLUMNS) <= set(loaded["train"].column_names)
