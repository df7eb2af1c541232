"""SFT data: Kakugo datasets to token ids with an assistant-only loss mask, packed or padded.

Each row's ``system`` prompt is prepended to its ``messages`` as a system message and the chat
template is applied. Labels are the input ids on assistant tokens and -100 everywhere else. The
mask comes from the template's ``{% generation %}`` blocks when it has them, otherwise from
rendering each conversation prefix and finding where every assistant turn starts and ends.

Packing puts several examples in one row without letting them see each other: position ids
restart at 0 for every example and no 2D attention mask is passed, which transformers turns into
a block-diagonal mask (sdpa/eager) or variable-length attention (flash-attention).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kakugo_core.errors import KakugoError

IGNORE_INDEX = -100
REQUIRED_COLUMNS = ("system", "messages")
CONTRACT_COLUMNS = ("generation_method", "prompt_type", "topic", "scenario", "system", "messages")


@dataclass
class Example:
    """One tokenized conversation."""

    input_ids: list[int]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class TokenizeStats:
    """What tokenization kept and dropped."""

    examples: int = 0
    dropped_overlong: int = 0
    truncated: int = 0
    tokens: int = 0
    assistant_tokens: int = 0


def load_kakugo_dataset(dataset_dir: str | Path) -> Any:
    """Load a Kakugo ``DatasetDict`` (train/validation) and check it follows the contract."""
    from datasets import DatasetDict, load_from_disk

    path = Path(dataset_dir)
    if not path.is_dir():
        raise KakugoError(f"dataset folder {path} does not exist; run `kakugo dataset` first "
                          "or pass --dataset DIR")
    try:
        data = load_from_disk(str(path))
    except Exception as exc:
        raise KakugoError(f"{path} is not a dataset saved with save_to_disk "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    if not isinstance(data, DatasetDict) or "train" not in data:
        raise KakugoError(f"{path} must hold a DatasetDict with a 'train' split "
                          "(and 'validation'); rebuild it with `kakugo dataset`")
    for split_name, split in data.items():
        missing = [c for c in REQUIRED_COLUMNS if c not in split.column_names]
        if missing:
            raise KakugoError(f"{path} split '{split_name}' lacks column(s) {', '.join(missing)}; "
                              f"a Kakugo dataset has {', '.join(CONTRACT_COLUMNS)}")
    if len(data["train"]) == 0:
        raise KakugoError(f"{path}: the train split is empty")
    return data


def conversation(row: dict[str, Any]) -> list[dict[str, str]]:
    """The row's messages with its system prompt in front; checked for alternation."""
    messages = row["messages"]
    if not messages or not isinstance(messages, list):
        raise KakugoError(f"a dataset row has no messages (topic {row.get('topic')!r}); "
                          "rebuild the dataset")
    for i, message in enumerate(messages):
        expected = "user" if i % 2 == 0 else "assistant"
        if message.get("role") != expected or not isinstance(message.get("content"), str):
            raise KakugoError(
                f"message {i} of a dataset row has role {message.get('role')!r}, expected "
                f"{expected!r}: messages must alternate user/assistant, starting with user"
            )
    system = row.get("system") or ""
    head = [{"role": "system", "content": system}] if system else []
    return head + [{"role": m["role"], "content": m["content"]} for m in messages]


def has_generation_blocks(tokenizer: Any) -> bool:
    """Whether the chat template marks assistant turns with ``{% generation %}``."""
    template = tokenizer.chat_template or ""
    return "generation" in template and "endgeneration" in template


def check_chat_template(tokenizer: Any, model_name: str) -> None:
    """A clear error for a tokenizer without a chat template."""
    if not getattr(tokenizer, "chat_template", None):
        raise KakugoError(f"{model_name} has no chat template; use an instruct model or set "
                          "tokenizer.chat_template in its tokenizer_config.json")


