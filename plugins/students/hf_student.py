"""Student ``hf``: fine-tunes any Hugging Face causal LM on a Kakugo dataset.

Full fine-tune or LoRA, assistant-only loss, packing, and the optional Bllossom stages
(vocabulary expansion, bilingual alignment pretraining). The heavy code lives in
``plugins.students._sft`` and is imported only when training starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kakugo_core import hookimpl
from kakugo_core.interfaces import Student


class HFStudent(Student):
    """Trains with transformers' Trainer (and peft for LoRA); see docs/training.md."""

    name = "hf"

    def __init__(self, **defaults: Any) -> None:
        self.defaults = dict(defaults)

    def train(
        self, base_model: str, dataset_dir: Path, out_dir: Path, options: Mapping[str, Any]
    ) -> Path:
        """Train ``base_model`` on ``dataset_dir`` and write the merged model to ``out_dir``.

        ``options`` are keys of the ``[train]`` configuration section; missing ones take the
        packaged defaults."""
        from kakugo_core.config import defaults
        from plugins.students._sft import run_training

        merged = {**defaults()["train"], **self.defaults, **dict(options)}
        return run_training(base_model, Path(dataset_dir), Path(out_dir), merged)


@hookimpl
def register_students(register: Any) -> None:
    register("hf", HFStudent, aliases=("transformers",))
