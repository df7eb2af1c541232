"""Model checks before loading: a local folder's weights, tokenizer and safetensors headers, and
the device, each a one-line error instead of a library's traceback."""

from __future__ import annotations

from kakugo_core.models import check_device, check_model_source, check_safetensors, looks_like_path

__all__ = ["check_device", "check_model_source", "check_safetensors", "looks_like_path"]
