"""GGUF files (llama.cpp's format) as models to score: finding the file, its quantization type
and a content revision. Reading needs the ``gguf`` package (``pip install "kakugo[gguf]"``)."""

from __future__ import annotations

import hashlib
import shutil
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kakugo_core.errors import KakugoError


def find_gguf(model: str | Path) -> Path | None:
    """The GGUF file ``model`` names: a ``.gguf`` file, or a folder holding exactly one and no
    transformers ``config.json``; None for anything else (a model folder, a Hub id)."""
    path = Path(model).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        return path
    if not path.is_dir() or (path / "config.json").exists():
        return None
    files = sorted(p for p in path.glob("*.gguf") if p.is_file())
    if len(files) > 1:
        names = ", ".join(p.name for p in files)
        raise KakugoError(f"{path} holds several GGUF files ({names}): name one of them")
    return files[0] if files else None


#: files of a transformers folder that transformers would read instead of the GGUF's own metadata
_FOLDER_FILES = ("config.json", "tokenizer_config.json", "tokenizer.json",
                 "special_tokens_map.json", "generation_config.json")


@contextmanager
def alone(path: Path) -> Iterator[Path]:
    """A folder that holds ``path`` and nothing transformers would read in its place: the
    file's own folder, or (for a GGUF beside a model's config and tokenizer files, as in a
    release folder) a temporary one with a link to it."""
    if not any((path.parent / name).exists() for name in _FOLDER_FILES):
        yield path.parent
        return
    with tempfile.TemporaryDirectory(prefix="kakugo-gguf-") as tmp:
        link = Path(tmp) / path.name
        try:
            link.symlink_to(path.resolve())
        except OSError:  # no symlinks here (some Windows setups): a copy
            shutil.copy2(path, link)
        yield Path(tmp)


def _reader(path: Path) -> Any:
    try:
        from gguf import GGUFReader
    except ImportError:
        raise KakugoError(
            "reading GGUF files needs the gguf package: pip install \"kakugo[gguf]\""
        ) from None
    try:
        return GGUFReader(str(path))
    except (ValueError, OSError) as exc:
        raise KakugoError(f"cannot read GGUF file {path}: {exc}") from None


def _file_type(path: Path) -> int | None:
    """``general.file_type`` of the file. transformers' reader is used where it exists (it
    skips the tokenizer's arrays; ``GGUFReader`` builds an object per vocabulary entry, which
    takes minutes for Gemma's 262k tokens on a busy CPU)."""
    try:
        from transformers.integrations.gguf.reader import read_gguf_metadata
    except ImportError:
        field = _reader(path).fields.get("general.file_type")
        return int(field.contents()) if field is not None and field.types else None
    try:
        meta, _ = read_gguf_metadata(str(path))
    except (ValueError, OSError, struct.error) as exc:
        raise KakugoError(f"cannot read GGUF file {path}: {exc}") from None
    value = meta.get("general.file_type")
    return int(value) if value is not None else None


def quant_type(path: Path) -> str:
    """The file's quantization type as llama.cpp names it (``Q4_K_M``, ``Q8_0``, ``F16``),
    from ``general.file_type`` through the gguf library's names; "unknown" without that key."""
    try:
        import gguf
    except ImportError:
        raise KakugoError(
            "reading GGUF files needs the gguf package: pip install \"kakugo[gguf]\""
        ) from None
    value = _file_type(path)
    if value is None:
        return "unknown"
    try:
        name = gguf.LlamaFileType(value).name
    except ValueError:
        return f"file_type_{value}"
    return name.removeprefix("MOSTLY_").removeprefix("ALL_")


def file_revision(path: Path) -> str:
    """``sha256:<16 hex>`` of the file's content (the store key of its results)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()[:16]


def load_options() -> dict[str, Any]:
    """``from_pretrained`` options that unpack GGUF weights into a plain model: transformers
    5.x keeps GGUF blocks unless told (and cannot then save or fine-tune the model); older
    releases always unpack."""
    try:
        from transformers import GgufConfig
    except ImportError:
        return {}
    return {"quantization_config": GgufConfig(dequantize=True)}
