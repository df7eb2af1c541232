"""The model work of the ``judge`` benchmark: answers from both models, verdicts from the
teacher (through its cache), rates into a result. Imported only when a judge runs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kakugo_core.errors import KakugoError
from kakugo_core.interfaces import Backend, BenchmarkResult, Score, Teacher
from kakugo_core.languages import Language
from kakugo_core.toolkit.judging import (
    PromptItem,
    answer_prompts,
    judge_pairs,
    load_prompts,
    preference_scores,
    prompts_digest,
    rubric_digest,
)

HOW_TO = ("run `kakugo judge -m A --opponent B --prompts FILE -l LANG` "
          "(or set judge.prompts and judge.opponent)")


@dataclass
class JudgeTask:
    """What a judge run will ask, before any model is loaded."""

    benchmark: str
    language: str
    prompt_hash: str
    items: list[PromptItem]
    opponent: str
    opponent_revision: str
    judge: str
    n_shot: int = 0


@dataclass
class JudgeResult(BenchmarkResult):
    """A benchmark result that also says who the opponent and the judge were."""

    versions: dict[str, str] = field(default_factory=dict)
    #: the judge's new calls, tokens and cost in this evaluation (cache hits cost nothing)
    usage: dict[str, float] = field(default_factory=dict)


def local_fingerprint(model: str) -> str:
    """A cheap fingerprint of a local model folder (names, sizes, mtimes); '' for a Hub id."""
    folder = Path(model).expanduser()
    if not folder.is_dir():
        return ""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return "files:" + digest.hexdigest()[:16]


def _teacher_identity(options: Mapping[str, Any]) -> str:
    teacher = options.get("teacher")
    if isinstance(teacher, Teacher):
        return f"{teacher.name}:{teacher.model}"
    config = options.get("config")
    if isinstance(config, Mapping) and isinstance(config.get("teacher"), Mapping):
        section = config["teacher"]
        return f"{section.get('plugin', '')}:{section.get('model', '')}"
    raise KakugoError(f"the judge benchmark needs a teacher to act as judge; {HOW_TO}")


def _opponent_identity(options: Mapping[str, Any]) -> tuple[str, str]:
    opponent = options.get("opponent")
    if isinstance(opponent, Backend):
        return opponent.model_id, opponent.revision or ""
    if not opponent:
        raise KakugoError(f"the judge benchmark needs an opponent model; {HOW_TO}")
    return str(opponent), str(options.get("opponent_revision") or local_fingerprint(opponent))


def prepare(name: str, language: Language, options: Mapping[str, Any]) -> JudgeTask:
    """Prompts, opponent and judge identities, and the prompt hash that keys the result."""
    prompts = options.get("prompts")
    if not prompts:
        raise KakugoError(f"the judge benchmark needs held-out prompts; {HOW_TO}")
    limit = options.get("limit") or None
    items = load_prompts(prompts, int(limit) if limit else None,
                         int(options.get("limit_seed") or 0))
    opponent, opponent_revision = _opponent_identity(options)
    judge = _teacher_identity(options)
    parts = {
        "benchmark": name, "prompts": prompts_digest(items), "n": len(items),
        "opponent": opponent, "opponent_revision": opponent_revision, "judge": judge,
        "rubric": rubric_digest(), "max_new_tokens": int(options.get("max_new_tokens", 512)),
        "judge_temperature": float(options.get("judge_temperature", 0.0)),
        "judge_max_tokens": int(options.get("judge_max_tokens", 2048)),
    }
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]
    return JudgeTask(name, language.id, digest, items, opponent, opponent_revision, judge)


def _default_cache_file(config: Mapping[str, Any]) -> Path:
    from platformdirs import user_cache_dir

    from kakugo_core.toolkit.teachers import cache_file_for

    return cache_file_for(config, Path(user_cache_dir("kakugo")) / "judge")


def _teacher(options: Mapping[str, Any]) -> tuple[Teacher, bool]:
    """The judge behind the teacher cache, and whether this run owns (and closes) it."""
    from kakugo_core.toolkit.teachers import CachedTeacher, make_teacher

    teacher = options.get("teacher")
    config = options.get("config") or {}
    cache_file = options.get("cache_file") or None
    if isinstance(teacher, CachedTeacher):
        return teacher, False
    if isinstance(teacher, Teacher):  # a bare teacher: every verdict still goes through a cache
        return CachedTeacher(teacher, cache_file or _default_cache_file(config)), True
    return make_teacher(config, cache_file or _default_cache_file(config)), True


def _opponent(options: Mapping[str, Any]) -> tuple[Backend, bool]:
    opponent = options.get("opponent")
    if isinstance(opponent, Backend):
        return opponent, False
    from kakugo_core.plugins import create

    name = str(options.get("opponent_backend") or "transformers")
    return create("backends", name, model=str(opponent),
                  **dict(options.get("opponent_options") or {})), True


def evaluate(
    name: str, backend: Backend, language: Language, options: Mapping[str, Any]
) -> JudgeResult:
    """Answer with both models, judge every pair in both orders, and score."""
    task = prepare(name, language, options)
    items = task.items
    report: Callable[[float], None] = options.get("progress") or (lambda n: None)
    max_new = int(options.get("max_new_tokens", 512))
    answers_a = answer_prompts(backend, items, max_new, progress=lambda n: report(n / 3))
    opponent, own_opponent = _opponent(options)
    try:
        answers_b = answer_prompts(opponent, items, max_new, progress=lambda n: report(n / 3))
        opponent_revision = opponent.revision or task.opponent_revision
    finally:
        if own_opponent:
            opponent.close()
    teacher, own_teacher = _teacher(options)
    try:
        judgements = judge_pairs(
            teacher, items, answers_a, answers_b, language.name,
            temperature=float(options.get("judge_temperature", 0.0)),
            max_tokens=int(options.get("judge_max_tokens", 2048)),
            progress=lambda n: report(n / 6),
        )
        usage = {key: float(getattr(teacher, key, 0) or 0)
                 for key in ("calls", "prompt_tokens", "completion_tokens", "cost")}
    finally:
        if own_teacher:
            teacher.close()
    verdicts = [v for j in judgements for v in (j.verdict_a_first, j.verdict_b_first)]
    unparsed = sum(1 for v in verdicts if v is None)
    if not any(j.outcome for j in judgements):
        raise KakugoError(
            f"no pair was judged: {unparsed} of the judge's {len(verdicts)} answers had no "
            "verdict line ('Verdict: [[1]]', '[[2]]' or '[[tie]]'); check that the teacher "
            "model follows the rubric (docs/judging.md)"
        )
    scores = [s for s in preference_scores([j.outcome for j in judgements])
              if s.metric != "unparsed"]
    scores.append(Score("unparsed", float(unparsed), None, len(verdicts)))
    versions = {
        "opponent": task.opponent, "opponent_revision": opponent_revision,
        "judge": task.judge, "rubric": rubric_digest(),
    }
    predictions = [{**j.as_dict(), "opponent": task.opponent} for j in judgements]
    return JudgeResult(name, language.id, 0, task.prompt_hash, scores, predictions,
                       data_source=f"local:prompts-{prompts_digest(items)}", versions=versions,
                       usage=usage)
