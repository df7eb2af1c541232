"""The generation runner: generators × teacher → ``prompts.jsonl``, ``responses.jsonl``,
``translations.jsonl`` in a work folder.

Every row carries an ``id``; the files are append-only and flushed per row, so a killed run keeps
everything it wrote. On a rerun each generator is told which ids are done (``context.done_ids``)
and skips them; intermediate teacher calls (topic lists, scenario lists) are repeated through the
teacher's content-addressed cache, which answers them without a paid call. Rejected work (an
answer that did not parse, a translation that failed a check) is written to ``rejects.jsonl``
with its id and reason, so it is counted once and not retried.

Teacher usage (calls, tokens, cost) is appended to ``usage.jsonl`` per reply, so ``max_cost``
holds across resumes: before each batch the runner checks what was spent and stops cleanly,
without a new request, once the limit is reached.

Generators use :func:`prompt_templates`, :func:`render` and :func:`ask` from here; all of it is
cheap to import.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from kakugo_core.config import Config
from kakugo_core.errors import ConfigError, KakugoError
from kakugo_core.files import write_json_atomic, writing
from kakugo_core.interfaces import (
    GenerationContext,
    Generator,
    Teacher,
    TeacherReply,
    TeacherRequest,
)
from kakugo_core.languages import Language
from kakugo_core.plugins import plugin_call, plugin_iter
from kakugo_core.secrets import redact
from kakugo_core.teachers import iter_complete

#: output name -> file name; a generator's ``output`` attribute picks one (default "prompts")
OUTPUT_FILES = {
    "prompts": "prompts.jsonl",
    "responses": "responses.jsonl",
    "translations": "translations.jsonl",
}
REJECTS_FILE = "rejects.jsonl"
USAGE_FILE = "usage.jsonl"
SUMMARY_FILE = "summary.json"
LOCK_FILE = ".lock"


class BudgetExhausted(KakugoError):
    """The configured ``max_cost`` was reached; raised before a batch that would spend more."""


# -- prompt templates --------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _read_prompts(path: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    if path:
        try:
            return tomllib.loads(Path(path).read_text("utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such prompts file ([generate].prompts_file)") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    text = resources.files("kakugo_core").joinpath("data/prompts.toml").read_text("utf-8")
    return tomllib.loads(text)


def prompt_templates(section: str, path: str = "") -> dict[str, Any]:
    """One section of the teacher prompt templates (``kakugo_core/data/prompts.toml``, or a
    user's file with the same layout)."""
    data = _read_prompts(path)
    if section not in data:
        where = path or "the packaged prompts.toml"
        raise ConfigError(f"{where}: no [{section}] section of teacher prompts")
    return dict(data[section])


def render(template: str, **values: Any) -> str:
    """Fill ``$name`` placeholders; unknown placeholders are left as they are."""
    return Template(template).safe_substitute({k: str(v) for k, v in values.items()})


# -- teacher calls -----------------------------------------------------------------------------
def ask(
    teacher: Teacher, requests: Sequence[TeacherRequest]
) -> Iterator[tuple[int, TeacherReply]]:
    """Answers to ``requests`` as ``(index, reply)`` pairs, each as soon as it arrives when the
    teacher streams (``complete_iter``), else the whole batch at once; no call for no request."""
    if requests:
        yield from iter_complete(teacher, list(requests))


@dataclass
class Usage:
    """Teacher usage: calls made (cached ones separately), tokens, cost, and the retries and
    failed requests the teacher reported (each one is time, and often money, spent)."""

    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    retries: int = 0
    failures: int = 0

    def add(self, reply: TeacherReply) -> None:
        if reply.cached:
            self.cached_calls += 1
            return
        self.calls += 1
        self.prompt_tokens += reply.prompt_tokens
        self.completion_tokens += reply.completion_tokens
        self.cost += reply.cost

    def merge(self, other: Mapping[str, Any]) -> None:
        for key in ("calls", "cached_calls", "prompt_tokens", "completion_tokens", "retries",
                    "failures"):
            setattr(self, key, getattr(self, key) + int(other.get(key, 0)))
        self.cost += float(other.get("cost", 0.0))


class MeteredTeacher(Teacher):
    """Wraps the real teacher: splits batches, refuses to start one once ``max_cost`` is spent,
    records every reply's usage in ``usage.jsonl`` and reports it to a callback."""

    def __init__(
        self,
        inner: Teacher,
        usage_file: Path,
        max_cost: float = 0.0,
        batch_size: int = 256,
        on_reply: Callable[[TeacherReply], None] | None = None,
        on_submit: Callable[[int], None] | None = None,
        plugin: str = "",
    ) -> None:
        self.inner = inner
        #: the registered teacher name its errors are reported under ("" : the teacher's name)
        self.plugin = plugin or inner.name
        self.name = inner.name
        self.model = inner.model
        self.max_cost = max_cost
        self.batch_size = max(1, batch_size)
        self.on_reply = on_reply
        self.on_submit = on_submit
        self.usage = Usage()  # this process
        self.total = Usage()  # every run in this work folder
        self._usage_file = usage_file
        self._lock = threading.Lock()
        for row in _read_jsonl(usage_file, repair=True):
            self.total.merge(row)

    def _check_budget(self) -> None:
        if self.max_cost > 0 and self.total.cost >= self.max_cost:
            raise BudgetExhausted(
                f"max_cost ${self.max_cost:.2f} reached (spent ${self.total.cost:.4f}); "
                "finished rows are kept — raise --max-cost and run again to continue"
            )

    def record_trouble(self, teacher: Teacher) -> None:
        """Add the retries and failed requests ``teacher`` counted in this process to the
        totals and to ``usage.jsonl`` (once)."""
        inner: Any = teacher
        while inner is not None and not hasattr(inner, "retries"):
            inner = getattr(inner, "inner", None)  # the client under a cache
        row = {"retries": int(getattr(inner, "retries", 0) or 0) - self.usage.retries,
               "failures": int(getattr(inner, "failures", 0) or 0) - self.usage.failures}
        if not any(row.values()):
            return
        with self._lock:
            for usage in (self.usage, self.total):
                usage.merge(row)
            with open(self._usage_file, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")

    def _record(self, reply: TeacherReply) -> None:
        with self._lock:
            self.usage.add(reply)
            self.total.add(reply)
            row = {
                "calls": 0 if reply.cached else 1,
                "cached_calls": 1 if reply.cached else 0,
                "prompt_tokens": 0 if reply.cached else reply.prompt_tokens,
                "completion_tokens": 0 if reply.cached else reply.completion_tokens,
                "cost": 0.0 if reply.cached else reply.cost,
            }
            with open(self._usage_file, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
        if self.on_reply is not None:
            self.on_reply(reply)

    def _chunks(self, requests: Sequence[TeacherRequest]) -> Iterator[tuple[int, list]]:
        for start in range(0, len(requests), self.batch_size):
            self._check_budget()
            yield start, list(requests[start : start + self.batch_size])

    def _submitted(self, requests: Sequence[TeacherRequest]) -> None:
        if self.on_submit is not None and requests:
            self.on_submit(len(requests))

    def complete(self, requests: Sequence[TeacherRequest]) -> list[TeacherReply]:
        self._submitted(requests)
        replies: list[TeacherReply] = []
        for _start, chunk in self._chunks(requests):
            with plugin_call("teachers", self.plugin, "complete"):
                answered = self.inner.complete(chunk)
            for reply in answered:
                self._record(reply)
                replies.append(reply)
        return replies

    def complete_iter(
        self, requests: Sequence[TeacherRequest]
    ) -> Iterator[tuple[int, TeacherReply]]:
        self._submitted(requests)
        for start, chunk in self._chunks(requests):
            for index, reply in plugin_iter("teachers", self.plugin, "complete",
                                            ask(self.inner, chunk)):
                self._record(reply)
                yield start + index, reply

    def close(self) -> None:
        self.inner.close()


# -- JSONL files -------------------------------------------------------------------------------
def _read_jsonl(path: Path, repair: bool = False) -> list[dict[str, Any]]:
    """Rows of a JSONL file. A torn last line (a killed writer) is skipped, and with ``repair``
    (only while holding the work folder's lock, before appending) cut off the file."""
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = []
    good_end = 0
    with open(path, "rb") as handle:
        data = handle.read()
    offset = 0
    for line in data.splitlines(keepends=True):
        offset += len(line)
        if not line.endswith(b"\n"):
            break  # torn write: cut it off below
        text = line.strip()
        if text:
            try:
                rows.append(json.loads(text))
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise KakugoError(
                    f"{path}: line {len(rows) + 1} is not JSON; fix or remove it and run again"
                ) from None
        good_end = offset
    if repair and good_end < len(data):
        with open(path, "r+b") as handle:
            handle.truncate(good_end)
    return rows


def read_rows(work_dir: str | Path, output: str, repair: bool = False) -> list[dict[str, Any]]:
    """The rows of one output (``prompts``, ``responses``, ``translations``, ``rejects``).
    Safe while a run is writing: a line still being written is not returned."""
    name = OUTPUT_FILES.get(output, REJECTS_FILE if output == "rejects" else output)
    return _read_jsonl(Path(work_dir) / name, repair)


class RowWriter:
    """Appends rows to the output files, one JSON line each, flushed per row."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self._handles: dict[str, Any] = {}

    def write(self, file_name: str, row: Mapping[str, Any]) -> None:
        with writing(self.work_dir / file_name):  # a full disk names the file
            handle = self._handles.get(file_name)
            if handle is None:
                handle = open(self.work_dir / file_name, "a", encoding="utf-8")  # noqa: SIM115
                self._handles[file_name] = handle
            try:
                handle.write(redact(json.dumps(row, ensure_ascii=False)) + "\n")
                handle.flush()
            except OSError:  # drop the unwritten row: closing must not fail on it again
                self._handles.pop(file_name)
                with contextlib.suppress(OSError):
                    handle.close()
                raise

    def close(self) -> None:
        handles, self._handles = self._handles, {}
        for file_name, handle in handles.items():
            with writing(self.work_dir / file_name):
                handle.close()


# -- summary -----------------------------------------------------------------------------------
@dataclass
class GenerationSummary:
    """What a generation run produced (cumulative over resumes in the same work folder)."""

    language: str
    teacher: str
    teacher_model: str
    generators: list[str]
    rows: dict[str, int] = field(default_factory=dict)  # "prompts:topic" -> count
    rejects: dict[str, int] = field(default_factory=dict)  # "translate:turn_count" -> count
    usage: dict[str, Any] = field(default_factory=dict)  # every run in this folder
    this_run: dict[str, Any] = field(default_factory=dict)  # this process only
    stopped: str = ""  # "" when every generator finished, else why it stopped
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return not self.stopped

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def count_rows(work_dir: Path) -> tuple[dict[str, int], dict[str, int]]:
    """Rows per output and method, and rejects per stage and reason, from the files."""
    rows: Counter[str] = Counter()
    for output in OUTPUT_FILES:
        for row in read_rows(work_dir, output):
            if output == "prompts" and row.get("prompt_type") == "improved":
                rows["prompts:improved"] += 1  # rewrites of prompts counted under their method
            else:
                rows[f"{output}:{row.get('method', '?')}"] += 1
    rejects: Counter[str] = Counter(
        f"{row.get('stage', '?')}:{row.get('reject', '?')}"
        for row in read_rows(work_dir, "rejects")
    )
    return dict(sorted(rows.items())), dict(sorted(rejects.items()))


# -- the runner --------------------------------------------------------------------------------
def _resolve_generators(names: Iterable[str]) -> list[tuple[str, Generator]]:
    from kakugo_core.plugins import create

    return [(name, create("generators", name)) for name in names]


class _Progress:
    """Rich progress: one bar per stage. The bar counts the stage's teacher requests answered
    out of those asked so far (a stage asks in steps, so its total grows); the columns show rows
    written in the stage and calls, tokens and cost of the whole run."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.progress: Any = None
        self.task: Any = None
        self.rows = 0
        self.asked = 0
        self.answered = 0
        self.usage: Usage | None = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description:<10}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rows]} rows"),
                TextColumn("{task.fields[calls]} calls"),
                TextColumn("{task.fields[tokens]} tok"),
                TextColumn("${task.fields[cost]:.4f}"),
                TimeElapsedColumn(),
                transient=False,
            )
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def stage(self, name: str, usage: Usage) -> None:
        self.rows = self.asked = self.answered = 0
        self.usage = usage
        if self.progress is not None:
            self.task = self.progress.add_task(name, total=None, **self._fields())

    def asked_more(self, n: int) -> None:
        self.asked += n
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, total=self.asked)

    def answer(self) -> None:
        self.answered += 1
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=self.answered, **self._fields())

    def _fields(self) -> dict[str, Any]:
        u = self.usage or Usage()
        return {
            "rows": self.rows,
            "calls": u.calls + u.cached_calls,
            "tokens": u.prompt_tokens + u.completion_tokens,
            "cost": u.cost,
        }

    def refresh(self, rows: int = 0) -> None:
        self.rows += rows
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, **self._fields())

    def finish(self) -> None:
        if self.progress is not None and self.task is not None:
            total = max(self.asked, 1)
            self.progress.update(self.task, total=total, completed=total, **self._fields())


