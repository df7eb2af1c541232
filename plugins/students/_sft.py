"""Supervised fine-tuning of any HF causal LM on a Kakugo dataset (full or LoRA), with the
optional Bllossom stages (vocabulary expansion, bilingual alignment) in front.

Runs single-process or under ``accelerate launch``/torchrun (DeepSpeed ZeRO, FSDP): the HF
Trainer picks the distributed set-up from the launcher's environment and only the main process
writes the output folder, which appears in one rename when everything is in it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kakugo_core.errors import KakugoError
from kakugo_core.toolkit.files import write_json_atomic
from plugins.students import _sft_data as data
from plugins.students import _train_report as report

SUMMARY_FILE = "training_summary.json"
LOSS_CURVE_FILE = "loss_curve.png"
ADAPTER_DIR = "adapter"


@dataclass
class TrainOptions:
    """The ``[train]`` section of the configuration (see kakugo_core/data/defaults.toml)."""

    student: str = "hf"
    base_model: str = ""
    method: str = "full"
    epochs: float = 1.0
    learning_rate: float = 1e-5
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    packing: bool = True
    max_length: int = 8000
    overlong: str = "error"
    per_device_batch_size: int = 1
    gradient_accumulation_steps: int = 16
    gradient_checkpointing: bool = False
    precision: str = "auto"
    attn_implementation: str = "auto"
    seed: int = 42
    logging_steps: int = 10
    eval_steps: int = 0
    save_steps: int = 0
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: str = "all-linear"
    vocab_expansion_tokens: int = 0
    vocab_corpus: str = ""
    vocab_heldout_fraction: float = 0.1
    alignment_pretraining: bool = False
    alignment_source: str = ""
    alignment_languages: list[str] = field(default_factory=list)
    alignment_epochs: float = 1.0
    alignment_learning_rate: float = 5e-5
    accelerate_config: str = ""
    deepspeed: str = ""
    num_processes: int = 0
    use_generation_blocks: str = "auto"  # "auto", "yes" or "no" (render prefixes)

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> TrainOptions:
        """Options from a config section; unknown keys and bad values are one-line errors."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise KakugoError(f"unknown training option(s) {', '.join(unknown)} "
                              f"(see [train] in `kakugo config`)")
        opts = cls(**dict(options))
        opts.validate()
        return opts

    def validate(self) -> None:
        checks = [
            (self.method in ("full", "lora"), "train.method must be 'full' or 'lora'"),
            (self.overlong in ("error", "drop"), "train.overlong must be 'error' or 'drop'"),
            (self.precision in ("auto", "bf16", "bf16-pure", "fp16", "fp32"),
             "train.precision must be auto, bf16, bf16-pure, fp16 or fp32"),
            (self.use_generation_blocks in ("auto", "yes", "no"),
             "train.use_generation_blocks must be auto, yes or no"),
            (self.max_length > 8, "train.max_length must be larger than 8"),
            (self.epochs > 0, "train.epochs must be positive"),
            (0 <= self.warmup_ratio < 1, "train.warmup_ratio must be in [0, 1)"),
            (self.learning_rate > 0, "train.learning_rate must be positive"),
            (self.per_device_batch_size >= 1, "train.per_device_batch_size must be at least 1"),
            (self.gradient_accumulation_steps >= 1,
             "train.gradient_accumulation_steps must be at least 1"),
            (self.vocab_expansion_tokens >= 0, "train.vocab_expansion_tokens must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise KakugoError(message)

    def generation_blocks(self) -> bool | None:
        return {"auto": None, "yes": True, "no": False}[self.use_generation_blocks]


# -- loading ------------------------------------------------------------------------------------
def _on_gpu() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _compute_dtype(opts: TrainOptions) -> Any:
    """The precision of the forward and backward passes."""
    import torch

    if opts.precision in ("bf16", "bf16-pure") or (
            opts.precision == "auto" and _on_gpu() and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    if opts.precision == "fp16":
        return torch.float16
    return torch.float32


def _dtype(opts: TrainOptions) -> Any:
    """The precision the weights are loaded and updated in: float32 master weights (mixed
    precision) unless ``bf16-pure`` asks for bf16 weights (half the memory, but updates of
    lr 1e-5 size are partly rounded away)."""
    import torch

    return torch.bfloat16 if opts.precision == "bf16-pure" else torch.float32


def _attn_implementation(opts: TrainOptions) -> str:
    """flash-attention 2 where installed on GPU; otherwise per-example sdpa for packed rows
    (``sdpa_varlen``, see plugins/students/_varlen.py) or plain sdpa for padded batches."""
    from plugins.students import _varlen

    if opts.attn_implementation == _varlen.NAME:
        return _varlen.register()
    if opts.attn_implementation != "auto":
        return opts.attn_implementation
    if _on_gpu():
        try:
            import flash_attn  # noqa: F401

            return "flash_attention_2"
        except ImportError:
            pass
    return _varlen.register() if opts.packing else "sdpa"


def load_tokenizer(base_model: str) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(base_model)
    except Exception as exc:
        raise KakugoError(f"cannot load a tokenizer from {base_model!r} "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
                          "; pass a model folder or a Hub id you can reach") from None
    data.check_chat_template(tokenizer, base_model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(base_model: str, opts: TrainOptions) -> Any:
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(
            base_model, dtype=_dtype(opts), attn_implementation=_attn_implementation(opts)
        )
    except Exception as exc:
        raise KakugoError(f"cannot load a causal LM from {base_model!r} "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
                          "; pass a folder with config.json and weights") from None
    return model


# -- training -----------------------------------------------------------------------------------
def _training_args(opts: TrainOptions, work_dir: Path, *, epochs: float, learning_rate: float,
                   has_eval: bool) -> Any:
    from transformers import TrainingArguments

    dtype = _compute_dtype(opts)
    import dataclasses

    import torch

    # transformers renamed gradient_checkpointing to activation_checkpointing (the old name warns)
    checkpointing = "activation_checkpointing" if "activation_checkpointing" in {
        f.name for f in dataclasses.fields(TrainingArguments)} else "gradient_checkpointing"
    # a keyword chosen at run time: typed Any, as mypy would match it against every parameter
    checkpointing_kw: dict[str, Any] = {checkpointing: opts.gradient_checkpointing}
    return TrainingArguments(
        output_dir=str(work_dir),
        num_train_epochs=epochs,
        learning_rate=learning_rate,
        lr_scheduler_type=opts.lr_scheduler,
        warmup_steps=opts.warmup_ratio,
        weight_decay=opts.weight_decay,
        max_grad_norm=opts.max_grad_norm,
        per_device_train_batch_size=opts.per_device_batch_size,
        per_device_eval_batch_size=opts.per_device_batch_size,
        gradient_accumulation_steps=opts.gradient_accumulation_steps,
        **checkpointing_kw,
        use_cpu=not _on_gpu(),
        bf16=dtype == torch.bfloat16,
        fp16=dtype == torch.float16,
        seed=opts.seed,
        data_seed=opts.seed,
        logging_steps=max(1, opts.logging_steps),
        eval_strategy="steps" if (has_eval and opts.eval_steps > 0) else "no",
        eval_steps=opts.eval_steps if opts.eval_steps > 0 else None,
        save_strategy="steps" if opts.save_steps > 0 else "no",
        save_steps=opts.save_steps or 500,
        save_total_limit=1,
        report_to="none",
        disable_tqdm=True,
        include_num_input_tokens_seen=True,  # tokens/s on the progress line
        remove_unused_columns=False,
        dataloader_num_workers=0,
        deepspeed=opts.deepspeed or None,
    )


def _trainer(model: Any, args: Any, train_rows: list[dict], eval_rows: list[dict] | None,
             collator: Any, title: str) -> Any:
    from transformers import PrinterCallback, Trainer

    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data.RowsDataset(train_rows),
        eval_dataset=data.RowsDataset(eval_rows) if eval_rows else None,
        data_collator=collator,
        callbacks=[report.rich_progress_callback(title)],
    )
    trainer.remove_callback(PrinterCallback)  # the rich bar shows the loss instead
    return trainer


def _collator(opts: TrainOptions, tokenizer: Any) -> Any:
    return data.PackedCollator() if opts.packing else data.PaddedCollator(tokenizer.pad_token_id)


def _tokenize_with_progress(tokenizer: Any, rows: Any, opts: TrainOptions, label: str,
                            stats: data.TokenizeStats) -> list[data.Example]:
    from rich.progress import Progress

    with Progress(transient=True, disable=not _is_main_process()) as progress:
        task = progress.add_task(f"tokenizing {label}", total=len(rows))
        return data.tokenize_split(
            tokenizer, rows, opts.max_length, opts.overlong, opts.generation_blocks(),
            progress=lambda: progress.advance(task), stats=stats,
        )


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _lora_wrap(model: Any, opts: TrainOptions, new_token_ids: list[int]) -> Any:
    from peft import LoraConfig, get_peft_model

    targets: Any = opts.lora_target_modules
    if targets != "all-linear":
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    config = LoraConfig(
        r=opts.lora_rank,
        lora_alpha=opts.lora_alpha,
        lora_dropout=opts.lora_dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
        # new vocabulary rows must learn too; peft keeps tied embeddings tied
        trainable_token_indices=new_token_ids or None,
    )
    try:
        return get_peft_model(model, config)
    except ValueError as exc:
        raise KakugoError(f"LoRA cannot wrap this model: {str(exc).splitlines()[0]}; "
                          "set train.lora_target_modules to its linear layer names") from None


def _eval_loss(trainer: Any) -> float | None:
    if trainer.eval_dataset is None:
        return None
    return float(trainer.evaluate()["eval_loss"])


def _example_texts(rows: Any) -> list[str]:
    return [m["content"] for row in rows for m in row["messages"]]


def run_training(base_model: str, dataset_dir: Path, out_dir: Path,
                 options: Mapping[str, Any]) -> Path:
    """Train and write ``out_dir``: merged model, tokenizer with its chat template, generation
    config, ``adapter/`` (LoRA), ``training_summary.json`` and ``loss_curve.png``."""
    opts = TrainOptions.from_mapping(options)
    if opts.deepspeed:
        _check_deepspeed(opts.deepspeed)
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise KakugoError(f"{out_dir} already exists and is not empty; choose another --out "
                          "or remove it")
    started = time.time()
    from kakugo_core.toolkit.models import check_model_source

    # a missing path is named as such (loading reports what is wrong inside a folder)
    check_model_source(base_model, "base model", contents=False)
    dataset = data.load_kakugo_dataset(dataset_dir)
    tokenizer = load_tokenizer(base_model)
    model = load_model(base_model, opts)

    import torch
    from transformers import set_seed

    set_seed(opts.seed)
    summary: dict[str, Any] = {
        "base_model": base_model, "dataset": str(dataset_dir), "options": asdict(opts),
        "device": "cuda" if _on_gpu() else "cpu", "dtype": str(_dtype(opts)).replace("torch.", ""),
        "compute_dtype": str(_compute_dtype(opts)).replace("torch.", ""),
        "attn_implementation": _attn_implementation(opts),
        # CPU threads shape floating-point sums: recorded so that two runs can be compared
        "torch_threads": torch.get_num_threads(),
    }
    stages: list[dict[str, Any]] = []

    new_token_ids: list[int] = []
    if opts.vocab_expansion_tokens > 0:
        from plugins.students import _vocab

        corpus = (_vocab.read_corpus(opts.vocab_corpus) if opts.vocab_corpus
                  else _example_texts(dataset["train"]))
        tokenizer, expansion = _vocab.expand_vocabulary(
            model, tokenizer, corpus, opts.vocab_expansion_tokens,
            heldout_fraction=opts.vocab_heldout_fraction, seed=opts.seed,
        )
        new_token_ids = expansion.new_token_ids
        summary["vocab_expansion"] = expansion.as_dict()

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # one staging folder beside the output, the same for every process of a distributed run
    work = out_dir.parent / f".{out_dir.name}.partial"
    resume_from = _resumable_checkpoint(work, base_model, dataset_dir, opts)
    request_key = _request_key(base_model, dataset_dir, opts)
    if _is_main_process():
        if resume_from is None:
            _clear_work_folder(work, request_key)
        work.mkdir(parents=True, exist_ok=True)
        (work / RESUME_STAMP).write_text(request_key, "utf-8")
    finished = False
    try:
        if opts.alignment_pretraining and resume_from is None:  # a checkpoint holds its result
            from plugins.students import _alignment

            texts = _alignment.alignment_texts(opts.alignment_source, opts.alignment_languages,
                                               dataset["train"])
            rows = _alignment.pretraining_rows(tokenizer, texts, opts.max_length)
            trainer = _trainer(model, _training_args(opts, work / "alignment",
                                                     epochs=opts.alignment_epochs,
                                                     learning_rate=opts.alignment_learning_rate,
                                                     has_eval=False),
                               rows, None, data.PackedCollator(), "alignment pretraining")
            trainer.train()
            stages.append(report.loss_points(trainer.state.log_history, "alignment"))
            summary["alignment"] = {"texts": len(texts), "rows": len(rows),
                                    "tokens_per_epoch": sum(len(r["input_ids"]) for r in rows)}
            model = trainer.model

        train_stats, val_stats = data.TokenizeStats(), data.TokenizeStats()
        train_examples = _tokenize_with_progress(tokenizer, dataset["train"], opts, "train",
                                                 train_stats)
        val_split = dataset["validation"] if "validation" in dataset else []
        val_examples = _tokenize_with_progress(tokenizer, val_split, opts, "validation",
                                               val_stats) if len(val_split) else []
        if not train_examples:
            raise KakugoError("every training conversation was dropped as too long; "
                              "raise train.max_length")
        train_rows = data.build_rows(train_examples, opts.packing, opts.max_length)
        val_rows = data.build_rows(val_examples, opts.packing, opts.max_length)

        if opts.method == "lora":
            model = _lora_wrap(model, opts, new_token_ids)
        args = _training_args(opts, work / "sft", epochs=opts.epochs,
                              learning_rate=opts.learning_rate, has_eval=bool(val_rows))
        trainer = _trainer(model, args, train_rows, val_rows, _collator(opts, tokenizer),
                           f"fine-tuning ({opts.method})")
        initial_val = _eval_loss(trainer) if resume_from is None else None
        if resume_from is not None:
            summary["resumed_from_checkpoint"] = resume_from.name
        train_started = time.time()
        clock = _AttemptClock(work / ATTEMPTS_FILE, train_started)
        if _is_main_process():
            trainer.add_callback(clock.callback())
        result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
        train_seconds = time.time() - train_started
        clock.tick(force=True)
        final_val = _eval_loss(trainer)
        stage = report.loss_points(trainer.state.log_history, "sft")
        if initial_val is not None:
            stage["validation"] = [[0, initial_val], *stage["validation"]]
        stages.append(stage)

        tokens_per_epoch = sum(len(r["input_ids"]) for r in train_rows)
        summary.update({
            "train_examples": train_stats.examples,
            "dropped_overlong": train_stats.dropped_overlong + val_stats.dropped_overlong,
            "validation_examples": val_stats.examples,
            "train_rows": len(train_rows),
            "tokens_seen": int(round(tokens_per_epoch * opts.epochs)),
            "assistant_tokens_seen": int(round(train_stats.assistant_tokens * opts.epochs)),
            "optimizer_steps": trainer.state.global_step,
            "train_loss": float(result.training_loss),
            "initial_validation_loss": initial_val,
            "final_validation_loss": final_val,
            "train_seconds": train_seconds,
            # killed attempts this run resumed from cost GPU time too (cost.json counts it)
            "train_seconds_all_attempts": max(clock.total(), train_seconds),
            "tokens_per_second": tokens_per_epoch * opts.epochs / max(train_seconds, 1e-9),
            "losses": stages,
            "chat_template": tokenizer.chat_template,
        })
        staging = work / "model"
        _save_outputs(trainer, tokenizer, opts, staging)  # every process: gathers shards
        if trainer.is_world_process_zero():
            summary["seconds"] = time.time() - started
            write_json_atomic(staging / SUMMARY_FILE, summary)
            report.plot_loss_curve(stages, staging / LOSS_CURVE_FILE)
            if out_dir.exists():
                out_dir.rmdir()  # empty, checked above
            os.replace(staging, out_dir)
        trainer.accelerator.wait_for_everyone()
        finished = True
    finally:
        # keep checkpoints of an interrupted run (train.save_steps) so the next one resumes;
        # without one, keep what the attempt cost (the next attempt of the request adds it)
        if _is_main_process() and finished:
            shutil.rmtree(work, ignore_errors=True)
        elif _is_main_process() and not _checkpoints(work / "sft"):
            _clear_work_folder(work, request_key)
    return out_dir


RESUME_STAMP = "request.json"
#: seconds each training attempt of this request has run, kept while a checkpoint is kept
ATTEMPTS_FILE = "attempt_seconds.json"


class _AttemptClock:
    """Records how long this training attempt has run, every few seconds, beside the
    checkpoints; a resumed run sums every attempt's time so a killed attempt is still costed."""

    def __init__(self, path: Path, started: float) -> None:
        self.path, self.started, self.last = path, started, 0.0
        self.key = f"{datetime.fromtimestamp(started, timezone.utc).isoformat()}-{os.getpid()}"

    def _read(self) -> dict[str, float]:
        try:
            data = json.loads(self.path.read_text("utf-8"))
            return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}
        except (OSError, ValueError, AttributeError):
            return {}

    def tick(self, force: bool = False) -> None:
        now = time.time()
        if not _is_main_process() or (not force and now - self.last < 2.0):
            return
        self.last = now
        if self.path.parent.is_dir():
            write_json_atomic(self.path, {**self._read(), self.key: round(now - self.started, 3)})

    def total(self) -> float:
        return sum(self._read().values())

    def callback(self) -> Any:
        from transformers import TrainerCallback

        clock = self

        class _Tick(TrainerCallback):
            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                clock.tick()

            def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                clock.tick(force=True)

        return _Tick()


def _clear_work_folder(work: Path, request_key: str) -> None:
    """Empty ``work`` for a fresh start, keeping the seconds that earlier attempts of the same
    request ran (a killed attempt that left no checkpoint still cost its time)."""
    stamp, attempts = work / RESUME_STAMP, work / ATTEMPTS_FILE
    same_request = stamp.is_file() and stamp.read_text("utf-8") == request_key
    kept = attempts.read_bytes() if same_request and attempts.is_file() else None
    shutil.rmtree(work, ignore_errors=True)
    if kept is not None:
        work.mkdir(parents=True, exist_ok=True)
        stamp.write_text(request_key, "utf-8")
        attempts.write_bytes(kept)


def _request_key(base_model: str, dataset_dir: Path, opts: TrainOptions) -> str:
    return json.dumps({"base_model": base_model, "dataset": str(dataset_dir),
                       "options": asdict(opts)}, sort_keys=True, default=str)


def _checkpoints(folder: Path) -> list[Path]:
    found = [p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def _resumable_checkpoint(work: Path, base_model: str, dataset_dir: Path,
                          opts: TrainOptions) -> Path | None:
    """The last SFT checkpoint an interrupted run of exactly this request left, if any."""
    stamp = work / RESUME_STAMP
    if opts.save_steps <= 0 or not stamp.is_file():
        return None
    if stamp.read_text("utf-8") != _request_key(base_model, dataset_dir, opts):
        return None
    found = _checkpoints(work / "sft")
    return found[-1] if found else None


def _save_outputs(trainer: Any, tokenizer: Any, opts: TrainOptions, staging: Path) -> None:
    """Merged weights, tokenizer, generation config and (LoRA) the adapter into ``staging``.

    Called on every process: ``trainer.save_model`` gathers DeepSpeed/FSDP shards and writes on
    the main process only."""
    import torch

    unwrapped = trainer.accelerator.unwrap_model(trainer.model)
    base = unwrapped.get_base_model() if opts.method == "lora" else unwrapped
    _set_generation_defaults(base, tokenizer)
    # save in the precision training computed in (bf16 on GPU: half the size of fp32)
    save_dtype = _compute_dtype(opts)
    if opts.method == "full":
        if save_dtype != torch.float32 and not opts.deepspeed:
            unwrapped.to(save_dtype)
        trainer.save_model(str(staging))
    else:
        trainer.save_model(str(staging / ADAPTER_DIR))
    if not trainer.is_world_process_zero():
        return
    if opts.method == "lora":
        tokenizer.save_pretrained(staging / ADAPTER_DIR)
        merged = unwrapped.merge_and_unload()
        if save_dtype != torch.float32:
            merged.to(save_dtype)
        merged.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    (staging / "chat_template.jinja").write_text(tokenizer.chat_template, "utf-8")
    for leftover in ("training_args.bin",):
        (staging / leftover).unlink(missing_ok=True)
        (staging / ADAPTER_DIR / leftover).unlink(missing_ok=True)


def _set_generation_defaults(model: Any, tokenizer: Any) -> None:
    """Stop at the tokenizer's end-of-turn token; pad with its pad token."""
    gen = model.generation_config
    eos = {tokenizer.eos_token_id}
    if isinstance(gen.eos_token_id, list):
        eos |= set(gen.eos_token_id)
    elif gen.eos_token_id is not None:
        eos.add(gen.eos_token_id)
    ids = sorted(e for e in eos if e is not None)
    gen.eos_token_id = ids[0] if len(ids) == 1 else ids
    gen.pad_token_id = tokenizer.pad_token_id
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.use_cache = True


def _check_deepspeed(path: str) -> None:
    if not Path(path).is_file():
        raise KakugoError(f"DeepSpeed config {path} does not exist")
    try:
        json.loads(Path(path).read_text("utf-8"))
    except ValueError as exc:
        raise KakugoError(f"DeepSpeed config {path} is not valid JSON: {exc}") from None
    try:
        import deepspeed  # noqa: F401
    except ImportError:
        raise KakugoError("train.deepspeed is set but DeepSpeed is not installed; "
                          "`pip install deepspeed` on the GPU machine") from None


def steps_per_epoch(rows: int, opts: TrainOptions, world_size: int = 1) -> int:
    """Optimizer steps in one epoch (for documentation and planning)."""
    per_step = opts.per_device_batch_size * opts.gradient_accumulation_steps * world_size
    return max(1, math.ceil(rows / per_step))
