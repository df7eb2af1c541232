"""Start-up stays light: importing the core and every built-in plugin loads no heavy library."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["torch", "transformers", "peft", "vllm", "datasets", "lm_eval", "accelerate",
         "matplotlib", "huggingface_hub", "sacrebleu", "trl", "numpy"]

PROBE = f"""
import json, sys
import kakugo_core, kakugo_core.cli
from kakugo_core.plugins import PluginHost
host = PluginHost()
from kakugo_core.cli import cli, _add_plugin_commands
_add_plugin_commands()
print(json.dumps({{"plugins": sorted(host.infos), "failures": [f.error for f in host.failures],
                  "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""


def test_core_and_builtin_plugins_import_no_heavy_library() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                            env={"KAKUGO_LOAD_PLUGINS": "", "PATH": ""})
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["failures"] == []
    assert data["heavy"] == [], f"imported at start-up: {data['heavy']}"


def test_help_lists_the_commands() -> None:
    result = subprocess.run([sys.executable, "-m", "kakugo_core", "--help"], capture_output=True,
                            text=True)
    assert result.returncode == 0
    for command in ("languages", "plugins", "config"):
        assert command in result.stdout
