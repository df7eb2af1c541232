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
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def read_rows(path: Path, required: Sequence[str]) -> list[Row]:
    """Rows of a JSONL, JSON (list), TSV or parquet file; a malformed one is a KakugoError."""
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            rows = pq.read_table(path).to_pylist()
        elif path.suffix == ".tsv":
            with path.open(encoding="utf-8-sig", newline="") as fh:  # -sig: drop a BOM
                rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
            for number, row in enumerate(rows, 2):
                if None in row:  # DictReader keeps surplus fields under the key None
                    raise ValueError(f"line {number} has more tab-separated fields than the "
                                     "header")
        elif path.suffix == ".json":
            rows = json.loads(path.read_text("utf-8-sig"))
            if not isinstance(rows, list):
                raise ValueError("expected a JSON list of objects")
        else:
            rows = []
            for number, line in enumerate(path.read_text("utf-8-sig").splitlines(), 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise ValueError(f"line {number} is not JSON ({exc.msg})") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise KakugoError(f"{path}: cannot read benchmark data: {exc}") from None
    except Exception as exc:  # pyarrow's errors
        raise KakugoError(f"{path}: cannot read benchmark data: {exc}".splitlines()[0]) from None
    if not rows:
        raise KakugoError(f"{path}: no rows; fix or remove the file")
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise KakugoError(f"{path}: row {number} is not an object")
        missing = [c for c in required if row.get(c) in (None, "")]
        if missing:
            raise KakugoError(
                f"{path}: row {number} lacks {', '.join(missing)} (columns needed: "
                f"{', '.join(required)}; see docs/benchmarks.md)"
            )
    _refuse_duplicate_ids(path, rows, required)
    return rows


def _refuse_duplicate_ids(path: Path, rows: Sequence[Row], required: Sequence[str]) -> None:
    """An item id column (``id``, ``*_id``) must not repeat: a repeated item is scored twice."""
    for column in (c for c in required if c == "id" or c.endswith("_id")):
        seen: set[Any] = set()
        for number, row in enumerate(rows, 1):
            if row[column] in seen:
                raise KakugoError(f"{path}: row {number} repeats {column} {row[column]!r}; "
                                  "each item must appear once")
            seen.add(row[column])


def rows_digest(rows: Sequence[Row]) -> str:
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
        rows = read_rows(path, required)
        return Split(rows, f"local:{rows_digest(rows)}")
    if bundled is not None:
        path = find_local_file(bundled, benchmark, code, split)
        if path is not None:
            rows = read_rows(path, required)
            return Split(rows, f"bundled:{rows_digest(rows)}")
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
