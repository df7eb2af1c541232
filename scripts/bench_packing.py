"""Packing benchmark: share of non-padding tokens and training tokens per second, packed
(Kakugo's ``hf`` student) against padded batches (the competitor: HF Trainer's default of
shuffled examples padded to the longest in each batch).

The Kakugo variant uses ``sdpa_varlen`` (per-example causal sdpa, what flash-attention's
varlen kernel does on GPU); "packed, block-diagonal sdpa" is transformers' own handling of
packed rows under sdpa, shown for reference. All train the same model on the same
conversations with the same optimizer for one epoch; "tokens" are real conversation tokens
(padding is not counted as work done).

    python scripts/bench_packing.py [--conversations 200] [--max-length 1024] [--hidden 128]

The data are Kakugo-format conversations built from real SIB-200 sentences (1 to 8 turns, so
lengths vary as they do in teacher-written data). Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def conversations(n: int, seed: int) -> list[dict]:
    from kakugo_core.testing import read_sib200_texts

    sib = REPO / "kakugo_core" / "data" / "sib200"
    texts = read_sib200_texts(sib, ["jav_Latn", "eng_Latn", "sun_Latn", "yor_Latn", "swh_Latn"])
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        turns = rng.choice([1, 1, 1, 2, 2, 3, 4, 6, 8])
        messages = []
        for _ in range(turns):
            messages.append({"role": "user", "content": rng.choice(texts)})
            answer = " ".join(rng.choice(texts) for _ in range(rng.randint(1, 4)))
            messages.append({"role": "assistant", "content": answer})
        rows.append({"system": "Answer concisely.", "messages": messages})
    return rows


def run_epoch(model, batches, lr: float) -> tuple[float, int, int]:
    """Train one epoch; return seconds, real tokens and computed (incl. padding) tokens."""
    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    real = computed = 0
    started = time.perf_counter()
    for batch in batches:
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ids = batch["input_ids"]
        computed += ids.numel()
        real += int(batch["attention_mask"].sum()) if "attention_mask" in batch else ids.numel()
    return time.perf_counter() - started, real, computed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2, help="epochs per variant, alternated")
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kakugo_core.testing import build_tiny_model, read_sib200_texts
    from plugins.students import _sft_data as data
    from plugins.students import _varlen

    torch.manual_seed(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        texts = read_sib200_texts(REPO / "kakugo_core" / "data" / "sib200", ["eng_Latn",
                                                                              "jav_Latn"])
        path = build_tiny_model(Path(tmp) / "m", texts, hidden_size=args.hidden,
                                num_layers=args.layers, num_heads=args.hidden // 32,
                                max_positions=args.max_length)
        tokenizer = AutoTokenizer.from_pretrained(path)
        examples = data.tokenize_split(tokenizer, conversations(args.conversations, args.seed),
                                       args.max_length, overlong="drop")
        lengths = [len(e) for e in examples]
        mean = sum(lengths) / len(lengths)
        batch_size = max(1, round(args.max_length / mean))  # same tokens per step on average

        rng = random.Random(args.seed)
        order = list(range(len(examples)))
        rng.shuffle(order)
        padded_rows = data.build_rows([examples[i] for i in order], False, args.max_length)
        pad = data.PaddedCollator(tokenizer.pad_token_id)
        padded = [pad(padded_rows[i:i + batch_size])
                  for i in range(0, len(padded_rows), batch_size)]
        packed_rows = data.build_rows(examples, True, args.max_length)
        rng.shuffle(packed_rows)
        packed = [data.PackedCollator()([row]) for row in packed_rows]

        # alternate the variants and keep each one's fastest epoch, so that a change in machine
        # load during the run does not favour either
        results: dict[str, tuple[float, int, int, int]] = {}
        variants = (("padded (HF Trainer default)", padded, "sdpa"),
                    ("packed, block-diagonal sdpa", packed, "sdpa"),
                    ("packed (kakugo)", packed, _varlen.register()))
        for repeat in range(args.repeats):
            for name, batches, attention in variants:
                model = AutoModelForCausalLM.from_pretrained(path, attn_implementation=attention)
                run_epoch(model, batches[:2], 1e-4)  # warm-up
                seconds, real, computed = run_epoch(model, batches, 1e-4)
                print(f"repeat {repeat + 1}: {name}: {seconds:.1f} s", file=sys.stderr,
                      flush=True)
                if name not in results or seconds < results[name][0]:
                    results[name] = (seconds, real, computed, len(batches))

    device = "cuda" if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)"
    print(f"best of {args.repeats} alternated epochs per variant")
    print(f"{len(examples)} conversations, {sum(lengths)} tokens, length {min(lengths)}-"
          f"{max(lengths)} (mean {mean:.0f}); max_length {args.max_length}; padded batch size "
          f"{batch_size}; model hidden {args.hidden} x {args.layers} layers; {device}")
    print(f"{'variant':30} {'steps':>6} {'efficiency':>11} {'tokens/s':>10} {'seconds':>8}")
    speed = {}
    for name, (seconds, real, computed, steps) in results.items():
        speed[name] = real / seconds
        print(f"{name:30} {steps:6d} {real / computed:11.1%} {speed[name]:10.0f} {seconds:8.1f}")
    fill = sum(lengths) / (len(packed_rows) * args.max_length)
    print(f"packed rows are {fill:.1%} full on average ({len(packed_rows)} rows of "
          f"{args.max_length}); flattened batches carry no padding at all")
    ratio = speed["packed (kakugo)"] / speed["padded (HF Trainer default)"]
    print(f"packed / padded tokens per second: {ratio:.2f}x")


if __name__ == "__main__":
    main()
