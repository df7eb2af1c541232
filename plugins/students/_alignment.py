"""Bllossom-style bilingual alignment: continued pretraining on parallel or mixed text.

Sources: a folder in the SIB-200/FLORES layout (``<flores_code>/{train,dev,test}.tsv`` with
``index_id`` and ``text`` columns; rows with equal ``index_id`` are translations of each other),
a ``.txt``/``.jsonl`` corpus, or (empty source) the dataset's own conversations as plain text.
Parallel sentences become documents holding a sentence and its translation, in both orders, so
the model sees the two languages side by side. Loss is on every token.
"""

from __future__ import annotations

import csv
import os
import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kakugo_core.errors import KakugoError


def parallel_texts(folder: Path, languages: Sequence[str]) -> list[str]:
    """Documents pairing each sentence with its translations from a FLORES-style folder."""
    langs = list(languages) or sorted(p.name for p in folder.iterdir() if p.is_dir())
    if len(langs) < 2:
        raise KakugoError(f"{folder} needs at least two language folders for bilingual alignment "
                          "(set train.alignment_languages, e.g. [\"jav_Latn\", \"eng_Latn\"])")
    by_id: dict[str, dict[str, str]] = defaultdict(dict)
    for lang in langs:
        files = sorted((folder / lang).glob("*.tsv"))
        if not files:
            raise KakugoError(f"{folder / lang} has no .tsv files (expected index_id, text "
                              "columns)")
        for file in files:
            with file.open(encoding="utf-8", newline="") as handle:
                reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
                if not reader.fieldnames or not {"index_id", "text"} <= set(reader.fieldnames):
                    raise KakugoError(f"{file} must have index_id and text columns")
                for row in reader:
                    by_id[f"{file.stem}:{row['index_id']}"][lang] = row["text"]
    texts: list[str] = []
    for key in sorted(by_id):
        group = by_id[key]
        present = [lang for lang in langs if lang in group]
        for i, first in enumerate(present):
            for second in present[i + 1:]:
                texts.append(f"{group[first]}\n{group[second]}")
                texts.append(f"{group[second]}\n{group[first]}")
    if not texts:
        raise KakugoError(f"{folder}: no sentence has a translation in {', '.join(langs)}")
    return texts


def alignment_texts(source: str, languages: Sequence[str], train_rows: Any) -> list[str]:
    """Texts for the alignment stage from ``source`` (see the module docstring)."""
    if not source:
        return ["\n".join(m["content"] for m in row["messages"]) for row in train_rows]
    path = Path(source)
    if path.is_dir() and any(p.is_dir() for p in path.iterdir()):
        return parallel_texts(path, languages)
    from plugins.students._vocab import read_corpus

    return read_corpus(path)


def pretraining_rows(tokenizer: Any, texts: Sequence[str], max_length: int,
                     seed: int = 0) -> list[dict[str, list[int]]]:
    """Tokenize documents (each ending in EOS), cut to ``max_length`` and pack them."""
    from plugins.students import _sft_data as data

    eos = tokenizer.eos_token_id
    examples = []
    shuffled = list(texts)
    random.Random(seed).shuffle(shuffled)
    from rich.progress import track

    quiet = os.environ.get("RANK", "0") != "0"  # one bar per distributed run
    for text in track(shuffled, description="tokenizing alignment text", transient=True,
                      disable=quiet):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][: max_length - 1] + [eos]
        if len(ids) > 1:
            examples.append(data.Example(ids, list(ids)))
    if not examples:
        raise KakugoError("the alignment corpus produced no text to train on")
    return data.build_rows(examples, packing=True, max_length=max_length)
