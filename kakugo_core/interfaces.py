"""The interfaces plugins implement: teachers, generators, students, benchmarks, backends and
release targets.

They are deliberately small. A plugin registers a *factory* (usually the class itself) under a
name; the host calls it with keyword options from the configuration. Nothing here imports a heavy
library, and neither may a plugin module at import time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kakugo_core.languages import Language

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": "..."}


# -- teachers ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class TeacherRequest:
    """One chat completion to ask a teacher for."""

    messages: tuple[tuple[str, str], ...]  # (role, content) pairs: hashable for the cache
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int | None = None
    extra: tuple[tuple[str, Any], ...] = ()  # further sampling parameters, sorted by key

    @classmethod
    def chat(cls, messages: Sequence[Message], **params: Any) -> TeacherRequest:
        """Build a request from ``[{"role":..., "content":...}]`` messages."""
        known = {k: params.pop(k) for k in ("temperature", "top_p", "max_tokens") if k in params}
        pairs = tuple((m["role"], m["content"]) for m in messages)
        return cls(pairs, extra=tuple(sorted(params.items())), **known)

    def as_messages(self) -> list[Message]:
        return [{"role": r, "content": c} for r, c in self.messages]


@dataclass
class TeacherReply:
    """What a teacher answered, with its reasoning kept apart and its cost."""

    content: str
    reasoning: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    cached: bool = False
    #: why generation ended: "stop", "length" (cut off at max_tokens), or "" when not reported
    finish_reason: str = ""


class Teacher(ABC):
    """A large model that writes, improves, answers, translates and judges."""

    name: str = "teacher"
    model: str = ""

    @abstractmethod
    def complete(self, requests: Sequence[TeacherRequest]) -> list[TeacherReply]:
        """Answer a batch of requests, in order. Raise only for errors that retrying cannot fix."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections or GPU memory."""


# -- generators -------------------------------------------------------------------------------
@dataclass
class GenerationContext:
    """What a generator gets: the language, a (cached) teacher, its options and a work folder."""

    language: Language
    teacher: Teacher
    options: Mapping[str, Any]
    work_dir: Path
    seed: int = 0
    #: rows already in ``prompts.jsonl`` (for generators that transform earlier prompts)
    rows: list[dict[str, Any]] = field(default_factory=list)
    #: ids of rows (and rejects) already written; skip their work on a resumed run
    done_ids: set[str] = field(default_factory=set)


class Generator(ABC):
    """Produces rows of training data (prompts, responses or translations) with a teacher."""

    name: str = "generator"

    @abstractmethod
    def generate(self, context: GenerationContext) -> Iterator[dict[str, Any]]:
        """Yield rows as plain dicts; they are written to JSONL as they come."""


# -- students ---------------------------------------------------------------------------------
class Student(ABC):
    """Turns a base model and a Kakugo dataset into a fine-tuned model folder."""

    name: str = "student"

    @abstractmethod
    def train(
        self, base_model: str, dataset_dir: Path, out_dir: Path, options: Mapping[str, Any]
    ) -> Path:
        """Train and save a model that plain transformers loads; return its folder."""


# -- scoring ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoglikelihoodRequest:
    """Log-probability of ``continuation`` given ``context``."""

    context: str
    continuation: str


@dataclass(frozen=True)
class LoglikelihoodResult:
    logprob: float  # summed over the continuation's tokens
    is_greedy: bool  # every continuation token was the argmax
    n_tokens: int


@dataclass(frozen=True)
class GenerationRequest:
    """Greedy generation from ``prompt`` until a stop string or ``max_new_tokens``."""

    prompt: str
    stop: tuple[str, ...] = ("\n",)
    max_new_tokens: int = 256


class Backend(ABC):
    """Computes log-likelihoods and generations for one model over batches of requests."""

    name: str = "backend"
    model_id: str = ""
    revision: str = ""

    @abstractmethod
    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        """Score every request; results in request order."""

    @abstractmethod
    def generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        """Generate for every request; the stop string is not included in the output."""

    def apply_chat_template(self, prompt: str) -> str:
        """Wrap a prompt in the model's chat template (identity when it has none)."""
        return prompt

    def close(self) -> None:  # noqa: B027 - optional hook
        """Free the model."""


@dataclass
class Score:
    """One metric of one benchmark on one language for one model."""

    metric: str
    value: float
    stderr: float | None
    n: int


@dataclass
class BenchmarkResult:
    """Scores plus the per-item predictions they came from."""

    benchmark: str
    language: str
    n_shot: int
    prompt_hash: str
    scores: list[Score]
    predictions: list[dict[str, Any]] = field(default_factory=list)
    #: where the items came from, e.g. ``hub:<id>@<revision>``, ``local:<digest>``, ``bundled:...``
    data_source: str = ""
    #: the model and its revision (content hash or commit), filled in by the scoring engine
    model: str = ""
    model_revision: str = ""


class Benchmark(ABC):
    """Describes items, prompts and metrics; a backend does the model work."""

    name: str = "benchmark"
    #: the metrics leaderboards and cards show first (all metrics are stored)
    primary_metrics: tuple[str, ...] = ("acc",)
    #: which column of the language registry's ``benchmarks`` map holds this benchmark's code
    coverage_key: str = ""
    #: how tables and cards name it (default: the name)
    label: str = ""
    #: model cards' model-index metadata: the Hub dataset, task type and name, and split
    hub_dataset: str = ""
    task_type: str = ""
    task_name: str = ""
    split: str = ""

    def language_code(self, language: Language) -> str | None:
        """This benchmark's code for the language, or None when it is not covered."""
        return language.benchmarks.get(self.coverage_key or self.name)

    @abstractmethod
    def evaluate(
        self, backend: Backend, language: Language, options: Mapping[str, Any]
    ) -> BenchmarkResult:
        """Score one model on one language."""


# -- releases ---------------------------------------------------------------------------------
@dataclass
class ReleaseResult:
    """Where a release went and what it changed."""

    location: str
    revision: str | None = None
    changed: bool = True
    files: list[str] = field(default_factory=list)


class ReleaseTarget(ABC):
    """Publishes a prepared release folder (weights, cards, tables, plots)."""

    name: str = "target"

    @abstractmethod
    def publish(
        self, folder: Path, repo_id: str, options: Mapping[str, Any]
    ) -> ReleaseResult:
        """Publish ``folder`` as ``repo_id``; make no change when nothing differs."""

    def check(self, options: Mapping[str, Any]) -> None:  # noqa: B027 - optional hook
        """Called with ``publish``'s options before anything is assembled; raise a
        ``KakugoError`` to refuse (an unwritable destination, a missing token)."""

    def plan(self, folder: Path) -> Iterable[str]:
        """The relative paths that ``publish`` would upload (for ``--dry-run``)."""
        return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())

    def describe(self, folder: Path, repo_id: str, options: Mapping[str, Any]) -> list[str]:
        """The ``--dry-run`` lines: what ``publish`` would do, changing nothing (default: every
        file of :meth:`plan` as an upload)."""
        return describe_uploads(folder, self.plan(folder))


def describe_uploads(folder: Path, paths: Iterable[str]) -> list[str]:
    """``upload PATH (SIZE bytes)`` for each path under ``folder``."""
    return [f"upload {p} ({(Path(folder) / p).stat().st_size} bytes)" for p in paths]
