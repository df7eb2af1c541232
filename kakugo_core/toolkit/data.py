"""Data sources for benchmarks: local files (``--data-dir``: JSONL, JSON, TSV, parquet), files
bundled with a plugin, or a Hugging Face dataset at a revision resolved to its commit.

Every loader returns a :class:`Split` whose ``source`` label (``local:<digest>``,
``bundled:<digest>``, ``hub:<id>@<commit>``) goes into the prompt hash and the stored result, so
a score always names the exact data it came from. Cheap to import (``datasets`` and
``huggingface_hub`` are imported only when the Hub is asked).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from kakugo_core.errors import KakugoError

#: the real SIB-200 sample bundled with Kakugo (five languages), FLORES-parallel by index_id
BUNDLED_SIB200 = Path(__file__).resolve().parent.parent / "data" / "sib200"
LOCAL_SUFFIXES = (".jsonl", ".json", ".tsv", ".parquet")
Row = dict[str, Any]


@dataclass
class Split:
    """Rows of one split and where they came from (the label goes into the prompt hash)."""

    rows: list[Row]
    source: str


def _offline() -> bool:
    return any(
        os.environ.get(var, "") not in ("", "0", "false", "no")
        for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


_COMMIT = re.compile(r"[0-9a-f]{40}")
_resolved: dict[tuple[str, str], str] = {}


def resolve_revision(hub_id: str, revision: str) -> str:
    """The commit sha that ``revision`` (a branch, tag or sha) of dataset ``hub_id`` names now,
    so results record exactly which data they came from. Asked once per process."""
    if _COMMIT.fullmatch(revision):
        return revision
    key = (hub_id, revision)
    if key not in _resolved:
        try:
            from huggingface_hub import HfApi

            sha = HfApi().dataset_info(hub_id, revision=revision).sha
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise KakugoError(f"cannot resolve {hub_id}@{revision} on the Hub: {first}; check "
                              "the dataset id, the revision and your login") from None
        if not sha:
            raise KakugoError(f"the Hub gave no commit for {hub_id}@{revision}")
        _resolved[key] = sha
    return _resolved[key]


def find_local_file(data_dir: Path, benchmark: str, code: str, split: str) -> Path | None:
    """``DIR/<benchmark>/<code>/<split>.<ext>`` or ``DIR/<code>/<split>.<ext>``."""
    for base in (data_dir / benchmark / code, data_dir / code):
        for suffix in LOCAL_SUFFIXES:
            path = base / f"{split}{suffix}"
            if path.is_file():
                return path
    return None


def open_regular(path: Path, what: str, max_bytes: int | None = None,
                 error: type[KakugoError] = KakugoError) -> BinaryIO:
    """``path`` opened for binary reading when it is a regular file (not a device such as
    /dev/zero, a FIFO or a folder, which could hang or never end) of at most ``max_bytes``."""
    import stat

    info = path.stat()  # before opening: opening a FIFO would wait for a writer
    if not stat.S_ISREG(info.st_mode):
        kind = ("a directory" if stat.S_ISDIR(info.st_mode) else "a FIFO"
                if stat.S_ISFIFO(info.st_mode) else "a device or special file")
        raise error(f"{path}: is {kind}, not a regular file; give a {what} file")
    if max_bytes is not None and info.st_size > max_bytes:
        raise error(f"{path}: {info.st_size} bytes, over the {max_bytes}-byte limit for a "
                    f"{what} file")
    return path.open("rb")


def _lines(path: Path) -> Iterator[str]:
    """The text lines of a UTF-8 file (a BOM dropped), one at a time."""
    with open_regular(path, "benchmark data") as raw, \
            io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as fh:
        yield from fh


def _parsed_rows(path: Path) -> Iterator[Any]:
    """The rows of a JSONL, JSON (list), TSV or parquet file, streamed where the format allows
    (TSV, JSONL): the file is never held whole in memory."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        open_regular(path, "benchmark data").close()
        yield from pq.read_table(path).to_pylist()
    elif path.suffix == ".tsv":
        reader = csv.DictReader(_lines(path), delimiter="\t", quoting=csv.QUOTE_NONE)
        for number, row in enumerate(reader, 2):
            if None in row:  # DictReader keeps surplus fields under the key None
                raise ValueError(f"line {number} has more tab-separated fields than the header")
            yield row
    elif path.suffix == ".json":
        with open_regular(path, "benchmark data") as raw:
            rows = json.loads(raw.read().decode("utf-8-sig"))
        if not isinstance(rows, list):
            raise ValueError("expected a JSON list of objects")
        yield from rows
    else:
        for number, line in enumerate(_lines(path), 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"line {number} is not JSON ({exc.msg})") from None


