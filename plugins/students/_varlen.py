"""Variable-length attention for packed rows without flash-attention (CPU, or GPUs without
``flash_attn``).

transformers handles packed rows under sdpa with one block-diagonal mask over the whole row, so
attention costs grow with the square of the *row* length and run on sdpa's masked (math) path.
``sdpa_varlen`` instead runs causal sdpa once per packed example, using the sequence boundaries
(``cu_seq_lens_q``) that :class:`plugins.students._sft_data.PackedCollator` passes along, exactly as
flash-attention's varlen kernel does on GPU. Without boundaries (evaluation of unpacked batches,
generation) it is plain sdpa.
"""

from __future__ import annotations

from typing import Any

NAME = "sdpa_varlen"


def varlen_sdpa_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
                          dropout: float = 0.0, scaling: float | None = None,
                          is_causal: bool | None = None, **kwargs: Any) -> tuple[Any, None]:
    """Attention with the signature transformers' attention interface expects."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    boundaries = kwargs.get("cu_seq_lens_q")
    if boundaries is None or query.shape[0] != 1 or query.shape[2] != key.shape[2]:
        return sdpa_attention_forward(module, query, key, value, attention_mask,
                                      dropout=dropout, scaling=scaling, is_causal=is_causal,
                                      **kwargs)
    groups = query.shape[1] // key.shape[1]
    if groups > 1:
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    cuts = [int(x) for x in boundaries.tolist()]
    pieces = [
        torch.nn.functional.scaled_dot_product_attention(
            query[:, :, start:end], key[:, :, start:end], value[:, :, start:end],
            dropout_p=dropout if module.training else 0.0, scale=scaling, is_causal=True)
        for start, end in zip(cuts[:-1], cuts[1:], strict=True) if end > start
    ]
    output = torch.cat(pieces, dim=2)
    return output.transpose(1, 2).contiguous(), None


def register() -> str:
    """Make ``attn_implementation="sdpa_varlen"`` available; return the name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, varlen_sdpa_attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    return NAME
