"""Writing files so that a crash never leaves half of one: a temporary file beside the target,
then a rename. Plugins use these too."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from kakugo_core.errors import KakugoError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path``; the old file survives a failure.
    An operating-system error becomes a one-line :class:`KakugoError`."""
    from kakugo_core.secrets import redact

    path = Path(path)
    text = redact(text)  # whatever a server echoed back, no secret reaches a file
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual mode
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise KakugoError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return path


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON (non-ASCII kept, unknown types as strings)."""
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
    return write_text_atomic(path, text)


#: files whose content makes a local model what it is: weights, config, tokenizer, chat template
MODEL_FILE_SUFFIXES = (".safetensors", ".bin", ".pt", ".json", ".model", ".txt", ".jinja")


def model_folder_revision(folder: str | Path) -> str:
    """``sha256:<16 hex>`` over a local model folder's weight, config and tokenizer files, so
    results of a folder whose contents change never share a store key; "" when ``folder`` is
    not a local folder (a Hub id). Every scoring backend uses this, so their results agree."""
    import hashlib

    root = Path(folder)
    if not root.is_dir():
        return ""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in MODEL_FILE_SUFFIXES:
            digest.update(str(path.relative_to(root)).encode())
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return "sha256:" + digest.hexdigest()[:16]
