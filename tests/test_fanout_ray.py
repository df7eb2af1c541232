"""scripts/fanout/ray_fanout.py on a real local Ray cluster: one task per language, each running
`kakugo run LANGUAGE --run-dir RUNS/LANGUAGE` (here a stand-in executable that records its
arguments), a failed language reported and the exit status non-zero."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

STAND_IN = """#!{python}
import json, os, sys
run_dir = sys.argv[sys.argv.index("--run-dir") + 1]
os.makedirs(run_dir, exist_ok=True)
with open(os.path.join(run_dir, "argv.json"), "w") as fh:
    json.dump({{"argv": sys.argv[1:], "pid": os.getpid()}}, fh)
sys.exit(3 if sys.argv[2] == "yor_Latn" else 0)
"""


@pytest.mark.slow
def test_ray_fanout_runs_one_task_per_language(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    import json

    kakugo = tmp_path / "kakugo"
    kakugo.write_text(STAND_IN.format(python=sys.executable))
    kakugo.chmod(0o755)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "fanout" / "ray_fanout.py"),
         "--languages", "jav_Latn,sun_Latn,yor_Latn", "--runs-dir", str(tmp_path / "runs"),
         "--teacher-url", "http://127.0.0.1:9/v1", "--gpus-per-task", "0",
         "--kakugo", str(kakugo)],
        env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "jav_Latn: ok" in proc.stdout and "sun_Latn: ok" in proc.stdout
    assert "yor_Latn: failed (3)" in proc.stdout
    calls = {lang: json.loads((tmp_path / "runs" / lang / "argv.json").read_text())
             for lang in ("jav_Latn", "sun_Latn", "yor_Latn")}
    assert calls["jav_Latn"]["argv"] == [
        "run", "jav_Latn", "--run-dir", f"{tmp_path / 'runs'}/jav_Latn",
        "--set", "teacher.base_url='http://127.0.0.1:9/v1'"]
    assert calls["jav_Latn"]["pid"] != os.getpid()
