"""Training outputs besides the weights: ``training_summary.json``, ``loss_curve.png``, and one
live progress line for the HF Trainer (also written to ``progress.json`` for ``kakugo status``)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from kakugo_core.toolkit.progress import PROGRESS_FILE, progress_line


def loss_points(log_history: list[dict[str, Any]], stage: str) -> dict[str, list[list[float]]]:
    """Training and validation losses by step from a Trainer's ``state.log_history``."""
    train = [[e["step"], e["loss"]] for e in log_history if "loss" in e and "step" in e]
    val = [[e["step"], e["eval_loss"]] for e in log_history if "eval_loss" in e]
    return {"stage": stage, "train": train, "validation": val}  # type: ignore[dict-item]


def loss_figure(stages: list[dict[str, Any]]) -> Any:
    """Train losses as lines (logged every few steps) and validation losses as separate markers
    (measured a few times: a line between them would imply a trend nobody measured)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    offset = 0.0
    for stage in stages:
        train, val = stage["train"], stage["validation"]
        if train:
            ax.plot([offset + s for s, _ in train], [v for _, v in train],
                    label=f"{stage['stage']} train")
        if val:
            ax.plot([offset + s for s, _ in val], [v for _, v in val], marker="o",
                    markersize=6, linestyle="none", label=f"{stage['stage']} validation")
        steps = [s for s, _ in train + val]
        offset += max(steps, default=0)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (SFT: assistant tokens; alignment: all tokens)")
    ax.set_title("Kakugo training")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_loss_curve(stages: list[dict[str, Any]], path: Path) -> None:
    """Draw train and validation losses of every stage into one PNG."""
    import matplotlib.pyplot as plt

    fig = loss_figure(stages)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(fd)
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


#: seconds between progress lines when stderr is not a terminal (a log file)
LOG_EVERY_S = 30.0


def rich_progress_callback(title: str) -> Any:
    """A TrainerCallback showing one live progress line (step/total, loss, tokens/s, ETA): a
    rich line redrawn in place on a terminal, a plain line every :data:`LOG_EVERY_S` seconds in
    a log; it also writes :data:`PROGRESS_FILE` to the output folder for ``kakugo status``."""
    import json
    import sys
    import time

    from transformers import TrainerCallback

    class LiveProgress(TrainerCallback):
        def __init__(self) -> None:
            self.live: Any = None
            self.loss: float | None = None
            self.started = 0.0
            self.first_step = 0
            self.last_print = 0.0
            self.last_file = 0.0
            self.stream = sys.stderr

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if not state.is_world_process_zero:
                return
            self.started = time.monotonic()
            self.first_step = state.global_step  # a resumed run starts part-way
            self.folder = Path(args.output_dir)
            if self.stream.isatty():
                from rich.console import Console
                from rich.live import Live

                self.live = Live("", console=Console(stderr=True), refresh_per_second=2,
                                 transient=False)
                self.live.start()
            self._show(state, force=True)

        def _numbers(self, state: Any) -> tuple[float | None, float | None]:
            elapsed = time.monotonic() - self.started
            done = state.global_step - self.first_step
            tokens = getattr(state, "num_input_tokens_seen", 0) or 0
            rate = tokens / elapsed if tokens and elapsed > 0 else None
            eta = (elapsed / done * (state.max_steps - state.global_step)) if done else None
            return rate, eta

        def _show(self, state: Any, force: bool = False) -> None:
            rate, eta = self._numbers(state)
            line = progress_line(title, state.global_step, state.max_steps, self.loss, rate, eta)
            now = time.monotonic()
            if self.live is not None:
                self.live.update(line)
            elif force or now - self.last_print >= LOG_EVERY_S:
                print(line, file=self.stream, flush=True)
                self.last_print = now
            if force or now - self.last_file >= 2.0:
                self.last_file = now
                self._write(state, rate, eta)

        def _write(self, state: Any, rate: float | None, eta: float | None) -> None:
            data = {"title": title, "step": state.global_step, "max_steps": state.max_steps,
                    "loss": self.loss, "tokens_per_second": rate, "eta_seconds": eta,
                    "updated": time.time()}
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                tmp = self.folder / f".{PROGRESS_FILE}.tmp"
                tmp.write_text(json.dumps(data), "utf-8")
                os.replace(tmp, self.folder / PROGRESS_FILE)
            except OSError:
                pass  # progress is a courtesy; training goes on

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero and self.started:
                self._show(state)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None,
                   **kwargs: Any) -> None:
            if state.is_world_process_zero and logs and "loss" in logs:
                self.loss = float(logs["loss"])

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if not state.is_world_process_zero or not self.started:
                return
            self._show(state, force=True)
            if self.live is not None:
                self.live.stop()
                self.live = None
            self.started = 0.0

    return LiveProgress()
