"""What produced a release's numbers, in words for its model card: the teacher that wrote the
training data, the judge behind the "teacher as judge" scores, and the base model (linked by its
Hub id, or said to be local, and said to have random weights when it is a Kakugo tiny model)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

#: the demo's offline stand-in teacher (kakugo_core.demo.DEMO_TEACHER_MODEL; not imported, so
#: a release does not load the demo module)
CORPUS_TEACHER = "kakugo-corpus-teacher"
#: the stamp ``kakugo_core.testing.build_tiny_model`` leaves in a model folder it built
TINY_MODEL_STAMP = ".kakugo-tiny-model"


@dataclass(frozen=True)
class Provenance:
    """Markdown phrases for the card (each a noun phrase that fits "... wrote", "by ...")."""

    teacher: str
    base: str
    base_note: str  # "" or one sentence about the base's weights
    base_is_local: bool
    is_demo_teacher: bool


def is_hub_id(name: str) -> bool:
    """Whether ``name`` looks like a Hub repository id (``owner/name``) rather than a local
    path: one slash at most, no leading ``.``/``/``/``~``, and no such folder here."""
    return (bool(re.fullmatch(r"[\w][\w.-]*(/[\w][\w.-]*)?", name))
            and not Path(name).expanduser().exists())


def has_random_weights(base_model: str) -> bool:
    """Whether the base is a local tiny model built by Kakugo (its weights never trained)."""
    return (Path(base_model).expanduser() / TINY_MODEL_STAMP).is_file()


def teacher_model(dataset_dir: Path | None, model_dir: Path) -> str:
    """The teacher recorded in the dataset's card (``teacher_model`` in its metadata), looked
    up in ``dataset_dir`` or the dataset named in the model's ``training_summary.json``."""
    folders = [dataset_dir] if dataset_dir is not None else []
    summary = model_dir / "training_summary.json"
    try:
        recorded = json.loads(summary.read_text("utf-8")).get("dataset")
        if isinstance(recorded, str) and recorded:
            folders.append(Path(recorded))
    except (OSError, ValueError, AttributeError):
        pass
    for folder in folders:
        card = folder / "README.md"
        if not card.is_file():
            continue
        match = re.search(r"^teacher_model:\s*['\"]?([^'\"\n]+?)['\"]?\s*$",
                          card.read_text("utf-8"), re.MULTILINE)
        if match and match.group(1) != "unknown":
            return match.group(1)
    return ""


def describe_teacher(model: str) -> str:
    if model == CORPUS_TEACHER:
        return ("the demo's corpus teacher (`kakugo-corpus-teacher`: a small program that "
                "answers from a bundled corpus of sentences and translations, not a language "
                "model)")
    if model:
        return f"the teacher model `{model}`"
    return "a teacher model (not recorded with the dataset)"


def describe_judge(identity: str) -> str:
    """``plugin:model`` as the judge benchmark stores it, in words."""
    model = identity.split(":", 1)[-1]
    if model == CORPUS_TEACHER:
        return ("the demo's corpus teacher, a stand-in for a judge: it does not read the answers "
                "as a language model would, but prefers the answer with the higher chrF++ "
                "against its own reference answer to the prompt (a tie within 1 point)")
    return f"the teacher model `{model}`" if model else "the teacher model"


def describe(base_model: str, teacher: str) -> Provenance:
    local = not is_hub_id(base_model)
    if local:
        base = f"a local model (`{Path(base_model).name}`, not on the Hugging Face Hub)"
    else:
        base = f"[`{base_model}`](https://huggingface.co/{base_model})"
    note = ""
    if has_random_weights(base_model):
        note = ("The base model has **random weights**: it is a tiny network built by Kakugo "
                "for tests and the offline demo and was never pretrained, so its scores are "
                "those of an untrained model and the student learnt everything it knows from "
                "the training data below.")
    return Provenance(describe_teacher(teacher), base, note, local, teacher == CORPUS_TEACHER)
