"""Offline test support: a tiny causal LM built from scratch in seconds.

``build_tiny_model`` trains a byte-level BPE tokenizer with ``tokenizers`` on the given texts,
gives it a chat template with system, user and assistant roles (assistant turns wrapped in
``{% generation %}`` so ``return_assistant_tokens_mask`` works), and saves a two-layer Llama with
head_dim 32 (what vLLM's CPU kernels need) as safetensors. Nothing touches the network.
Plugin authors may use it in their own tests.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|assistant|>\n' }}{% generation %}{{ message['content'] + '<|end|>' }}{% endgeneration %}"
    "{{ '\n' }}"
    "{% else %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<pad>", "<s>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]


def read_sib200_texts(data_dir: str | Path, languages: Sequence[str] = ("eng_Latn",)) -> list[str]:
    """Sentences from SIB-200 TSV files (``index_id, category, text``) of the given languages."""
    texts: list[str] = []
    for lang in languages:
        for split in ("train", "dev", "test"):
            path = Path(data_dir) / lang / f"{split}.tsv"
            if path.exists():
                lines = path.read_text("utf-8").splitlines()[1:]
                texts.extend(line.split("\t", 2)[2] for line in lines if line.count("\t") >= 2)
    return texts


def build_tiny_model(
    out_dir: str | Path,
    texts: Iterable[str],
    vocab_size: int = 1024,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 2,
    max_positions: int = 2048,
    seed: int = 0,
) -> Path:
    """Build (or reuse, when the same inputs built it before) a tiny Llama in ``out_dir``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    texts = list(texts)
    out = Path(out_dir)
    digest = hashlib.sha256(
        json.dumps([texts, vocab_size, hidden_size, num_layers, num_heads, max_positions, seed])
        .encode()
    ).hexdigest()
    stamp = out / ".kakugo-tiny-model"
    if stamp.exists() and stamp.read_text() == digest:
        return out

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="<|end|>",
        pad_token="<pad>",
        model_max_length=max_positions,
    )
    tokenizer.chat_template = CHAT_TEMPLATE

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        head_dim=hidden_size // num_heads,
        max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    stamp.write_text(digest)
    return out
