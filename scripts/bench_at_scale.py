#!/usr/bin/env python
"""Scoring at leaderboard scale: 2 models x 10 languages x SIB-200, end to end, wall clock.

Four ways to do the same work, each a fresh command as a user would type it:
  * kakugo      - one ``kakugo bench`` command for both models and all 10 languages;
  * lm_eval     - ``lm_eval`` once per model with the 10 tasks, the tasks exported by
                  ``kakugo bench --export-lm-eval`` (the very same prompts and items);
  * ray         - ``kakugo bench --executor ray`` on a local 2-worker Ray cluster
                  (``--languages-per-task 5``: 4 tasks);
  * one process - the kakugo row again, which is the one-process baseline for ray.
Prints the wall time of each, and the ratios lm_eval / kakugo and one process / ray. Each
timing is the best of ``--repeats`` (the machine may be shared). Tiny random models: what is
measured is the harness (start-up, model loads, request handling), not a model's speed.

    python scripts/bench_at_scale.py --data-dir ../shared/data     # SIB-200 for 54 languages
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
            "KAKUGO_LOAD_PLUGINS": "", "RAY_USAGE_STATS_ENABLED": "0"}


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"),
                        help="folder with sib200/<code>/test.tsv for at least 10 languages")
    parser.add_argument("--languages", type=int, default=10)
    parser.add_argument("--limit", type=int, default=50, help="items per language")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--skip", default="", help="comma-separated: lm_eval,ray")
    args = parser.parse_args()
    sib = Path(args.data_dir) / "sib200"
    langs = sorted(p.name for p in sib.iterdir() if (p / "test.tsv").is_file()
                   and p.name != "eng_Latn")[:args.languages] if sib.is_dir() else []
    if len(langs) < args.languages:
        sys.exit(f"{sib}: need SIB-200 test files for {args.languages} languages, "
                 f"found {len(langs)}")
    skip = set(filter(None, args.skip.split(",")))
    sys.path.insert(0, str(ROOT))
    from kakugo_core.testing import build_tiny_model, read_sib200_texts

    work = Path(tempfile.mkdtemp(prefix="kakugo-at-scale-"))
    try:
        texts = read_sib200_texts(ROOT / "kakugo_core" / "data" / "sib200",
                                  ["eng_Latn", "jav_Latn"])
        models = [str(build_tiny_model(work / f"m{s}", texts, seed=s)) for s in (0, 1)]
        common = ["-b", "sib200", "-l", ",".join(langs), "--limit", str(args.limit),
                  "--n-shot", "0", "--data-dir", args.data_dir, "--no-progress"]
        for m in models:
            common += ["-m", m]
        kakugo = [str(BIN / "python"), "-m", "kakugo_core", "bench"]
        results: dict[str, float] = {}

        def best(name: str, make: object) -> None:
            times = []
            for i in range(args.repeats):
                times.append(make(i))  # type: ignore[operator]
            results[name] = min(times)
            print(f"{name:12s} {results[name]:7.1f} s", flush=True)

        best("kakugo", lambda i: timed(kakugo + common + ["--db", str(work / f"k{i}.db")],
                                       work))
        if "lm_eval" not in skip:
            tasks_dir = work / "tasks"
            timed(kakugo + common[:-2 * len(models)] + ["--export-lm-eval", str(tasks_dir)],
                  work)
            names = ",".join(sorted(p.stem for p in tasks_dir.glob("*.yaml")))

            def lm_eval(i: int) -> float:
                total = 0.0
                for m in models:
                    total += timed([str(BIN / "lm_eval"), "--model", "hf", "--model_args",
                                    f"pretrained={m},dtype=float32", "--include_path",
                                    str(tasks_dir), "--tasks", names, "--device", "cpu",
                                    "--batch_size", "16", "--output_path",
                                    str(work / f"lm{i}")], work)
                return total
            best("lm_eval", lm_eval)
        if "ray" not in skip:
            best("ray", lambda i: timed(
                kakugo + common + ["--db", str(work / f"r{i}.db"), "--executor", "ray",
                                   "--workers", "2", "--languages-per-task",
                                   str(max(1, args.languages // 2)),
                                   "--shard-dir", str(work / f"shards{i}")], work))
        print(f"\n2 models x {len(langs)} languages x SIB-200 ({args.limit} items each, 0-shot), "
              f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
              f"load average {os.getloadavg()[0]:.1f} at the end")
        if "lm_eval" in results:
            print(f"lm_eval / kakugo (one command):  {results['lm_eval'] / results['kakugo']:.2f}")
        if "ray" in results:
            print(f"one process / 2-worker ray:      {results['kakugo'] / results['ray']:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
