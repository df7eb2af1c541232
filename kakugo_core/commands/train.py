"""``kakugo train``: fine-tune a student model on a Kakugo dataset."""

from __future__ import annotations

from typing import Any

import click

from kakugo_core.cli_options import config_options, model_option, out_option


@click.command("train")
@model_option("The base model to fine-tune [default: train.base_model]", dest="base_model",
              old=("--student",))
@click.option("--dataset", "dataset_dir", required=True, type=click.Path(),
              help="Kakugo dataset folder (DatasetDict with train/validation, from "
                   "`kakugo dataset`).")
@out_option("Where the trained model goes; must not exist or be empty", kind="folder",
            dest="out_dir", required=True)
@config_options
@click.option("--plugin", "student_plugin", metavar="NAME",
              help="Student plugin [default: train.student, i.e. hf].")
@click.option("--method", type=click.Choice(["full", "lora"]),
              help="Full fine-tune or LoRA [default: train.method].")
@click.option("--epochs", type=float, help="Training epochs [default: train.epochs].")
@click.option("--learning-rate", type=float, help="Peak learning rate.")
@click.option("--max-length", type=int, help="Token cutoff per conversation and packed row.")
@click.option("--packing/--no-packing", default=None,
              help="Pack conversations into rows without cross-attention [default: on].")
@click.option("--vocab-expansion", "vocab_tokens", type=int, metavar="N",
              help="Bllossom: add N target-language tokens (0: off).")
@click.option("--alignment/--no-alignment", default=None,
              help="Bllossom: bilingual continued pretraining before SFT.")
@click.option("--alignment-source", metavar="PATH",
              help="Parallel FLORES/SIB-200-layout folder or text corpus for --alignment.")
@click.option("--accelerate-config", metavar="FILE",
              help="Run under `accelerate launch --config_file FILE` (multi-GPU, FSDP, DeepSpeed).")
@click.option("--num-processes", type=int, help="Processes for accelerate launch.")
@click.option("--deepspeed", metavar="FILE", help="DeepSpeed JSON config for the Trainer.")
def train_command(base_model: str | None, dataset_dir: str, out_dir: str,
                  config_file: str | None, overrides: tuple[str, ...],
                  student_plugin: str | None, **flags: Any) -> None:
    """Fine-tune a student on a Kakugo dataset and save a merged model that plain transformers
    (and vLLM) loads, with training_summary.json and loss_curve.png beside it.

    Loss is on assistant turns only; each row's system prompt (think or concise) is prepended,
    so the model learns to think under the think prompt and answer directly under the concise
    one. Defaults are the Kakugo paper's (full fine-tune, 1 epoch, lr 1e-5 cosine, warmup 5 %,
    packing, cutoff 8000); see docs/training.md.
    """
    from kakugo_core.config import load_config
    from kakugo_core.files import prepare_output
    from kakugo_core.training import TrainRequest, run

    names = {"method": "method", "epochs": "epochs", "learning_rate": "learning_rate",
             "max_length": "max_length", "packing": "packing",
             "vocab_tokens": "vocab_expansion_tokens", "alignment": "alignment_pretraining",
             "alignment_source": "alignment_source", "accelerate_config": "accelerate_config",
             "num_processes": "num_processes", "deepspeed": "deepspeed"}
    train_flags = {names[k]: v for k, v in flags.items() if v is not None}
    if student_plugin:
        train_flags["student"] = student_plugin
    config = load_config(config_file, overrides, extra={"train": train_flags} if train_flags
                         else {})
    request = TrainRequest.from_config(config, dataset_dir, out_dir, base_model)
    prepare_output(out_dir, kind="folder", inputs=[dataset_dir, request.base_model],
                   empty=True)
    out = run(request)
    click.echo(f"trained model written to {out}")
