"""Speed of the ``vllm`` backend's log-likelihoods with and without reading the prefix cache.

Scores SIB-200-style k-shot multiple-choice items (every item has 7 choices that share its
context, and all items share the k-shot examples) with one vLLM engine in two ways:

- ``kakugo``: the backend as shipped, whose prompt-log-prob requests read vLLM's prefix cache;
- competitor ``vllm-default``: the same requests as vLLM (and lm-eval's vllm model) sends them,
  which never read the cache for prompt log-probs, so every prompt is computed in full.

It prints seconds, prompt tokens and cached tokens of each, the speed-up ratio, and the largest
difference between the two runs' log-likelihoods (they must agree). Runs in the vLLM
environment (``scripts/ci_vllm.sh`` makes ``.venv-vllm``); the model is an offline tiny Llama
built on the spot, sized by ``--hidden``/``--layers``, or ``--model`` for a real one.

    .venv-vllm/bin/python scripts/bench_vllm_prefix_cache.py [--items 100] [--shots 3]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SIB200 = REPO / "kakugo_core" / "data" / "sib200"


def read_rows(language: str, split: str) -> list[tuple[str, str]]:
    """``(category, text)`` rows of a bundled SIB-200 split."""
    lines = (SIB200 / language / f"{split}.tsv").read_text("utf-8").splitlines()[1:]
    return [(c, t) for _, c, t in (line.split("\t", 2) for line in lines)]


def build_requests(language: str, items: int, shots: int) -> list[object]:
    from kakugo_core.interfaces import LoglikelihoodRequest

    train, test = read_rows(language, "train"), read_rows(language, "test")
    categories = sorted({c for c, _ in train})
    examples = "".join(f"Text: {t}\nTopic: {c}\n\n" for c, t in train[:shots])
    head = f"Topics: {', '.join(categories)}.\n\n{examples}"
    return [
        LoglikelihoodRequest(f"{head}Text: {text}\nTopic:", f" {choice}")
        for _, text in test[:items]
        for choice in categories
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a model folder or Hub id (default: build a tiny one)")
    parser.add_argument("--hidden", type=int, default=512, help="tiny model's hidden size")
    parser.add_argument("--layers", type=int, default=8, help="tiny model's layers")
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--shots", type=int, default=3)
    parser.add_argument("--language", default="jav_Latn")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs each")
    args = parser.parse_args()

    from kakugo_core.plugins import create
    from kakugo_core.testing import build_tiny_model, read_sib200_texts

    tmp = tempfile.TemporaryDirectory()
    model = args.model or str(build_tiny_model(
        Path(tmp.name) / "model", read_sib200_texts(SIB200, ["eng_Latn", args.language]),
        hidden_size=args.hidden, num_layers=args.layers, num_heads=args.hidden // 64,
    ))
    requests = build_requests(args.language, args.items, args.shots)
    backend = create(
        "backends", "vllm", model=model, dtype="float32", max_model_len=2048,
        enforce_eager=True, kv_cache_gb=2, progress=False, engine_options={"block_size": 32},
    )
    backend.loglikelihood(requests[:7])  # warm-up

    timings: dict[str, float] = {}
    results: dict[str, list[float]] = {}
    tokens: dict[str, tuple[int, int]] = {}
    for name, read in (("vllm-default", False), ("kakugo", True)):
        backend.read_prefix_cache = read
        best = float("inf")
        for _ in range(args.repeats):
            before = dict(backend.stats)
            start = time.perf_counter()
            scored = backend.loglikelihood(requests)
            best = min(best, time.perf_counter() - start)
            tokens[name] = (
                backend.stats["prompt_tokens"] - before["prompt_tokens"],
                backend.stats["cached_prompt_tokens"] - before["cached_prompt_tokens"],
            )
        timings[name] = best
        results[name] = [r.logprob for r in scored]
    backend.close()

    diff = max(abs(a - b) for a, b in zip(results["kakugo"], results["vllm-default"],
                                          strict=True))
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}; model: "
          f"{args.model or f'tiny Llama {args.hidden}x{args.layers}'}; {args.items} items x "
          f"7 choices, {args.shots}-shot")
    for name in ("vllm-default", "kakugo"):
        sent, cached = tokens[name]
        print(f"{name:>13}: {timings[name]:7.2f} s  prompt tokens {sent}  from cache {cached} "
              f"({cached / max(sent, 1):.0%})")
    print(f"speed-up kakugo / vllm-default: {timings['vllm-default'] / timings['kakugo']:.2f}x; "
          f"largest log-likelihood difference {diff:.2e} nats")


if __name__ == "__main__":
    main()
