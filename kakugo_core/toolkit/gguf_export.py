"""GGUF exports of a transformers model folder, for llama.cpp, Ollama and LM Studio.

Written with the ``gguf`` library (llama.cpp's own Python package: its writer, tensor-name map
and quantizers), following the conventions of llama.cpp's ``convert_hf_to_gguf.py`` for the
architectures Kakugo students use: Llama (the demo's tiny student; query/key rows permuted as
llama.cpp expects) and Gemma 3 (norm weights stored as 1 + w). Tensors of two or more dimensions
take the requested type; norms and other vectors stay F32, as llama.cpp writes them. The
tokenizer goes in as llama.cpp reads it: a byte-level BPE (``gpt2``) with its merges, or a
SentencePiece-style BPE (``llama``) with merge-order scores, plus the special token ids and the
chat template.

    from kakugo_core.toolkit.gguf_export import export_gguf
    export_gguf("runs/demo-jav_Latn/train/model", "student-Q8_0.gguf", "Q8_0")
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kakugo_core.errors import KakugoError

#: the GGUF types an export can have (``release.gguf`` takes these names)
GGUF_TYPES = ("F32", "F16", "Q8_0")
#: Hugging Face ``model_type`` -> GGUF architecture name (``gguf.MODEL_ARCH_NAMES``)
SUPPORTED_ARCHITECTURES = {"llama": "llama", "gemma3_text": "gemma3", "gemma3": "gemma3"}


def gguf_file_name(stem: str, gguf_type: str) -> str:
    """``<stem>-<TYPE>.gguf``: the quantization tag Ollama and llama.cpp's ``-hf`` pick by."""
    return f"{stem}-{gguf_type}.gguf"


def check_exportable(model_dir: str | Path, types: list[str] | tuple[str, ...] = ()) -> None:
    """A clear error unless ``model_dir``'s architecture and every type in ``types`` can be
    exported (called before any work, so a release fails before it writes anything)."""
    unknown = [t for t in types if t not in GGUF_TYPES]
    if unknown:
        raise KakugoError(f"unknown GGUF type {unknown[0]!r}; choose from {', '.join(GGUF_TYPES)}")
    model_type = _config(Path(model_dir)).get("model_type", "?")
    if model_type not in SUPPORTED_ARCHITECTURES:
        raise KakugoError(
            f"GGUF export supports {', '.join(sorted(set(SUPPORTED_ARCHITECTURES)))} models, not "
            f"{model_type!r}; release without GGUF files with --gguf none (release.gguf = [])")
    try:
        import gguf  # noqa: F401
    except ImportError:
        raise KakugoError("GGUF export needs the `gguf` package: pip install 'kakugo[gguf]' "
                          "(or set release.gguf = [])") from None


