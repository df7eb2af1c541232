"""Configuration: the paper's defaults, user files, --set overrides and bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kakugo_core.config import defaults, load_config, parse_override
from kakugo_core.errors import ConfigError


def test_defaults_are_the_papers_numbers() -> None:
    cfg = defaults()
    assert cfg["teacher"]["model"] == "gpt-oss-120b"
    assert cfg["train"]["base_model"] == "ibm-granite/granite-4.0-micro"
    assert (cfg["train"]["method"], cfg["train"]["epochs"]) == ("full", 1)
    assert cfg["train"]["learning_rate"] == pytest.approx(1e-5)
    assert cfg["train"]["lr_scheduler"] == "cosine"
    assert cfg["train"]["warmup_ratio"] == pytest.approx(0.05)
    assert cfg["train"]["packing"] is True and cfg["train"]["max_length"] == 8000
    topic = cfg["generate"]["topic"]
    assert (topic["general_seeds"], topic["language_seeds"], topic["macro_topics_per_seed"],
            topic["topics_per_macro"], topic["prompts_per_topic"]) == (8, 8, 20, 10, 3)
    scenario = cfg["generate"]["scenario"]
    assert (scenario["general_scenarios"], scenario["language_scenarios"],
            scenario["detailed_per_scenario"], scenario["prompts_per_scenario"]) == (30, 30, 30, 5)
    assert cfg["generate"]["context"]["max_texts"] == 10000
    assert cfg["generate"]["improve"]["fraction"] == 0.5
    translate = cfg["generate"]["translate"]
    assert (translate["samples"], translate["min_token_ratio"], translate["max_token_ratio"]) == (
        15000, 0.75, 25.0)
    assert cfg["bench"]["n_shot"] == 3


def test_user_file_then_set_then_flags(tmp_path: Path) -> None:
    user = tmp_path / "run.toml"
    user.write_text('[train]\nlearning_rate = 2e-5\nmethod = "lora"\n[generate.topic]\n'
                    'prompts_per_topic = 1\n')
    cfg = load_config(user, ["train.lora_rank=3", "teacher.model=my-teacher"],
                      extra={"train": {"method": "full"}})
    assert cfg["train"]["learning_rate"] == pytest.approx(2e-5)
    assert cfg["train"]["lora_rank"] == 3
    assert cfg["teacher"]["model"] == "my-teacher"
    assert cfg["train"]["method"] == "full"
    assert cfg["generate"]["topic"]["prompts_per_topic"] == 1
    assert cfg["generate"]["topic"]["topics_per_macro"] == 10  # untouched default
    assert defaults()["train"]["lora_rank"] == 16  # defaults are not mutated


def test_int_is_accepted_for_a_float_key() -> None:
    cfg = load_config(overrides=["train.learning_rate=1"])
    assert cfg["train"]["learning_rate"] == 1.0 and isinstance(cfg["train"]["learning_rate"], float)


def test_per_benchmark_shot_counts_take_any_benchmark_name() -> None:
    cfg = load_config(overrides=["bench.n_shot_by_benchmark.sib200=0",
                                 "bench.n_shot_by_benchmark.my_bench=5"])
    assert cfg["bench"]["n_shot_by_benchmark"] == {"sib200": 0, "my_bench": 5}
    assert defaults()["bench"]["n_shot_by_benchmark"] == {}
    for bad in ("sib200=-1", "sib200='zero'", "sib200=true", "sib200=1.5"):
        with pytest.raises(ConfigError, match="n_shot_by_benchmark.sib200' must be a non-neg"):
            load_config(overrides=[f"bench.n_shot_by_benchmark.{bad}"])


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    user = tmp_path / "bad.toml"
    user.write_text("[train]\nlearning_rat = 1e-4\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: unknown key 'train\.learning_rat'"):
        load_config(user)


def test_unknown_section(tmp_path: Path) -> None:
    user = tmp_path / "bad.toml"
    user.write_text("[trian]\nepochs = 2\n")
    with pytest.raises(ConfigError, match="unknown key 'trian'"):
        load_config(user)


def test_wrong_type_is_an_error(tmp_path: Path) -> None:
    user = tmp_path / "bad.toml"
    user.write_text('[generate.topic]\nprompts_per_topic = "two"\n')
    with pytest.raises(ConfigError, match="'generate.topic.prompts_per_topic' must be int"):
        load_config(user)
    with pytest.raises(ConfigError, match="'train.packing' must be bool"):
        load_config(overrides=["train.packing=1"])


def test_malformed_and_missing_files(tmp_path: Path) -> None:
    user = tmp_path / "broken.toml"
    user.write_text("[train\nepochs = 2\n")
    with pytest.raises(ConfigError, match="broken.toml: not valid TOML"):
        load_config(user)
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "absent.toml")


def test_override_syntax() -> None:
    assert parse_override("teacher.model=gpt-4o") == {"teacher": {"model": "gpt-4o"}}
    assert parse_override("bench.benchmarks=['sib200']") == {"bench": {"benchmarks": ["sib200"]}}
    with pytest.raises(ConfigError, match="expected section.key=value"):
        parse_override("teacher.model")


def test_cli_reports_bad_config_in_one_line(tmp_path: Path) -> None:
    user = tmp_path / "bad.toml"
    user.write_text("[bench]\nnshot = 5\n")
    result = subprocess.run([sys.executable, "-m", "kakugo_core", "config", "--config", str(user)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == f"kakugo: error: {user}: unknown key 'bench.nshot' " \
                                     "(see `kakugo config`)"


# -- value rules: one table for files, --set and flags (issue 15) -----------------------------
@pytest.mark.parametrize("override, key", [
    ("bench.limit=-5", "bench.limit"),
    ("teacher.timeout_s=-1", "teacher.timeout_s"),
    ("teacher.timeout_s=0", "teacher.timeout_s"),
    ("teacher.max_retries=-1", "teacher.max_retries"),
    ("dataset.validation_fraction=1.5", "dataset.validation_fraction"),
    ("generate.max_cost=-1", "generate.max_cost"),
    ("train.method=qlora", "train.method"),
    ("train.learning_rate=nan", "train.learning_rate"),
    ("teacher.top_p=0", "teacher.top_p"),
    ("generate.improve.fraction=2", "generate.improve.fraction"),
])
def test_out_of_range_values_are_refused_naming_the_key(override: str, key: str,
                                                         tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"'{key}' must be"):
        load_config(overrides=[override])
    section, _, rest = key.partition(".")
    name = rest.rsplit(".", 1)
    header = f"{section}.{name[0]}" if len(name) == 2 else section
    user = tmp_path / "bad.toml"
    user.write_text(f"[{header}]\n{name[-1]} = {override.split('=', 1)[1]!s}\n"
                    .replace("= qlora", '= "qlora"'))
    with pytest.raises(ConfigError, match=f"bad.toml: '{key}' must be"):
        load_config(user)


def test_flags_go_through_the_same_rules() -> None:
    with pytest.raises(ConfigError, match="'generate.max_cost' must be >= 0"):
        load_config(extra={"generate": {"max_cost": -1.0}})


def test_defaults_satisfy_every_rule_and_every_rule_names_a_default() -> None:
    from kakugo_core.config import RULES, check_value

    cfg = defaults()
    for dotted in RULES:
        node = cfg
        for part in dotted.split("."):
            assert part in node, f"rule for unknown key {dotted}"
            node = node[part]
        check_value(dotted, node, "defaults")


def test_boundary_values_are_accepted() -> None:
    cfg = load_config(overrides=["bench.limit=0", "teacher.max_retries=0",
                                 "dataset.validation_fraction=0", "teacher.top_p=1"])
    assert cfg["bench"]["limit"] == 0 and cfg["teacher"]["top_p"] == 1.0


def test_generate_max_cost_flag_negative_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "kakugo_core", "generate", "jav",
                           "--max-cost", "-1", "--work-dir", str(tmp_path / "w")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "kakugo: error: command-line flags: 'generate.max_cost' must be >= 0, got -1.0"]
    assert not (tmp_path / "w").exists()
