"""Bllossom-style vocabulary expansion for byte-level/BPE tokenizers.

Candidates are the target-language words of a corpus (the pre-tokenizer's units, so a new
token always fires inside running text). A word's usefulness is how often it occurs times how
many extra tokens the base tokenizer spends on it. The most useful words are added to the BPE
model itself: each gets a chain of merges over its base pieces, appended after the base merges,
so the base segmentation of everything else is unchanged and decoding stays byte-exact. The
embedding matrix is resized and each new row starts as the mean of its base pieces' rows (input
and, when untied, output embeddings). Fertility (tokens per whitespace word) is measured on
held-out corpus text before and after.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kakugo_core.errors import KakugoError


@dataclass
class Expansion:
    """What vocabulary expansion did."""

    added_words: list[str]
    new_token_ids: list[int]
    old_vocab_size: int
    new_vocab_size: int
    fertility_before: float
    fertility_after: float
    heldout_words: int
    merges_added: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["added_tokens"] = len(self.new_token_ids)
        out["added_words"] = self.added_words[:50]  # a sample; the tokenizer holds them all
        out.pop("new_token_ids")
        return out


def read_corpus(path: str | Path) -> list[str]:
    """Texts from a ``.txt`` file (one per line), a ``.jsonl`` file (field ``text``) or a folder
    of those."""
    root = Path(path)
    if not root.exists():
        raise KakugoError(f"vocabulary corpus {root} does not exist; set train.vocab_corpus to a "
                          ".txt/.jsonl file or folder, or leave it empty to use the dataset")
    files = sorted(p for p in root.rglob("*") if p.suffix in (".txt", ".jsonl")) \
        if root.is_dir() else [root]
    texts: list[str] = []
    for file in files:
        for line in file.read_text("utf-8").splitlines():
            if not line.strip():
                continue
            if file.suffix == ".jsonl":
                try:
                    texts.append(str(json.loads(line)["text"]))
                except (ValueError, KeyError, TypeError):
                    raise KakugoError(f"{file}: every line must be JSON with a 'text' field"
                                      ) from None
            else:
                texts.append(line)
    if not texts:
        raise KakugoError(f"vocabulary corpus {root} holds no text")
    return texts


def fertility(tokenizer: Any, texts: Iterable[str]) -> tuple[float, int]:
    """Tokens per whitespace-separated word over ``texts``, and the number of words."""
    tokens = words = 0
    for text in texts:
        words += len(text.split())
        tokens += len(tokenizer(text, add_special_tokens=False)["input_ids"])
    return (tokens / words if words else 0.0), words


def _backend_json(tokenizer: Any) -> dict[str, Any]:
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    model = state.get("model", {})
    if model.get("type") != "BPE":
        raise KakugoError(f"vocabulary expansion needs a BPE tokenizer, this one is "
                          f"{model.get('type')!r}; set train.vocab_expansion_tokens=0")
    return state


def _progress(texts: Sequence[str], label: str) -> Iterator[str]:
    """Iterate with a transient rich progress bar."""
    import os

    from rich.progress import track

    quiet = os.environ.get("RANK", "0") != "0"  # one bar per distributed run
    yield from track(texts, description=label, transient=True, disable=quiet)


def _words(tokenizer: Any, texts: Sequence[str]) -> Counter[str]:
    """Pre-tokenized units (e.g. ``Ġomah``) with their counts."""
    backend = tokenizer.backend_tokenizer
    counts: Counter[str] = Counter()
    for text in _progress(texts, "vocabulary: counting words"):
        if backend.normalizer is not None:
            text = backend.normalizer.normalize_str(text)
        if backend.pre_tokenizer is not None:
            pieces = [p for p, _ in backend.pre_tokenizer.pre_tokenize_str(text)]
        else:
            pieces = [text]
        for piece in pieces:
            # SentencePiece-style tokenizers may not split: cut before each word marker
            for word in piece.replace("▁", "\0▁").split("\0"):
                if word:
                    counts[word] += 1
    return counts


def _base_pieces(model_vocab: dict[str, int], backend: Any, word: str) -> list[str] | None:
    """How the base BPE model splits one pre-tokenized word (``None`` if it cannot)."""
    pieces = [t.value for t in backend.model.tokenize(word)]
    if any(p not in model_vocab for p in pieces):
        return None
    return pieces


def _select(counts: Counter[str], pieces_of: dict[str, list[str]], budget: int,
            known: set[str]) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """Pick words by saved tokens; return the words, their merges and the new token strings."""
    ranked = sorted(
        (w for w in pieces_of if len(pieces_of[w]) > 1),
        key=lambda w: (-(counts[w] * (len(pieces_of[w]) - 1)), w),
    )
    new_tokens: list[str] = []
    merges: list[tuple[str, str]] = []
    chosen: list[str] = []
    have = set(known)
    for word in ranked:
        if counts[word] < 2:
            break
        pieces = pieces_of[word]
        chain: list[tuple[str, str, str]] = []
        left = pieces[0]
        for right in pieces[1:]:
            chain.append((left, right, left + right))
            left = left + right
        needed = [c for c in chain if c[2] not in have]
        if len(new_tokens) + len(needed) > budget:
            continue
        for left_piece, right_piece, token in needed:
            merges.append((left_piece, right_piece))
            new_tokens.append(token)
            have.add(token)
        chosen.append(word)
        if len(new_tokens) >= budget:
            break
    return chosen, merges, new_tokens


def _merge_entries(existing: Sequence[Any], merges: list[tuple[str, str]]) -> list[Any]:
    if existing and isinstance(existing[0], str):
        return [f"{a} {b}" for a, b in merges]
    return [[a, b] for a, b in merges]


def expand_vocabulary(model: Any, tokenizer: Any, corpus: Sequence[str], n_tokens: int,
                      heldout_fraction: float = 0.1, seed: int = 0) -> tuple[Any, Expansion]:
    """Add up to ``n_tokens`` target-language tokens to ``tokenizer`` and ``model`` (in place for
    the model); return the new tokenizer and a report."""
    import torch
    from tokenizers import Tokenizer

    texts = list(corpus)
    random.Random(seed).shuffle(texts)
    n_heldout = max(1, int(len(texts) * heldout_fraction)) if len(texts) > 1 else 0
    heldout, learn = texts[:n_heldout], texts[n_heldout:] or texts
    before, n_words = fertility(tokenizer, heldout)

    state = _backend_json(tokenizer)
    vocab: dict[str, int] = state["model"]["vocab"]
    backend = tokenizer.backend_tokenizer
    counts = _words(tokenizer, learn)
    pieces_of: dict[str, list[str]] = {}
    for word in _progress(list(counts), "vocabulary: splitting candidates"):
        if word in vocab:
            continue
        pieces = _base_pieces(vocab, backend, word)
        if pieces is not None:
            pieces_of[word] = pieces
    chosen, merges, new_tokens = _select(counts, pieces_of, n_tokens, set(vocab))
    if not new_tokens:
        raise KakugoError("vocabulary expansion found no target-language word that the base "
                          "tokenizer splits and that occurs twice; give a larger "
                          "train.vocab_corpus")

    added_ids = [t["id"] for t in state.get("added_tokens", [])]
    old_size = max([*vocab.values(), *added_ids]) + 1
    embed = model.get_input_embeddings()
    rows_before = embed.weight.shape[0]
    new_ids = list(range(old_size, old_size + len(new_tokens)))
    for token, token_id in zip(new_tokens, new_ids, strict=True):
        vocab[token] = token_id
    state["model"]["merges"] = list(state["model"]["merges"]) + _merge_entries(
        state["model"]["merges"], merges)
    new_backend = Tokenizer.from_str(json.dumps(state))

    new_tokenizer = _rebuild(tokenizer, new_backend)

    # each new token's base pieces, for the embedding initialisation
    piece_ids = {tok: [vocab[p] for p in _chain_pieces(tok, merges)] for tok in new_tokens}
    new_rows = max(rows_before, old_size + len(new_tokens))
    model.resize_token_embeddings(new_rows, mean_resizing=False)
    with torch.no_grad():
        matrices = [model.get_input_embeddings().weight]
        output = model.get_output_embeddings()
        if output is not None and output.weight.data_ptr() != matrices[0].data_ptr():
            matrices.append(output.weight)
        for matrix in matrices:
            for token, token_id in zip(new_tokens, new_ids, strict=True):
                matrix[token_id] = matrix[piece_ids[token]].mean(dim=0)
    model.config.vocab_size = new_rows

    after, _ = fertility(new_tokenizer, heldout)
    examples = [{"word": w, "base_pieces": len(pieces_of[w]), "count": counts[w]}
                for w in chosen[:10]]
    return new_tokenizer, Expansion(
        added_words=[new_backend.decoder.decode([w]) if new_backend.decoder else w
                     for w in chosen],
        new_token_ids=new_ids, old_vocab_size=old_size, new_vocab_size=new_rows,
        fertility_before=before, fertility_after=after, heldout_words=n_words,
        merges_added=len(merges), examples=examples,
    )


def _chain_pieces(token: str, merges: list[tuple[str, str]]) -> list[str]:
    """The base pieces a new token was merged from (following the chain back)."""
    made = {a + b: (a, b) for a, b in merges}
    pieces: list[str] = []
    while token in made:
        left, right = made[token]
        pieces.insert(0, right)
        token = left
    pieces.insert(0, token)
    return pieces


def _rebuild(tokenizer: Any, backend: Any) -> Any:
    """A copy of ``tokenizer`` (special tokens, chat template) around a new backend."""
    from transformers import PreTrainedTokenizerFast

    special = {k: v for k, v in tokenizer.special_tokens_map.items()
               if k != "additional_special_tokens"}
    extra = tokenizer.special_tokens_map.get("additional_special_tokens")
    if extra:
        special["additional_special_tokens"] = extra
    new = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_max_length=tokenizer.model_max_length,
        padding_side=tokenizer.padding_side,
        **special,
    )
    new.chat_template = tokenizer.chat_template
    return new
