"""Checks of a model source and a device before anything heavy loads, so a broken model folder,
a missing path or an absent GPU is one clear line instead of a transformers traceback."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from kakugo_core.errors import KakugoError

#: files any of which gives transformers a tokenizer without converting a slow one
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model",
                   "sentencepiece.bpe.model", "vocab.txt", "tokenizer.tiktoken")


def looks_like_path(name: str) -> bool:
    """Whether ``name`` is meant as a local path rather than a Hub id (``owner/name``)."""
    return (name.startswith(("/", "./", "../", "~", ".\\")) or name in (".", "..")
            or name.count("/") > 1 or os.sep != "/" and os.sep in name)


def check_safetensors(path: Path) -> None:
    """Read a safetensors file's header and check the file holds every tensor it lists."""
    size = path.stat().st_size
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                raise ValueError("shorter than its header")
            (length,) = struct.unpack("<Q", head)
            if length > 100_000_000:
                raise ValueError("impossible header length")
            if length > size - 8:
                raise KakugoError(f"{path}: truncated safetensors file (its header alone needs "
                                  f"{8 + length} bytes, the file has {size}); rebuild or "
                                  "re-download the model")
            header = json.loads(handle.read(length))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
        end = max((int(v["data_offsets"][1]) for k, v in header.items()
                   if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v),
                  default=0)
    except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError) as exc:
        raise KakugoError(f"{path}: not a valid safetensors file ({exc}); rebuild or re-download "
                          "the model") from None
    if 8 + length + end > size:
        raise KakugoError(f"{path}: truncated safetensors file ({size} of {8 + length + end} "
                          "bytes); rebuild or re-download the model")


def check_model_source(name: str, what: str = "model", tokenizer: bool = True,
                       contents: bool = True) -> None:
    """Fail with one line when ``name`` is a path that does not exist or a file, or (with
    ``contents``) a local model folder that cannot load (empty, no config.json, no weights, no
    tokenizer, damaged safetensors); a Hub id passes unchanged."""
    path = Path(name).expanduser()
    if not path.exists():
        if looks_like_path(name):
            raise KakugoError(f"{what} folder {name} does not exist")
        return
    if path.is_file() and path.suffix == ".gguf":
        return  # a GGUF file: transformers' GGUF loader reads it (and says what is wrong)
    if not path.is_dir():
        raise KakugoError(f"{what} {name} is a file; give a model folder or a Hub id")
    if not contents:
        return
    if not (path / "config.json").is_file() and any(path.glob("*.gguf")):
        return  # a folder holding a GGUF file
    if not (path / "config.json").is_file():
        raise KakugoError(f"{what} folder {name} has no config.json: not a model folder")
    weights = sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin"))
    if not weights and not list(path.glob("*.pt")):
        raise KakugoError(f"{what} folder {name} has no weights (*.safetensors or *.bin)")
    if tokenizer and not any((path / f).is_file() for f in TOKENIZER_FILES):
        raise KakugoError(f"{what} folder {name} has no tokenizer (tokenizer.json); copy the "
                          "tokenizer files of its base model there")
    for file in weights:
        if file.suffix == ".safetensors":
            check_safetensors(file)


def check_device(device: str | None) -> None:
    """Fail with one line when ``device`` asks for CUDA (or MPS) that this machine lacks."""
    if not device or device == "auto" or device == "cpu":
        return
    import torch

    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise KakugoError(f"device {device!r}: CUDA is not available on this machine "
                              "(use --device cpu or auto)")
        index = device.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise KakugoError(f"device {device!r}: this machine has "
                              f"{torch.cuda.device_count()} CUDA device(s)")
    elif device == "mps":
        if not torch.backends.mps.is_available():
            raise KakugoError("device 'mps': not available on this machine (use cpu or auto)")
    else:
        raise KakugoError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N")
