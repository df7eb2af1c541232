"""Files of a release: which files of a model folder ship, how big the model is, content hashes,
and replacing a folder on disk without ever leaving half of it written."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

from kakugo_core.errors import KakugoError

WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
#: training leftovers that never belong in a release
EXCLUDED_NAMES = frozenset({
    "optimizer.pt", "scheduler.pt", "trainer_state.json", "training_args.bin", "rng_state.pth",
    "README.md",  # the release writes its own card
})


def weight_files(model_dir: Path) -> list[Path]:
    """The weight files of a model folder (top level, like ``save_pretrained`` writes them)."""
    found: list[Path] = []
    for pattern in WEIGHT_PATTERNS:
        found.extend(p for p in model_dir.glob(pattern) if p.is_file())
    return sorted(found)


def check_model_dir(model_dir: Path) -> None:
    """A clear error unless ``model_dir`` holds a config and weights."""
    if not model_dir.is_dir():
        raise KakugoError(f"model folder {model_dir} does not exist; pass the folder "
                          "`kakugo train` wrote (with config.json and *.safetensors)")
    if not weight_files(model_dir):
        raise KakugoError(f"model folder {model_dir} has no weights (*.safetensors); pass the "
                          "folder `kakugo train` wrote, or save the model with save_pretrained")
    if not (model_dir / "config.json").is_file():
        raise KakugoError(f"model folder {model_dir} has no config.json; save the model with "
                          "save_pretrained")


def model_files(model_dir: Path) -> list[Path]:
    """Top-level files of a model folder that a release ships: weights, config, tokenizer,
    chat template, generation config, training summary. Hidden files, sub-folders (checkpoints)
    and optimizer state are left out."""
    return sorted(
        p for p in model_dir.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.name not in EXCLUDED_NAMES
        and not p.name.startswith("rng_state")
    )


def parameter_count(model_dir: Path) -> int:
    """Parameters stored in the model's safetensors files, read from their headers only."""
    total = 0
    for path in model_dir.glob("*.safetensors"):
        with path.open("rb") as fh:
            raw = fh.read(8)
            if len(raw) != 8:
                raise KakugoError(f"{path} is not a safetensors file (truncated header)")
            (length,) = struct.unpack("<Q", raw)
            try:
                header = json.loads(fh.read(length))
            except (ValueError, UnicodeDecodeError):
                raise KakugoError(f"{path} is not a safetensors file (bad header)") from None
        for name, info in header.items():
            if name == "__metadata__":
                continue
            count = 1
            for dim in info["shape"]:
                count *= int(dim)
            total += count
    return total


def size_label(parameters: int) -> str:
    """A short size for repository names: 3_000_000_000 -> "3b", 1_500_000_000 -> "1.5b",
    150_000 -> "150k"."""
    for unit, scale in (("b", 1e9), ("m", 1e6), ("k", 1e3)):
        if parameters >= scale:
            value = parameters / scale
            if value >= 10 or abs(value - round(value)) < 0.05:
                return f"{round(value)}{unit}"
            return f"{value:.1f}".rstrip("0").rstrip(".") + unit
    return str(parameters)


def human_size(size: int) -> str:
    """A file size as people read it: ``812 B``, ``317.6 KB``, ``542.8 MB`` (powers of 1000)."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover  (the loop returns)


def iter_files(folder: Path) -> Iterator[Path]:
    """Every file under ``folder``, sorted by relative path (hidden ones included)."""
    yield from sorted((p for p in folder.rglob("*") if p.is_file()),
                      key=lambda p: p.relative_to(folder).as_posix())


def git_blob_sha1(path: Path) -> str:
    """The git object id of a file (what the Hub reports for regular files)."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    """SHA-256 of a file (what the Hub reports for LFS files)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tree_digest(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``folder``."""
    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in iter_files(folder)}


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (weights can be GBs), copying when linking is impossible."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)




def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def staging_dir(destination: Path) -> Path:
    """A fresh empty folder beside ``destination`` (same file system, so renames are atomic),
    with the permissions a plain ``mkdir`` would give it."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}.staging-"))
    os.chmod(staged, 0o777 & ~_umask())
    return staged


def replace_dir(staged: Path, destination: Path) -> None:
    """Put a fully written ``staged`` folder at ``destination``: the old folder is moved aside
    first and deleted only after the new one is in place."""
    old = None
    if destination.exists():
        old = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}.old-"))
        os.rmdir(old)
        os.replace(destination, old)
    try:
        os.replace(staged, destination)
    except BaseException:
        if old is not None:
            os.replace(old, destination)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
