"""Where generators read their inputs: target-language texts and English instruction sets,
from local files or (streaming) from Hugging Face Hub datasets via ``datasets``.

Local text corpora: a ``.jsonl`` file (one ``{"text": ...}`` per line), a ``.txt`` file (texts
separated by blank lines), or a folder of such files (read in name order).
Local instruction sets: ``.jsonl`` or ``.json`` in Infinity-Instruct's schema (``id``,
``conversations`` as ``[{"from": "human"|"gpt", "value": ...}]``, optional ``langdetect``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from kakugo_core.errors import KakugoError

ROLE_NAMES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}


def _is_local(source: str) -> bool:
    return source.startswith((".", "/", "~")) or Path(source).exists()


def _jsonl_rows(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise KakugoError(f"{path}:{number}: not a JSON line; fix the file") from None
            if not isinstance(row, dict):
                raise KakugoError(f"{path}:{number}: expected a JSON object per line")
            yield row


def _local_texts(path: Path) -> Iterator[str]:
    files = sorted(p for p in path.iterdir() if p.suffix in (".txt", ".jsonl")) if path.is_dir() \
        else [path]
    for file in files:
        if file.suffix == ".jsonl":
            for row in _jsonl_rows(file):
                text = row.get("text")
                if isinstance(text, str) and text.strip():
                    yield text.strip()
        else:
            for block in re.split(r"\n\s*\n", file.read_text("utf-8")):
                if block.strip():
                    yield block.strip()


def _hub_stream(source: str, name: str | None, what: str) -> Iterable[dict[str, Any]]:
    try:
        from datasets import load_dataset

        return load_dataset(source, name, split="train", streaming=True)
    except Exception as exc:  # offline, unknown repo or config, gated dataset, ...
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise KakugoError(
            f"cannot open {what} {source!r} (config {name!r}) from the Hub: {first}; "
            "point the source option at a local file or folder instead"
        ) from None


def corpus_texts(source: str, subset: str, limit: int) -> Iterator[str]:
    """Up to ``limit`` non-empty texts (``limit`` 0: all) in corpus order; ``subset`` is the Hub
    dataset's config (FineWeb-2 names them by language id, e.g. ``jav_Latn``)."""
    if _is_local(source):
        path = Path(source).expanduser()
        if not path.exists():
            raise KakugoError(f"context source {source!r} does not exist; give a file or folder")
        texts: Iterable[str] = _local_texts(path)
    else:
        rows = _hub_stream(source, subset, "the text corpus")
        texts = (
            str(row["text"]).strip() for row in rows if str(row.get("text") or "").strip()
        )
    return islice(texts, limit) if limit > 0 else iter(texts)


def conversation(row: dict[str, Any]) -> list[dict[str, str]] | None:
    """An Infinity-Instruct row's conversation as chat messages, or None when it is not a plain
    user/assistant exchange (system turns, unknown roles, empty turns)."""
    turns = row.get("conversations") or row.get("messages")
    if not isinstance(turns, list) or not turns:
        return None
    messages = []
    for turn in turns:
        if not isinstance(turn, dict):
            return None
        role = ROLE_NAMES.get(str(turn.get("from", turn.get("role", ""))))
        content = turn.get("value", turn.get("content"))
        if role is None or not isinstance(content, str) or not content.strip():
            return None
        messages.append({"role": role, "content": content})
    return messages


def instruction_rows(source: str, subset: str) -> Iterable[dict[str, Any]]:
    """Rows of an instruction set in Infinity-Instruct's schema: a local file's rows, or the
    Hub dataset itself (a streaming ``datasets.IterableDataset``, which can be shuffled)."""
    if not _is_local(source):
        return _hub_stream(source, subset or None, "the instruction set")
    path = Path(source).expanduser()
    if not path.exists():
        raise KakugoError(f"translate source {source!r} does not exist; give a JSON(L) file")
    if path.suffix == ".json":
        data = json.loads(path.read_text("utf-8"))
        if not isinstance(data, list):
            raise KakugoError(f"{path}: expected a JSON list of rows")
        return data
    return _jsonl_rows(path)
