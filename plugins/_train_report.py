"""Training outputs besides the weights: ``training_summary.json``, ``loss_curve.png`` and a rich
progress bar for the HF Trainer."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any


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


def rich_progress_callback(title: str) -> Any:
    """A TrainerCallback drawing one rich progress bar with the latest loss."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from transformers import TrainerCallback

    class RichProgress(TrainerCallback):
        def __init__(self) -> None:
            self.progress: Progress | None = None
            self.task: Any = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if not state.is_world_process_zero:
                return
            self.progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[loss]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            )
            self.progress.start()
            self.task = self.progress.add_task(title, total=state.max_steps, loss="")

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.progress is not None:
                self.progress.update(self.task, completed=state.global_step)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None,
                   **kwargs: Any) -> None:
            if self.progress is not None and logs and "loss" in logs:
                self.progress.update(self.task, loss=f"loss {logs['loss']:.4f}")

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.progress is not None:
                self.progress.stop()
                self.progress = None

    return RichProgress()
