"""The ``judge`` benchmark: a teacher judges the candidate's answers against an opponent's.

Held-out prompts in the target language are answered by the model being scored (A) and by an
opponent model (B); the teacher compares every pair in both orders with the rubric in
``kakugo_core/data/judge_rubric.md``. Metrics: ``win_rate``, ``tie_rate``, ``loss_rate`` (Wilson
stderr, n = judged pairs) and ``unparsed``. The engine is :mod:`kakugo_core.judging`; the model
work lives in :mod:`benchmarks._judge_impl`, imported only when a judge runs. The module also
registers ``human_preference`` (native speakers' votes from ``kakugo compare``) so that
leaderboards show its rates in the same order; it cannot be run against a model.

Options (``kakugo judge`` fills them from the ``[judge]`` and ``[teacher]`` config sections):
``prompts`` (file, required), ``opponent`` (model id/folder or a Backend, required),
``opponent_backend`` (default: transformers), ``opponent_options``, ``teacher`` (a Teacher) or
``config`` (a full config whose ``[teacher]`` section builds one), ``cache_file`` (judge
verdicts; default: the teacher cache folder), ``max_new_tokens`` (512), ``judge_temperature``
(0.0), ``judge_max_tokens`` (2048), ``limit``, ``progress``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kakugo_core import hookimpl
from kakugo_core.interfaces import Backend, Benchmark, BenchmarkResult
from kakugo_core.languages import Language


class JudgeBenchmark(Benchmark):
    """Pairwise preference of a teacher acting as judge (every language is covered)."""

    name = "judge"
    primary_metrics = ("win_rate", "tie_rate", "loss_rate")
    coverage_key = "judge"
    task_name = "Pairwise preference (teacher as judge)"

    def language_code(self, language: Language) -> str | None:
        return language.id  # prompts are the user's own: any language the judge can read

    def prepare(self, language: Language, options: Mapping[str, Any]) -> Any:
        """The prompts and prompt hash, without loading a model (for skipping stored cells)."""
        from benchmarks._judge_impl import prepare

        return prepare(self.name, language, options)

    def evaluate(
        self, backend: Backend, language: Language, options: Mapping[str, Any]
    ) -> BenchmarkResult:
        from benchmarks._judge_impl import evaluate

        return evaluate(self.name, backend, language, options)


class HumanPreferenceBenchmark(Benchmark):
    """Native speakers' votes (``kakugo compare``): registered so leaderboards and cards know
    its primary metrics; it is never run against a backend."""

    name = "human_preference"
    primary_metrics = ("win_rate", "tie_rate", "loss_rate")
    coverage_key = "human_preference"
    task_name = "Pairwise preference (native speakers)"

    def language_code(self, language: Language) -> str | None:
        return language.id

    def evaluate(
        self, backend: Backend, language: Language, options: Mapping[str, Any]
    ) -> BenchmarkResult:
        from kakugo_core.errors import KakugoError

        raise KakugoError(
            "human_preference is measured by people, not computed: run `kakugo compare export`, "
            "collect votes, then `kakugo compare import VOTES --key KEY` (docs/judging.md)"
        )


@hookimpl
def register_benchmarks(register: Any) -> None:
    register("judge", JudgeBenchmark, aliases=("llm-judge", "pairwise-judge"))
    register("human_preference", HumanPreferenceBenchmark, aliases=("human-preference",))
