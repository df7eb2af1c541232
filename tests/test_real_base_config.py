"""The shipped real-base configuration (configs/real-base-jav.toml, used by
scripts/real_base_proof.py) still applies on top of the demo's preset: a renamed or removed key
would make the README's reproduction command fail."""

from __future__ import annotations

from pathlib import Path

from kakugo_core.config import load_config
from kakugo_core.demo import demo_overrides

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "configs" / "real-base-jav.toml"


def test_the_real_base_config_overrides_the_demo_preset(tmp_path: Path) -> None:
    preset = demo_overrides(tmp_path / "texts.jsonl", tmp_path / "instructions.jsonl",
                            "http://127.0.0.1:9/v1", tmp_path / "tiny-base")
    demo = load_config(presets=preset)
    config = load_config(CONFIG, ["train.base_model='/models/gemma'"], presets=preset)
    # what the file changes: LoRA on both cores, the paper's 3 shots for SIB-200
    assert (demo["train"]["method"], config["train"]["method"]) == ("full", "lora")
    assert config["run"]["torch_threads"] == 2
    assert demo["bench"]["n_shot_by_benchmark"]["sib200"] == 0
    assert config["bench"]["n_shot_by_benchmark"]["sib200"] == 3
    assert config["train"]["base_model"] == "/models/gemma"
    # what it keeps from the demo: the local corpus teacher and its data
    assert config["teacher"]["base_url"] == "http://127.0.0.1:9/v1"
    assert config["generate"]["translate"]["samples"] == demo["generate"]["translate"]["samples"]