def read_rows_with_digest(path: Path, required: Sequence[str]) -> tuple[list[Row], str]:
    """Rows of a JSONL, JSON (list), TSV or parquet file and their :func:`rows_digest`,
    computed while reading (a large file is streamed once, never held as text or as one JSON
    string); a malformed one is a KakugoError. Every row is read: the digest names the whole
    file and a stratified ``--limit`` sample draws from all of it."""
    id_columns = [c for c in required if c == "id" or c.endswith("_id")]
    seen: dict[str, set[Any]] = {c: set() for c in id_columns}
    digest = hashlib.sha256(b"[")
    rows: list[Row] = []
    hashed = 0  # rows[:hashed] are in the digest
    try:
        for number, row in enumerate(_parsed_rows(path), 1):
            if not isinstance(row, dict):
                raise KakugoError(f"{path}: row {number} is not an object")
            missing = [c for c in required if row.get(c) in (None, "")]
            if missing:
                raise KakugoError(
                    f"{path}: row {number} lacks {', '.join(missing)} (columns needed: "
                    f"{', '.join(required)}; see docs/benchmarks.md)"
                )
            for column in id_columns:  # a repeated item would be scored twice
                if row[column] in seen[column]:
                    raise KakugoError(f"{path}: row {number} repeats {column} "
                                      f"{row[column]!r}; each item must appear once")
                seen[column].add(row[column])
            rows.append(row)
            if len(rows) - hashed == DIGEST_CHUNK:
                hashed = _hash_rows(digest, rows, hashed)
    except KakugoError:
        raise
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise KakugoError(f"{path}: cannot read benchmark data: {exc}") from None
    except Exception as exc:  # pyarrow's errors
        raise KakugoError(f"{path}: cannot read benchmark data: {exc}".splitlines()[0]) from None
    if not rows:
        raise KakugoError(f"{path}: no rows; fix or remove the file")
    _hash_rows(digest, rows, hashed)
    digest.update(b"]")
    return rows, digest.hexdigest()[:16]


#: files read lately: a benchmark prepares a cell when it is planned and again when it is scored,
#: so an unchanged file (same size, mtime and inode) is parsed once; a few entries at most
_RECENT: dict[tuple[Any, ...], tuple[list[Row], str]] = {}
RECENT_FILES = 4


def _read_recent(path: Path, required: Sequence[str]) -> tuple[list[Row], str]:
    """:func:`read_rows_with_digest`, remembering the last :data:`RECENT_FILES` files read
    (a copy of the row list is handed out; the rows are not to be changed)."""
    try:
        info = path.stat()
        key: tuple[Any, ...] = (str(path.resolve()), info.st_size, info.st_mtime_ns,
                                info.st_ino, tuple(required))
    except OSError:
        return read_rows_with_digest(path, required)
    if key not in _RECENT:
        while len(_RECENT) >= RECENT_FILES:
            _RECENT.pop(next(iter(_RECENT)))
        _RECENT[key] = read_rows_with_digest(path, required)
    rows, digest = _RECENT[key]
    return list(rows), digest


def read_rows(path: Path, required: Sequence[str]) -> list[Row]:
    """Rows of a JSONL, JSON (list), TSV or parquet file; a malformed one is a KakugoError."""
    return read_rows_with_digest(path, required)[0]


#: rows hashed together: one ``json.dumps`` per chunk, never one string of the whole file
DIGEST_CHUNK = 10_000


def _hash_rows(digest: Any, rows: Sequence[Row], start: int) -> int:
    """Feed ``rows[start:]`` to ``digest`` as :func:`rows_digest` would see them; the new
    count of rows hashed."""
    if start < len(rows):
        text = json.dumps(rows[start:], sort_keys=True, ensure_ascii=False, default=str)
        digest.update(((", " if start else "") + text[1:-1]).encode())
    return len(rows)


def rows_digest(rows: Sequence[Row]) -> str:
    """16 hex digits of sha256 over the rows as one JSON list (what the source label holds)."""
    return hashlib.sha256(
        json.dumps(rows, sort_keys=True, ensure_ascii=False, default=str).encode()
    ).hexdigest()[:16]


def load_split(
    benchmark: str,
    code: str,
    split: str,
    required: Sequence[str],
    *,
    data_dir: str | Path | None,
    hub_id: str,
    hub_config: str,
    hub_split: str,
    revision: str,
    bundled: Path | None = None,
) -> Split:
    """One split from ``data_dir``, else the bundled copy, else the Hub at ``revision``
    (resolved to its commit sha, which the source label records)."""
    if data_dir:
        root = Path(data_dir).expanduser()
        path = find_local_file(root, benchmark, code, split)
        if path is None:
            raise KakugoError(
                f"no {benchmark} {split} file for {code} in {root}: expected "
                f"{root}/{benchmark}/{code}/{split}.jsonl (or .tsv, .parquet); see "
                "docs/benchmarks.md"
            )
        rows, digest = _read_recent(path, required)
        return Split(rows, f"local:{digest}")
    if bundled is not None:
        path = find_local_file(bundled, benchmark, code, split)
        if path is not None:
            rows, digest = _read_recent(path, required)
            return Split(rows, f"bundled:{digest}")
    hint = (
        f"pass --data-dir DIR with {benchmark} files for {code} "
        f"(DIR/{benchmark}/{code}/{split}.jsonl; layout in docs/benchmarks.md)"
    )
    if _offline():
        raise KakugoError(f"no network (HF offline) and no local {benchmark} data for {code}: "
                          f"{hint}")
    revision = resolve_revision(hub_id, revision)
    try:
        import datasets

        dataset = datasets.load_dataset(hub_id, hub_config, split=hub_split, revision=revision)
        rows = [dict(r) for r in dataset]
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise KakugoError(f"cannot load {hub_id} ({hub_config}/{hub_split}@{revision}) from "
                          f"the Hub: {first}; {hint}") from None
    missing = [c for c in required if rows and c not in rows[0]]
    if missing or not rows:
        raise KakugoError(f"{hub_id} ({hub_config}) lacks columns {missing}; {hint}")
    return Split(rows, f"hub:{hub_id}@{revision}")


def hub_revision(benchmark: str, options: Mapping[str, Any]) -> str:
    """``options["revision"]``, else ``options["revisions"][benchmark]``, else ``main``."""
    revisions = options.get("revisions") or {}
    return str(options.get("revision") or revisions.get(benchmark) or "main")
