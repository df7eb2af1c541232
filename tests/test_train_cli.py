"""``kakugo train`` on the command line, and the distributed entry point under
``accelerate launch`` (one CPU process)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import run_cli

REPO = Path(__file__).resolve().parent.parent
CPU_CONFIG = REPO / "configs" / "accelerate" / "cpu_single_process.yaml"
FAST = ["--set", "train.gradient_accumulation_steps=1", "--set", "train.per_device_batch_size=2",
        "--set", "train.logging_steps=1", "--max-length", "512", "--learning-rate", "0.005"]



def _kakugo(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "KAKUGO_LOAD_PLUGINS": "",
           "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, "-c", "from kakugo_core.cli import main; main()",
                           *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory, sib200_dir, dataset_builder):
    return dataset_builder.build_dataset(sib200_dir, tmp_path_factory.mktemp("ds") / "d", 24, 8)


def test_help_explains_the_options():
    from click.testing import CliRunner

    from kakugo_core.cli import cli

    result = CliRunner().invoke(cli, ["train", "--help"])
    assert result.exit_code == 0
    for option in ("--model", "--dataset", "--out", "--method", "--accelerate-config",
                   "--deepspeed", "--vocab-expansion", "--alignment", "--set"):
        assert option in result.output


@pytest.mark.parametrize("problem", ["missing-dataset", "wrong-columns", "no-model",
                                     "unknown-key", "no-deepspeed", "bad-method"])
def test_unusable_inputs_fail_with_one_line(problem, tmp_path, tiny_model, small_dataset,
                                            capsys):
    from datasets import Dataset, DatasetDict

    dataset = small_dataset
    student = str(tiny_model)
    extra: list[str] = []
    if problem == "missing-dataset":
        dataset = tmp_path / "nowhere"
    elif problem == "wrong-columns":
        dataset = tmp_path / "cols"
        DatasetDict({"train": Dataset.from_list([{"prompt": "a", "answer": "b"}])}) \
            .save_to_disk(dataset)
    elif problem == "no-model":
        student = str(tmp_path / "no-such-model")
    elif problem == "no-deepspeed":
        if importlib.util.find_spec("deepspeed") is not None:
            pytest.skip("DeepSpeed is installed here")
        extra = ["--deepspeed", str(REPO / "configs" / "deepspeed" / "zero2.json")]
    elif problem == "bad-method":
        extra = ["--set", "train.method=qlora"]
    else:
        extra = ["--set", "train.learning_rat=1"]
    from kakugo_core.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "-m", student, "--dataset", str(dataset),
              "--out", str(tmp_path / "out"), *extra])
    assert exit_info.value.code != 0
    stderr = capsys.readouterr().err
    errors = [line for line in stderr.splitlines() if line.startswith("kakugo: error:")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_accelerate_launch_trains_in_one_cpu_process(tmp_path, tiny_model, small_dataset):
    out = tmp_path / "model"
    result = _kakugo("train", "-m", str(tiny_model), "--dataset", str(small_dataset),
                     "--out", str(out), "--epochs", "1", *FAST,
                     "--accelerate-config", str(CPU_CONFIG), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"trained model written to {out}" in result.stdout
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["options"]["accelerate_config"] == ""  # the launched process ran it
    assert summary["options"]["base_model"] == summary["base_model"]  # one base model
    assert summary["final_validation_loss"] < summary["initial_validation_loss"]
    assert summary["train_examples"] == 24 and summary["options"]["max_length"] == 512

    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(out).num_parameters() > 0


def test_launch_command_passes_the_config_through(tmp_path):
    from kakugo_core.training import launch_command

    cmd = launch_command(tmp_path / "req.json", "configs/accelerate/fsdp.yaml", 8)
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--config_file") + 1] == "configs/accelerate/fsdp.yaml"
    assert cmd[cmd.index("--num_processes") + 1] == "8"
    assert cmd[-4:] == ["-m", "kakugo_core.training", "--request", str(tmp_path / "req.json")]


def test_training_shows_one_progress_line_and_no_third_party_noise(
        tmp_path, tiny_model, small_dataset):
    """In a log (stderr is a pipe): progress lines with step/total, loss, tokens/s and ETA;
    no "Writing model shards" bar per checkpoint, no "Saving the dataset", no FutureWarning."""
    out = tmp_path / "model"
    result = _kakugo("train", "-m", str(tiny_model), "--dataset", str(small_dataset),
                     "--out", str(out), "--epochs", "1", *FAST,
                     "--set", "train.save_steps=2", cwd=tmp_path)  # a checkpoint every 2 steps
    assert result.returncode == 0, result.stderr[-3000:]
    steps = json.loads((out / "training_summary.json").read_text())["optimizer_steps"]
    lines = [line for line in result.stderr.splitlines() if "fine-tuning (full): step" in line]
    assert lines, result.stderr
    last = lines[-1]
    assert f"step {steps}/{steps}" in last and " · loss " in last and " tok/s" in last, last
    assert any("ETA" in line for line in lines), lines
    for noise in ("Writing model shards", "Saving the dataset", "FutureWarning", "it/s]"):
        assert noise not in result.stderr, result.stderr[-3000:]


def test_progress_callback_writes_what_kakugo_status_reads(tmp_path):
    """The trainer callback's progress.json, as a running train stage leaves it, is what
    `kakugo status` turns into the step line."""
    from types import SimpleNamespace

    from kakugo_core.commands.run import _progress
    from plugins.students._train_report import rich_progress_callback

    work = tmp_path / "train" / ".model.partial" / "sft"
    args = SimpleNamespace(output_dir=str(work))
    state = SimpleNamespace(is_world_process_zero=True, global_step=0, max_steps=200,
                            num_input_tokens_seen=0)
    callback = rich_progress_callback("fine-tuning (full)")
    callback.on_train_begin(args, state, None)
    state.global_step, state.num_input_tokens_seen = 40, 50_000
    callback.on_log(args, state, None, logs={"loss": 2.31})
    callback.on_train_end(args, state, None)  # forces the last write
    data = json.loads((work / "progress.json").read_text())
    assert data["step"] == 40 and data["max_steps"] == 200 and data["loss"] == 2.31
    assert data["tokens_per_second"] > 0 and data["eta_seconds"] is not None
    assert _progress(tmp_path / "train").startswith("fine-tuning (full): step 40/200 · loss 2.3100")


def test_a_killed_attempt_without_a_checkpoint_is_still_costed(tmp_path, tiny_model,
                                                                 small_dataset):
    """SIGKILL an attempt that saves no checkpoint, rerun the same request: the summary's
    all-attempts seconds hold the killed attempt's time too (it was wiped with the work folder)."""
    import signal
    import time

    out = tmp_path / "model"
    args = ["train", "-m", str(tiny_model), "--dataset", str(small_dataset),
            "--out", str(out), "--epochs", "20", *FAST, "--set", "train.save_steps=0"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "KAKUGO_LOAD_PLUGINS": "",
           "TOKENIZERS_PARALLELISM": "false"}
    attempts = tmp_path / ".model.partial" / "attempt_seconds.json"
    killed = subprocess.Popen([sys.executable, "-c", "from kakugo_core.cli import main; main()",
                               *args], cwd=tmp_path, env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, ran = time.time() + 600, 0.0
    try:  # kill as soon as the attempt has recorded some training time (a quiet machine
        # trains the 20 epochs in a few seconds, so waiting for more could miss it)
        while ran < 0.1:
            assert killed.poll() is None, "training ended before it could be killed"
            assert time.time() < deadline, "training never recorded its time"
            time.sleep(0.2)
            try:
                ran = sum(json.loads(attempts.read_text()).values())
            except (OSError, ValueError):
                pass
    finally:
        if killed.poll() is None:
            os.killpg(killed.pid, signal.SIGKILL)
        killed.wait(timeout=60)
    ran = sum(json.loads(attempts.read_text()).values())  # the killed attempt's last record
    assert not list((tmp_path / ".model.partial").glob("sft/checkpoint-*"))

    # the rerun in this process: the same training code, without a second start of Python,
    # torch and transformers
    assert run_cli(*args) == 0
    summary = json.loads((out / "training_summary.json").read_text())
    assert "resumed_from_checkpoint" not in summary  # nothing to resume: it started again
    assert summary["train_seconds_all_attempts"] >= summary["train_seconds"] + ran - 0.01
    assert not (tmp_path / ".model.partial").exists()  # a finished request leaves nothing