def export_gguf(model_dir: str | Path, out_path: str | Path, gguf_type: str = "F16", *,
                name: str | None = None) -> Path:
    """Write ``model_dir`` (config, safetensors weights, tokenizer) as one GGUF file of
    ``gguf_type`` (F32, F16 or Q8_0) at ``out_path``; written to a temporary name first and
    renamed, so a crash leaves no half-written file. Returns ``out_path``."""
    import gguf
    import numpy as np

    model_dir, out_path = Path(model_dir), Path(out_path)
    check_exportable(model_dir, [gguf_type])
    config = _config(model_dir)
    arch_name = SUPPORTED_ARCHITECTURES[config["model_type"]]
    arch = next(a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == arch_name)
    blocks = int(config["num_hidden_layers"])
    names = gguf.get_tensor_name_map(arch, blocks)
    file_type = {"F32": gguf.LlamaFileType.ALL_F32, "F16": gguf.LlamaFileType.MOSTLY_F16,
                 "Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[gguf_type]

    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(out_path.name + ".partial")
    writer = gguf.GGUFWriter(str(partial), arch_name)
    try:
        writer.add_name(name or config.get("_name_or_path") or model_dir.name)
        writer.add_file_type(file_type)
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        _add_hyperparameters(writer, arch_name, config)
        _add_tokenizer(writer, model_dir, config, arch_name)
        for hf_name, tensor in _tensors(model_dir, config):
            target = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
            if target is None:
                raise KakugoError(f"GGUF export: no GGUF name for tensor {hf_name!r} of a "
                                  f"{config['model_type']} model")
            data = _convert(tensor, hf_name, arch_name, config).astype(np.float32)
            _add_tensor(writer, target, data, gguf_type)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(partial, out_path)
    finally:
        partial.unlink(missing_ok=True)
    return out_path


def _config(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "config.json"
    if not path.is_file():
        raise KakugoError(f"{model_dir} has no config.json: not a transformers model folder")
    config = json.loads(path.read_text("utf-8"))
    if "text_config" in config and "num_hidden_layers" not in config:
        config = {**config["text_config"], "tie_word_embeddings":
                  config.get("tie_word_embeddings", True)}
    return config


def _add_hyperparameters(writer: Any, arch: str, config: dict[str, Any]) -> None:
    heads = int(config["num_attention_heads"])
    hidden = int(config["hidden_size"])
    head_dim = int(config.get("head_dim") or hidden // heads)
    writer.add_context_length(int(config.get("max_position_embeddings", 2048)))
    writer.add_embedding_length(hidden)
    writer.add_block_count(int(config["num_hidden_layers"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_head_count(heads)
    writer.add_head_count_kv(int(config.get("num_key_value_heads") or heads))
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-6)))
    writer.add_vocab_size(int(config["vocab_size"]))
    writer.add_rope_freq_base(_rope_theta(config))
    if arch == "llama":
        writer.add_rope_dimension_count(head_dim)
        if head_dim != hidden // heads:
            writer.add_key_length(head_dim)
            writer.add_value_length(head_dim)
    else:  # gemma3: separate key/value length and the sliding window
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
        if config.get("sliding_window"):
            writer.add_sliding_window(int(config["sliding_window"]))
        if config.get("final_logit_softcapping"):
            writer.add_final_logit_softcapping(float(config["final_logit_softcapping"]))


def _rope_theta(config: dict[str, Any]) -> float:
    """The (global) RoPE base: ``rope_theta``, or transformers 5's ``rope_parameters``."""
    params = config.get("rope_parameters") or {}
    if "full_attention" in params:
        params = params["full_attention"]
    scaling = params.get("rope_type", "default")
    if scaling not in ("default", None):
        raise KakugoError(f"GGUF export does not handle RoPE scaling {scaling!r} yet")
    return float(params.get("rope_theta") or config.get("rope_theta") or 10000.0)


def _tensors(model_dir: Path, config: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(name, float32 numpy array) of every weight, tied output weights left out."""
    from safetensors import safe_open

    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise KakugoError(f"{model_dir} has no *.safetensors weights to export")
    tied = config.get("tie_word_embeddings", True)
    for path in files:
        with safe_open(str(path), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
                if tied and key == "lm_head.weight":
                    continue
                if key.endswith("rotary_emb.inv_freq"):
                    continue
                yield key, handle.get_tensor(key).float().numpy()


def _convert(data: Any, name: str, arch: str, config: dict[str, Any]) -> Any:
    """The llama.cpp form of one tensor."""
    if arch == "llama" and name.endswith(("q_proj.weight", "k_proj.weight")):
        heads = int(config["num_attention_heads"])
        if name.endswith("k_proj.weight"):
            heads = int(config.get("num_key_value_heads") or heads)
        return _permute(data, heads)
    if arch == "gemma3" and name.endswith("norm.weight"):
        return data + 1.0  # Gemma's RMSNorm scales by (1 + w); llama.cpp's by w
    return data


def _permute(weights: Any, heads: int) -> Any:
    """llama.cpp's rotary layout of a query/key projection (``LlamaModel.permute``)."""
    return (weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def _add_tensor(writer: Any, name: str, data: Any, gguf_type: str) -> None:
    import gguf
    import numpy as np

    if data.ndim < 2 or gguf_type == "F32":
        writer.add_tensor(name, data.astype(np.float32))
    elif gguf_type == "F16":
        writer.add_tensor(name, data.astype(np.float16))
    elif data.shape[-1] % gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q8_0][0]:
        writer.add_tensor(name, data.astype(np.float16))  # rows too short for Q8_0 blocks
    else:
        quantized = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
        writer.add_tensor(name, quantized, raw_dtype=gguf.GGMLQuantizationType.Q8_0)


def _add_tokenizer(writer: Any, model_dir: Path, config: dict[str, Any], arch: str) -> None:
    import gguf
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    model = spec["model"]
    if model.get("type") != "BPE":
        raise KakugoError(f"GGUF export handles BPE tokenizers, not {model.get('type')!r}")
    vocab: dict[str, int] = model["vocab"]
    added = {t["id"]: t for t in spec.get("added_tokens", [])}
    size = max(int(config["vocab_size"]), len(tokenizer))
    tokens = [f"[PAD{i}]" for i in range(size)]
    types = [gguf.TokenType.UNUSED] * size
    for token, index in vocab.items():
        if index < size:
            tokens[index], types[index] = token, gguf.TokenType.NORMAL
    for index, token in added.items():
        if index < size:
            tokens[index] = token["content"]
            types[index] = gguf.TokenType.CONTROL if token.get("special") \
                else gguf.TokenType.USER_DEFINED
    byte_level = _is_byte_level(spec)
    if byte_level:
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre("gpt-2")
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
        writer.add_token_merges(merges)
    else:  # SentencePiece-style BPE: byte fallback tokens, ▁ for spaces
        unk = model.get("unk_token")
        scores, rank = [], 0
        for index, token in enumerate(tokens):
            if token.startswith("<0x") and token.endswith(">") and len(token) == 6:
                types[index] = gguf.TokenType.BYTE
            elif token == unk:
                types[index] = gguf.TokenType.UNKNOWN
            if types[index] == gguf.TokenType.NORMAL:
                scores.append(float(-rank))  # merge priority: the vocabulary's order
                rank += 1
            else:
                scores.append(0.0 if types[index] == gguf.TokenType.BYTE else -1000.0)
            if arch == "gemma3" and len(token) > 1 and set(token) == {"\u2581"}:
                # Gemma's whitespace runs are user-defined pieces spelled with real spaces
                tokens[index], types[index] = " " * len(token), gguf.TokenType.USER_DEFINED
        writer.add_tokenizer_model("llama")
        writer.add_tokenizer_pre("default")
        writer.add_token_list(tokens)
        writer.add_token_scores(scores)
        writer.add_token_types(types)
        writer.add_add_space_prefix(_adds_space_prefix(spec))
    for attribute, add in (("bos_token_id", writer.add_bos_token_id),
                           ("eos_token_id", writer.add_eos_token_id),
                           ("unk_token_id", writer.add_unk_token_id),
                           ("pad_token_id", writer.add_pad_token_id)):
        value = getattr(tokenizer, attribute, None)
        if value is not None:
            add(int(value))
    ids = tokenizer("a")["input_ids"]  # what the tokenizer adds around text, as it does it
    writer.add_add_bos_token(bool(ids) and ids[0] == tokenizer.bos_token_id)
    writer.add_add_eos_token(len(ids) > 1 and ids[-1] == tokenizer.eos_token_id)
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)


def _is_byte_level(spec: dict[str, Any]) -> bool:
    found = json.dumps(spec.get("pre_tokenizer")) + json.dumps(spec.get("decoder"))
    return '"ByteLevel"' in found


def _adds_space_prefix(spec: dict[str, Any]) -> bool:
    found = json.dumps(spec.get("pre_tokenizer")) + json.dumps(spec.get("normalizer"))
    return '"prepend_scheme": "always"' in found or '"Prepend"' in found