def _mask_from_generation(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[list[int],
                                                                                   list[int]]:
    out = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    return list(out["input_ids"]), list(out["assistant_masks"])


def _mask_from_prefixes(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[list[int],
                                                                                 list[int]]:
    """Assistant spans found by rendering every prefix: the text each assistant turn adds."""
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    spans: list[tuple[int, int]] = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = tokenizer.apply_chat_template(messages[:i], tokenize=False,
                                               add_generation_prompt=True)
        upto = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
        if not full.startswith(before) or not full.startswith(upto.rstrip()):
            raise KakugoError(
                "the chat template renders conversation prefixes inconsistently, so assistant "
                "turns cannot be located; use a template with {% generation %} blocks"
            )
        spans.append((len(before), len(upto.rstrip())))
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    mask = [
        int(any(start < end_tok and begin_tok < end for start, end in spans))
        for begin_tok, end_tok in enc["offset_mapping"]
    ]
    return list(enc["input_ids"]), mask


def assistant_mask(tokenizer: Any, messages: list[dict[str, str]],
                   use_generation_blocks: bool | None = None) -> tuple[list[int], list[int]]:
    """Token ids of the rendered conversation and 1 for every assistant token, else 0."""
    if use_generation_blocks is None:
        use_generation_blocks = has_generation_blocks(tokenizer)
    if use_generation_blocks:
        return _mask_from_generation(tokenizer, messages)
    return _mask_from_prefixes(tokenizer, messages)


def _assistant_runs(mask: Sequence[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    start = None
    for i, flag in enumerate([*mask, 0]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            runs.append((start, i))
            start = None
    return runs


def tokenize_row(tokenizer: Any, row: dict[str, Any], max_length: int, overlong: str = "error",
                 use_generation_blocks: bool | None = None) -> Example | None:
    """One row to an :class:`Example`; ``None`` when it is dropped for being too long."""
    ids, mask = assistant_mask(tokenizer, conversation(row), use_generation_blocks)
    runs = _assistant_runs(mask)
    if not runs:
        raise KakugoError(
            "no assistant tokens found in a rendered conversation (the loss mask is empty); "
            "check that the chat template renders assistant turns"
        )
    if len(ids) > max_length:
        lost = [r for r in runs if r[0] >= max_length]
        if lost:
            if overlong == "drop":
                return None
            raise KakugoError(
                f"a conversation of {len(ids)} tokens loses {len(lost)} whole answer(s) at "
                f"max_length {max_length}; raise train.max_length or set train.overlong=\"drop\""
            )
        ids, mask = ids[:max_length], mask[:max_length]
    labels = [tok if m else IGNORE_INDEX for tok, m in zip(ids, mask, strict=True)]
    return Example(ids, labels)


def tokenize_split(tokenizer: Any, rows: Iterable[dict[str, Any]], max_length: int,
                   overlong: str = "error", use_generation_blocks: bool | None = None,
                   progress: Callable[[], None] | None = None,
                   stats: TokenizeStats | None = None) -> list[Example]:
    """Tokenize every row; ``progress`` is called once per row."""
    stats = stats if stats is not None else TokenizeStats()
    examples: list[Example] = []
    for row in rows:
        example = tokenize_row(tokenizer, row, max_length, overlong, use_generation_blocks)
        if progress:
            progress()
        if example is None:
            stats.dropped_overlong += 1
            continue
        stats.examples += 1
        stats.tokens += len(example)
        stats.assistant_tokens += sum(1 for x in example.labels if x != IGNORE_INDEX)
        examples.append(example)
    return examples


def pack_examples(examples: Sequence[Example], capacity: int) -> list[list[Example]]:
    """First-fit-decreasing bin packing of examples into bins of at most ``capacity`` tokens."""
    order = sorted(range(len(examples)), key=lambda i: -len(examples[i]))
    bins: list[list[Example]] = []
    room: list[int] = []
    for i in order:
        size = len(examples[i])
        for b, free in enumerate(room):
            if size <= free:
                bins[b].append(examples[i])
                room[b] -= size
                break
        else:
            bins.append([examples[i]])
            room.append(capacity - size)
    return bins


def packed_row(examples: Sequence[Example]) -> dict[str, list[int]]:
    """Concatenate examples with position ids restarting at 0 for each one."""
    input_ids: list[int] = []
    labels: list[int] = []
    position_ids: list[int] = []
    for example in examples:
        input_ids.extend(example.input_ids)
        # the first token of an example must never be predicted from the previous example
        labels.extend([IGNORE_INDEX, *example.labels[1:]])
        position_ids.extend(range(len(example)))
    return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids}


class PackedCollator:
    """Flattens a batch of packed rows into one row (padding-free); no attention mask.

    ``use_cache=False`` matters: transformers only derives the block-diagonal mask from the
    position ids when no KV cache is in play, and a model whose config says ``use_cache=True``
    would otherwise let packed examples attend to each other. The ``cu_seq_lens`` boundaries
    let flash-attention and ``sdpa_varlen`` attend within each example only."""

    def __call__(self, features: Sequence[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        out: dict[str, Any] = {}
        for key in ("input_ids", "labels", "position_ids"):
            flat = [x for f in features for x in f[key]]
            out[key] = torch.tensor([flat], dtype=torch.long)
        out["use_cache"] = False
        # sequence boundaries for variable-length attention (flash-attention, sdpa_varlen)
        positions = out["position_ids"][0].tolist()
        starts = [i for i, p in enumerate(positions) if p == 0] + [len(positions)]
        cu = torch.tensor(starts, dtype=torch.int32)
        longest = int((cu[1:] - cu[:-1]).max())
        out.update(cu_seq_lens_q=cu, cu_seq_lens_k=cu, max_length_q=longest,
                   max_length_k=longest)
        return out


class PaddedCollator:
    """Pads each batch to its longest example, as the default HF Trainer set-up does."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, features: Sequence[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        ids, labels, mask = [], [], []
        for f in features:
            pad = width - len(f["input_ids"])
            ids.append(list(f["input_ids"]) + [self.pad_token_id] * pad)
            labels.append(list(f["labels"]) + [IGNORE_INDEX] * pad)
            mask.append([1] * len(f["input_ids"]) + [0] * pad)
        return {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
            "attention_mask": torch.tensor(mask, dtype=torch.long),
        }


class RowsDataset:
    """A list of feature dicts as a map-style torch dataset."""

    def __init__(self, rows: list[dict[str, list[int]]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        return self.rows[index]


def build_rows(examples: Sequence[Example], packing: bool, max_length: int
               ) -> list[dict[str, list[int]]]:
    """Training rows: packed bins of ``max_length`` tokens, or one row per example."""
    if packing:
        return [packed_row(b) for b in pack_examples(examples, max_length)]
    return [{"input_ids": e.input_ids, "labels": e.labels} for e in examples]