def run_generation(
    language: str | Language,
    config: Config,
    work_dir: str | Path,
    teacher: Teacher | None = None,
    generators: Sequence[str] | None = None,
    progress: bool = True,
) -> GenerationSummary:
    """Run the configured generators (``[generate].generators`` or ``generators``) in order in
    ``work_dir``; resume what an earlier run there left. The teacher is built with
    ``kakugo_core.teachers.make_teacher`` (cached in ``work_dir``) when not given."""
    from kakugo_core.languages import resolve

    lang = resolve(language)
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    gen_config = config["generate"]
    names = list(generators if generators is not None else gen_config["generators"])
    if not names:
        raise ConfigError("no generators selected; name at least one (e.g. --generators topic)")
    plugins = _resolve_generators(names)  # unknown names fail before any call is made
    for name, generator in plugins:
        output = getattr(generator, "output", "prompts")
        if output not in OUTPUT_FILES:
            raise KakugoError(
                f"generator {name!r} has output {output!r}; "
                f"use one of {', '.join(OUTPUT_FILES)}"
            )
    with _work_lock(work):
        return _run(lang, config, work, teacher, names, plugins, progress)


@contextmanager
def _work_lock(work: Path) -> Iterator[None]:
    """Hold an exclusive lock on the work folder: two runs appending to the same files would
    interleave rows and repeat each other's calls."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks, run one at a time
        yield
        return
    with open(work / LOCK_FILE, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise KakugoError(
                f"another `kakugo generate` is running in {work}; wait for it or stop it first"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(
    lang: Language,
    config: Config,
    work: Path,
    teacher: Teacher | None,
    names: list[str],
    plugins: list[tuple[str, Generator]],
    progress: bool,
) -> GenerationSummary:
    gen_config = config["generate"]
    own_teacher = teacher is None
    if teacher is None:
        from kakugo_core.teachers import cache_file_for, make_teacher

        teacher = make_teacher(config, cache_file_for(config, work))

    started = time.monotonic()
    writer = RowWriter(work)
    stopped = ""
    with _Progress(progress) as bar:
        metered = MeteredTeacher(
            teacher,
            work / USAGE_FILE,
            max_cost=float(gen_config["max_cost"]),
            batch_size=int(gen_config["batch_size"]),
            on_reply=lambda _reply: bar.answer(),
            on_submit=bar.asked_more,
            plugin=str((config.get("teacher") or {}).get("plugin") or ""),
        )
        try:
            for name, generator in plugins:
                done_ids = _done_ids(work)
                context = GenerationContext(
                    language=lang,
                    teacher=metered,
                    options=_generator_options(config, name),
                    work_dir=work,
                    seed=int(config["run"]["seed"]),
                    rows=read_rows(work, "prompts"),
                    done_ids=done_ids,
                )
                output = OUTPUT_FILES[getattr(generator, "output", "prompts")]
                bar.stage(name, metered.usage)
                for row in plugin_iter("generators", name, "generate",
                                       generator.generate(context)):
                    row_id = row.get("id")
                    if not row_id:
                        raise KakugoError(f"generator {name!r} yielded a row without an 'id'")
                    if row_id in done_ids:
                        continue
                    done_ids.add(row_id)
                    if "reject" in row:
                        writer.write(REJECTS_FILE, {"stage": name, **row})
                    else:
                        writer.write(output, row)
                        bar.refresh(rows=1)
                bar.finish()
        except BudgetExhausted as exc:
            stopped = str(exc)
        except BaseException as exc:  # the teacher gave up, Ctrl-C, ...: keep the tally, re-raise
            writer.close()
            _write_summary(work, lang, teacher, names, metered, f"error: {exc}", started)
            raise
        finally:
            writer.close()
            if own_teacher:
                teacher.close()
    return _write_summary(work, lang, teacher, names, metered, stopped, started)


def _write_summary(
    work: Path,
    lang: Language,
    teacher: Teacher,
    names: list[str],
    metered: MeteredTeacher,
    stopped: str,
    started: float,
) -> GenerationSummary:
    metered.record_trouble(teacher)
    rows, rejects = count_rows(work)
    summary = GenerationSummary(
        language=lang.id,
        teacher=getattr(teacher, "name", "teacher"),
        teacher_model=getattr(teacher, "model", ""),
        generators=names,
        rows=rows,
        rejects=rejects,
        usage=asdict(metered.total),
        this_run=asdict(metered.usage),
        stopped=stopped,
        seconds=round(time.monotonic() - started, 3),
    )
    write_json_atomic(work / SUMMARY_FILE, summary.as_dict())
    return summary


def _generator_options(config: Config, name: str) -> dict[str, Any]:
    """A generator's ``[generate.<name>]`` section, plus the shared prompt-file and sampling
    settings (``prompts_file``; ``temperature`` and ``top_p`` from ``[teacher]``)."""
    options = dict(config["generate"].get(name, {}))
    options.setdefault("prompts_file", config["generate"].get("prompts_file", ""))
    for key in ("temperature", "top_p"):
        if key in config.get("teacher", {}):
            options.setdefault(key, config["teacher"][key])
    return options


def _done_ids(work: Path) -> set[str]:
    done: set[str] = set()
    for output in (*OUTPUT_FILES, "rejects"):
        rows = read_rows(work, output, repair=True)  # under the lock, before appending
        done.update(str(row["id"]) for row in rows if "id" in row)
    return done
