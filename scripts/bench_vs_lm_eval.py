#!/usr/bin/env python
"""Kakugo's transformers backend vs lm-eval's HFLM: wall time and agreement of predictions.

Both score the same tiny model on the same items with the same prompts:
  * sib200   - real SIB-200 test items (7 labels, multi-token continuations);
  * belebele - Belebele-format items built from real FLORES sentences (long passages, 4 choices).
Two comparisons per suite:
  * requests: identical (context, continuation) requests, to our backend and to
    ``HFLM.loglikelihood`` as lm-eval ``Instance`` objects;
  * task: the benchmark exported as an lm-eval task and run by ``lm_eval.simple_evaluate``
    vs ``Benchmark.evaluate`` with our backend.
Each timing is the best of ``--repeats`` runs, ours and theirs interleaved (the machine may be
shared). Prints both times, the ratio (lm-eval / kakugo) and the fraction of identical predictions.

    python scripts/bench_vs_lm_eval.py                    # builds a 4-layer, hidden-256 model
    python scripts/bench_vs_lm_eval.py --model DIR --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SIB = ROOT / "kakugo_core" / "data" / "sib200"


def build_model(work: Path, layers: int, hidden: int, train_steps: int) -> Path:
    from benchmarks._samples import sib200_training_texts, train_tiny_model
    from kakugo_core.testing import build_tiny_model, read_sib200_texts

    base = build_tiny_model(work / f"tiny-{layers}x{hidden}",
                            read_sib200_texts(SIB, ["eng_Latn", "jav_Latn"]),
                            hidden_size=hidden, num_layers=layers, num_heads=hidden // 32)
    if train_steps <= 0:
        return base
    texts = sib200_training_texts(SIB, ["eng_Latn", "jav_Latn"])
    return train_tiny_model(base, work / f"tiny-{layers}x{hidden}-trained{train_steps}", texts,
                            steps=train_steps)


def best_of(repeats: int, fn):  # type: ignore[no-untyped-def]
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder (default: build a tiny one)")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--train-steps", type=int, default=0,
                        help="train the built model this many steps first (varied predictions)")
    parser.add_argument("--language", default="jav_Latn")
    parser.add_argument("--sib-items", type=int, default=60)
    parser.add_argument("--passages", type=int, default=20,
                        help="Belebele-format passages (two questions each)")
    parser.add_argument("--sentences", type=int, default=5, help="FLORES sentences per passage")
    parser.add_argument("--n-shot", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-task", action="store_true",
                        help="only the requests comparison (not simple_evaluate)")
    args = parser.parse_args()

    import lm_eval
    import torch
    import transformers
    from lm_eval.tasks import TaskManager

    from benchmarks._samples import belebele_rows
    from kakugo_core.interfaces import LoglikelihoodRequest
    from kakugo_core.languages import resolve
    from kakugo_core.lm_eval_tasks import export_task
    from kakugo_core.plugins import create

    work = Path(tempfile.mkdtemp(prefix="kakugo-bench-vs-lm-eval-"))
    model = Path(args.model) if args.model else build_model(
        Path(tempfile.gettempdir()) / "kakugo-bench-models", args.layers, args.hidden,
        args.train_steps)
    data = work / "data"
    (data / "belebele" / args.language).mkdir(parents=True)
    rows = belebele_rows(SIB, args.language, passages=args.passages, sentences=args.sentences)
    (data / "belebele" / args.language / "test.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")

    ours = create("backends", "transformers", str(model), batch_size=args.batch_size,
                  device=args.device)
    theirs = create("backends", "lm-eval", str(model), batch_size=args.batch_size,
                    device=args.device)
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else \
        f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores visible)"
    print(f"model: {model} ({ours.model.config.num_hidden_layers} layers, hidden "
          f"{ours.model.config.hidden_size}); device: {device}")
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"lm-eval {lm_eval.__version__}, batch size {args.batch_size}, {args.n_shot}-shot, "
          f"best of {args.repeats}")
    language = resolve(args.language)
    suites = [
        ("sib200", {"n_shot": args.n_shot, "limit": args.sib_items}),
        ("belebele", {"n_shot": args.n_shot, "data_dir": str(data)}),
    ]
    # warm both up (allocator, kernels) on a few requests
    warm = [LoglikelihoodRequest("Text: warm up\nTopic:", " travel")] * 4
    ours.loglikelihood(warm)
    theirs.loglikelihood(warm)
    for name, options in suites:
        bench = create("benchmarks", name)
        task = bench.prepare(language, options)
        requests = [LoglikelihoodRequest(it.context, c) for it in task.items for c in it.choices]
        ctx_tokens = sum(len(ours.tok_encode(it.context)) for it in task.items) / len(task.items)
        t_ours, a = best_of(args.repeats, lambda: ours.loglikelihood(requests))  # noqa: B023
        t_theirs, b = best_of(args.repeats, lambda: theirs.loglikelihood(requests))  # noqa: B023
        preds = []
        for results in (a, b):
            cursor, out = 0, []
            for it in task.items:
                scores = [r.logprob for r in results[cursor:cursor + len(it.choices)]]
                cursor += len(it.choices)
                out.append(max(range(len(scores)), key=lambda k: (scores[k], -k)))  # noqa: B023
            preds.append(out)
        agree = sum(x == y for x, y in zip(*preds, strict=True)) / len(task.items)
        diff = max(abs(x.logprob - y.logprob) for x, y in zip(a, b, strict=True))
        print(f"\n{name}: {len(task.items)} items, {len(requests)} requests, "
              f"~{ctx_tokens:.0f} context tokens per item, "
              f"{len(set(preds[0]))} distinct predictions")
        print(f"  requests  kakugo {t_ours:7.2f} s   lm-eval HFLM {t_theirs:7.2f} s   "
              f"ratio {t_theirs / t_ours:5.2f}x   agreement {agree:.2%}   "
              f"max |dlogprob| {diff:.1e}")
        if args.skip_task:
            continue
        yaml_path = export_task(bench, language, work / "tasks", options)
        manager = TaskManager(include_path=str(yaml_path.parent))

        def run_lm_eval():  # type: ignore[no-untyped-def]
            return lm_eval.simple_evaluate(model=theirs.lm, tasks=[yaml_path.stem],  # noqa: B023
                                           task_manager=manager, log_samples=True,  # noqa: B023
                                           verbosity="ERROR")

        t_task_ours, mine = best_of(args.repeats,
                                    lambda: bench.evaluate(ours, language, options))  # noqa: B023
        t_task_theirs, out = best_of(args.repeats, run_lm_eval)
        samples = sorted(out["samples"][yaml_path.stem], key=lambda s: s["doc_id"])
        lm_preds = [max(range(len(s["filtered_resps"])),
                        key=lambda k: s["filtered_resps"][k][0]) for s in samples]  # noqa: B023
        task_agree = sum(p["pred"] == q for p, q in zip(mine.predictions, lm_preds, strict=True))
        lm_acc = out["results"][yaml_path.stem]["acc,none"]
        print(f"  task      kakugo {t_task_ours:7.2f} s   lm_eval.simple_evaluate "
              f"{t_task_theirs:7.2f} s   ratio {t_task_theirs / t_task_ours:5.2f}x   "
              f"agreement {task_agree / len(samples):.2%}   acc kakugo "
              f"{mine.scores[0].value:.4f} lm-eval {lm_acc:.4f}")


if __name__ == "__main__":
    main()
