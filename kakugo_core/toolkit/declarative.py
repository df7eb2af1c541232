"""Declarative benchmarks: a multiple-choice or generation benchmark described by one TOML file.

:func:`load_spec` validates a file (one-line errors naming the file and the key) into a
:class:`TaskSpec`; :func:`benchmark_class` turns a spec into a
:class:`~kakugo_core.toolkit.benchmarks.MultipleChoiceBenchmark` subclass whose items, few-shot
examples, data sources and metrics come from the rest of the toolkit; :func:`register_declarative`
registers every spec of a file or folder from a plugin's ``register_benchmarks`` hook (ship the
TOML as package data). The keys are documented in docs/declarative.md.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from kakugo_core.errors import KakugoError
from kakugo_core.interfaces import Backend, BenchmarkResult, GenerationRequest, Score
from kakugo_core.languages import Language
from kakugo_core.toolkit.benchmarks import (
    MCItem,
    MultipleChoiceBenchmark,
    PreparedTask,
    apply_limit,
    card_metadata,
    common_options,
    limit_seed,
    prompt_hash,
)
from kakugo_core.toolkit.data import (
    Row,
    Split,
    find_local_file,
    hub_revision,
    load_split,
    read_rows,
    rows_digest,
)
from kakugo_core.toolkit.fewshot import fewshot_for
from kakugo_core.toolkit.metrics import accuracy_scores, bootstrap_stderr, macro_f1, mean_stderr
from kakugo_core.toolkit.sampling import sample_key

TYPES = ("multiple_choice", "generation")
METRICS = {"multiple_choice": ("acc", "macro_f1"), "generation": ("chrf", "bleu", "exact_match")}
#: key -> (accepted types, description for errors)
KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "name": ((str,), "a string"),
    "type": ((str,), "a string"),
    "languages": ((list, dict), "a list of FLORES ids or a table FLORES id -> code"),
    "files": ((str, dict), "a path pattern or a table FLORES id -> pattern"),
    "hub": ((str,), "a Hub dataset id"),
    "config": ((str,), "a pattern such as \"{code}\""),
    "revision": ((str,), "a branch, tag or commit"),
    "split": ((str,), "a split name"),
    "fewshot_split": ((str,), "a split name"),
    "n_shot": ((int,), "an integer >= 0"),
    "seed": ((str,), "a string"),
    "id": ((str,), "a field name"),
    "header": ((str,), "a string"),
    "template": ((str,), "a prompt template"),
    "choices": ((list, str), "a list of labels (or templates) or a field name"),
    "gold": ((str,), "a field name"),
    "gold_base": ((int,), "0 or 1"),
    "target_delimiter": ((str,), "a string"),
    "fewshot_delimiter": ((str,), "a string"),
    "strip": ((bool,), "true or false"),
    "metrics": ((list,), "a list of metric names"),
    "stop": ((list,), "a list of strings"),
    "max_new_tokens": ((int,), "an integer >= 1"),
    "card": ((dict,), "a table"),
}
CARD_KEYS = ("task_type", "task_name", "dataset", "split")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_MUSTACHE = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}")


def check_name(name: str, where: str) -> str:
    """``name`` when it may name a benchmark from a task file (TOML ``name``, lm-eval
    ``task``): results are stored under it and paths are built from it; else a one-line
    error starting with ``where``."""
    if not _NAME.fullmatch(name):
        raise KakugoError(f"{where}: {name!r} must be letters, digits, '_', '.' or '-'")
    return name


@dataclass(frozen=True)
class TaskSpec:
    """A validated declarative benchmark (see docs/declarative.md for every key)."""

    path: Path
    digest: str  # sha256 of the file's bytes: part of every prompt hash
    name: str
    type: str
    codes: dict[str, str]  # FLORES id -> the task's code for it
    template: str
    gold: str
    files: str | dict[str, str] = ""
    hub: str = ""
    config: str = "{code}"
    revision: str = "main"
    split: str = "test"
    fewshot_split: str = ""
    n_shot: int | None = None
    seed: str = ""
    id: str = ""
    header: str = ""
    choices: list[str] | str = field(default_factory=list)
    gold_base: int = 0
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"
    strip: bool = True
    metrics: tuple[str, ...] = ()
    stop: tuple[str, ...] = ("\n",)
    max_new_tokens: int | None = None
    card: dict[str, str] = field(default_factory=dict)


def _fields(template: str) -> list[str]:
    """The row fields a template names (``{field}`` or ``{{field}}``)."""
    if _MUSTACHE.search(template):
        return [m.group(1) for m in _MUSTACHE.finditer(template)]
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    except ValueError as exc:
        raise ValueError(f"not a valid template ({exc})") from None
    return [re.split(r"[.\[]", f)[0] for f in names]


def render(template: str, values: Mapping[str, Any]) -> str:
    """Fill a template: ``{{field}}`` when it uses that syntax, else Python ``str.format``."""
    if _MUSTACHE.search(template):
        return _MUSTACHE.sub(lambda m: str(values[m.group(1)]), template)
    return template.format_map(values)


def load_spec(path: str | Path) -> TaskSpec:
    """Read and validate one declarative benchmark file; a bad one is a one-line KakugoError
    naming the file and the key."""
    path = Path(path).expanduser().resolve()
    try:
        raw = path.read_bytes()
        data = tomllib.loads(raw.decode("utf-8"))
    except OSError as exc:
        raise KakugoError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise KakugoError(f"{path}: not valid TOML: {exc}".splitlines()[0]) from None

    def bad(key: str, message: str) -> KakugoError:
        return KakugoError(f"{path}: {key}: {message}")

    for key, value in data.items():
        if key not in KEYS:
            raise bad(key, f"unknown key (known: {', '.join(KEYS)})")
        types, what = KEYS[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise bad(key, f"must be {what}")
    for key in ("name", "languages", "template", "gold"):
        if key not in data:
            raise bad(key, "missing (required keys: name, languages, template, gold)")
    name = check_name(data["name"], f"{path}: name")
    kind = data.get("type", "multiple_choice")
    if kind not in TYPES:
        raise bad("type", f"{kind!r} is not one of {', '.join(TYPES)}")
    if "files" not in data and "hub" not in data:
        raise bad("files", "give files (a path pattern) or hub (a dataset id), or both")
    codes = _codes(data["languages"], bad)
    if isinstance(data.get("files"), dict):
        for key, value in data["files"].items():
            if not isinstance(value, str):
                raise bad(f"files.{key}", "must be a path pattern")
    if kind == "multiple_choice" and not data.get("choices"):
        raise bad("choices", "missing: multiple-choice benchmarks need choices")
    if isinstance(data.get("choices"), list) and not all(
            isinstance(c, str) for c in data["choices"]):
        raise bad("choices", "every choice must be a string")
    metrics = tuple(data.get("metrics") or METRICS[kind][:1])
    for metric in metrics:
        if metric not in METRICS[kind]:
            raise bad("metrics", f"{metric!r} is not a {kind} metric "
                                 f"({', '.join(METRICS[kind])})")
    templates = [("template", data["template"]), ("header", data.get("header", ""))]
    if isinstance(data.get("choices"), list):
        templates += [("choices", c) for c in data["choices"]]
    for key, text in templates:
        try:
            _fields(text)
        except ValueError as exc:
            raise bad(key, str(exc)) from None
    for key, low in (("n_shot", 0), ("max_new_tokens", 1), ("gold_base", 0)):
        if key in data and data[key] < low:
            raise bad(key, f"must be >= {low}")
    if not all(isinstance(s, str) for s in data.get("stop", [])):
        raise bad("stop", "every stop must be a string")
    card = data.get("card", {})
    for key, value in card.items():
        if key not in CARD_KEYS or not isinstance(value, str):
            raise bad(f"card.{key}", f"unknown or not a string (known: {', '.join(CARD_KEYS)})")
    simple = {k: data[k] for k in ("files", "hub", "config", "revision", "split",
                                   "fewshot_split", "n_shot", "seed", "id", "header",
                                   "choices", "gold_base", "target_delimiter",
                                   "fewshot_delimiter", "strip", "max_new_tokens") if k in data}
    return TaskSpec(
        path=path, digest=hashlib.sha256(raw).hexdigest()[:16], name=name, type=kind,
        codes=codes, template=data["template"], gold=data["gold"], metrics=metrics,
        stop=tuple(data.get("stop", ["\n"])), card=dict(card), **simple,
    )


def _codes(value: list[Any] | dict[str, Any], bad: Callable[[str, str], KakugoError]
           ) -> dict[str, str]:
    from kakugo_core.languages import resolve

    pairs = value.items() if isinstance(value, dict) else ((v, v) for v in value)
    codes: dict[str, str] = {}
    for key, code in pairs:
        if not isinstance(key, str) or not isinstance(code, str) or not code:
            raise bad("languages", "every language and code must be a non-empty string")
        try:
            codes[resolve(key).id] = code
        except KakugoError:
            raise bad(f"languages.{key}", "unknown language (`kakugo languages` lists them)"
                      ) from None
    if not codes:
        raise bad("languages", "empty: list at least one FLORES id")
    return codes


def spec_files(path: str | Path) -> list[Path]:
    """A ``.toml`` file itself, or the ``*.toml`` files of a folder (sorted)."""
    path = Path(path).expanduser()
    if path.is_dir():
        found = sorted(path.glob("*.toml"))
        if not found:
            raise KakugoError(f"{path}: no *.toml benchmark files in this folder (lm-eval YAML "
                              "tasks: --include-path DIR -b TASK)")
        return found
    if not path.is_file():
        raise KakugoError(f"{path}: no such benchmark file or folder")
    return [path]


class DeclarativeBenchmark(MultipleChoiceBenchmark):
    """A benchmark built from a :class:`TaskSpec` (one subclass per spec: :func:`benchmark_class`).
    """

    spec: TaskSpec

    @property
    def identity(self) -> dict[str, str]:
        """Where results come from when loaded by path (stored with each result): the file's
        name and the digest of its bytes (a registered one is named by its distribution)."""
        return {"benchmark_plugin": f"file:{self.spec.path.name}",
                "benchmark_plugin_version": self.spec.digest, **card_metadata(self)}

    # -- coverage and data -------------------------------------------------------------------
    def language_code(self, language: Language) -> str | None:
        return self.spec.codes.get(language.id)

    def _required(self) -> list[str]:
        spec = self.spec
        names = _fields(spec.template) + [spec.gold] + ([spec.id] if spec.id else [])
        if isinstance(spec.choices, str):
            names.append(spec.choices)
        else:
            names += [f for c in spec.choices for f in _fields(c)]
        return [n for n in dict.fromkeys(names) if n not in ("code", "language")]

    def _split(self, code: str, language: Language, split: str, options: Mapping[str, Any]
               ) -> Split:
        """One split from ``--data-dir``, else ``files``, else ``hub``; errors name the TOML."""
        try:
            return self._load(code, language, split, options)
        except KakugoError as exc:
            if str(exc).startswith(str(self.spec.path)):
                raise
            key = "files" if self.spec.files else "hub"
            raise KakugoError(f"{self.spec.path}: {key}: {exc}") from None

    def _load(self, code: str, language: Language, split: str, options: Mapping[str, Any]
              ) -> Split:
        spec, required = self.spec, self._required()
        data_dir = options.get("data_dir")
        if data_dir and find_local_file(Path(data_dir).expanduser(), spec.name, code, split):
            return load_split(spec.name, code, split, required, data_dir=data_dir, hub_id="",
                              hub_config="", hub_split="", revision="")
        pattern = spec.files.get(language.id, "") if isinstance(spec.files, dict) else spec.files
        if pattern:
            local = spec.path.parent / pattern.format(code=code, split=split,
                                                      language=language.id)
            if local.is_file():
                rows = read_rows(local, required)
                return Split(rows, f"file:{rows_digest(rows)}")
            if not spec.hub:
                raise KakugoError(f"{spec.path}: files: no {local} for {language.id}")
        revision = hub_revision(spec.name, {"revision": options.get("revision"),
                                            "revisions": {spec.name: spec.revision,
                                                          **(options.get("revisions") or {})}})
        return load_split(spec.name, code, split, required, data_dir=None, hub_id=spec.hub,
                          hub_config=spec.config.format(code=code, language=language.id),
                          hub_split=split, revision=revision)

    # -- items -----------------------------------------------------------------------------
    def _values(self, row: Row, code: str, language: Language) -> dict[str, Any]:
        values: dict[str, Any] = {"code": code, "language": language.name}
        for key, value in row.items():
            values[key] = value.strip() if self.spec.strip and isinstance(value, str) else value
        return values

    def _choices(self, values: Mapping[str, Any]) -> list[str]:
        spec = self.spec
        if isinstance(spec.choices, str):
            found = values[spec.choices]
            if not isinstance(found, list) or not found:
                raise KakugoError(f"{spec.path}: choices: field {spec.choices!r} is not a list")
            return [str(c) for c in found]
        return [render(c, values) for c in spec.choices]

    def _gold(self, values: Mapping[str, Any], choices: Sequence[str]) -> int:
        spec, value = self.spec, values[self.spec.gold]
        if str(value) in choices:
            return list(choices).index(str(value))
        if isinstance(value, int) or str(value).strip().isdigit():
            index = int(value) - spec.gold_base
            if 0 <= index < len(choices):
                return index
        raise KakugoError(f"{spec.path}: gold: {value!r} is neither a choice nor a choice "
                          f"index (gold_base {spec.gold_base}) of {list(choices)}")

    def _answer(self, values: Mapping[str, Any]) -> str:
        if self.spec.type == "generation":
            return str(values[self.spec.gold])
        choices = self._choices(values)
        return choices[self._gold(values, choices)]

    def prepare(self, language: Language, options: Mapping[str, Any]) -> PreparedTask:
        spec = self.spec
        code = self.code_for(language)
        n_shot, limit, _data_dir, chat = common_options(options)
        test = self._split(code, language, spec.split, options)
        fewshot_name = spec.fewshot_split or spec.split
        pool = test if fewshot_name == spec.split else self._split(code, language,
                                                                    fewshot_name, options)
        pool_values = [self._values(r, code, language) for r in pool.rows] if n_shot else []
        key = (lambda v: str(v[spec.id])) if spec.id else (lambda v: repr(sorted(v.items())))
        seed, stratified = limit_seed(options), spec.type != "generation"
        label = (lambda r: str(r.get(spec.gold))) if stratified else None
        items: list[Any] = []
        try:
            for number, row in enumerate(apply_limit(test.rows, limit, seed, label=label)):
                values = self._values(row, code, language)
                item_id = str(values[spec.id]) if spec.id else str(number)
                shots = fewshot_for(pool_values, n_shot, {key(values)}, key=key,
                                    seed=f"{spec.seed or spec.name}:{code}")
                prompt = render(spec.header, values) + "".join(
                    render(spec.template, s) + spec.target_delimiter + self._answer(s)
                    + spec.fewshot_delimiter for s in shots
                ) + render(spec.template, values)
                if spec.type == "generation":
                    items.append({"id": item_id, "prompt": prompt,
                                  "reference": str(values[spec.gold])})
                    continue
                choices = self._choices(values)
                items.append(MCItem(item_id, prompt,
                                    [spec.target_delimiter + c for c in choices],
                                    self._gold(values, choices)))
        except KeyError as exc:
            raise KakugoError(f"{spec.path}: template: field {exc} is not in the "
                              f"{spec.name} rows for {code}") from None
        sources = [test.source] + ([pool.source] if pool is not test else [])
        digest = prompt_hash(benchmark=spec.name, spec=spec.digest, code=code, n_shot=n_shot,
                             chat=chat, source=sources, n=len(items),
                             max_new_tokens=self._max_new(options),
                             **sample_key(limit, seed, stratified, len(test.rows)))
        labels = list(spec.choices) if isinstance(spec.choices, list) else []
        return PreparedTask(spec.name, language.id, n_shot, digest, "|".join(sources), items,
                            labels)

    def _max_new(self, options: Mapping[str, Any]) -> int | None:
        if self.spec.type != "generation":
            return None
        return self.spec.max_new_tokens or int(options.get("max_new_tokens", 256))

    # -- scoring ---------------------------------------------------------------------------
    def metrics(self, task: PreparedTask, predictions: list[dict[str, Any]]) -> list[Score]:
        fixed = isinstance(self.spec.choices, list) and not any(
            _fields(c) for c in self.spec.choices)
        labels = list(self.spec.choices) if fixed else []
        if labels:
            for p in predictions:
                p["gold_label"], p["pred_label"] = labels[p["gold"]], labels[p["pred"]]
        golds = [p["gold_label"] if labels else str(p["gold"]) for p in predictions]
        preds = [p["pred_label"] if labels else str(p["pred"]) for p in predictions]
        seen = labels or sorted(set(golds) | set(preds))
        scores = []
        for metric in self.spec.metrics:
            if metric == "acc":
                scores.append(accuracy_scores(predictions))
            else:
                def f1_of(idx: list[int]) -> float:
                    return macro_f1([golds[i] for i in idx], [preds[i] for i in idx], seen)

                scores.append(Score("macro_f1", macro_f1(golds, preds, seen),
                                    bootstrap_stderr(len(golds), f1_of), len(golds)))
        return scores

    def evaluate(
        self, backend: Backend, language: Language, options: Mapping[str, Any]
    ) -> BenchmarkResult:
        if self.spec.type == "multiple_choice":
            return super().evaluate(backend, language, options)
        task = self.prepare(language, options)
        chat, progress = bool(options.get("chat_template")), options.get("progress")
        hyps: list[str] = []
        for start in range(0, len(task.items), 128):
            part = task.items[start:start + 128]
            hyps.extend(h.strip() for h in backend.generate([GenerationRequest(
                backend.apply_chat_template(it["prompt"]) if chat else it["prompt"],
                stop=self.spec.stop, max_new_tokens=self._max_new(options) or 256)
                for it in part]))
            if progress is not None:
                progress(len(part))
        predictions = [{"id": it["id"], "reference": it["reference"], "hypothesis": h}
                       for it, h in zip(task.items, hyps, strict=True)]
        scores = [generation_score(m, hyps, [p["reference"] for p in predictions])
                  for m in self.spec.metrics]
        return BenchmarkResult(self.name, language.id, task.n_shot, task.prompt_hash, scores,
                               predictions, data_source=task.source)


def generation_score(metric: str, hyps: Sequence[str], refs: Sequence[str]) -> Score:
    """Corpus chrF++ or BLEU (sacrebleu, bootstrap standard error), or exact match."""
    if metric == "exact_match":
        hits = [1.0 if h == r else 0.0 for h, r in zip(hyps, refs, strict=True)]
        return Score(metric, sum(hits) / len(hits) if hits else 0.0, mean_stderr(hits),
                     len(hits))
    from sacrebleu.metrics import BLEU, CHRF

    scorer = CHRF(word_order=2) if metric == "chrf" else BLEU()
    stats = scorer._extract_corpus_statistics(list(hyps), [list(refs)])

    def corpus(indices: Sequence[int]) -> float:
        summed = [sum(col) for col in zip(*(stats[i] for i in indices), strict=True)]
        return float(scorer._compute_score_from_stats(summed).score)

    return Score(metric, corpus(range(len(hyps))), bootstrap_stderr(len(hyps), corpus, 300),
                 len(hyps))


def benchmark_class(spec: TaskSpec) -> type[DeclarativeBenchmark]:
    """A :class:`DeclarativeBenchmark` subclass for one spec; its class attributes carry the
    card metadata (``hub_dataset``, ``task_type``, ``task_name``, ``split``)."""
    card = spec.card
    generation = spec.type == "generation"
    attrs = {
        "spec": spec, "name": spec.name, "coverage_key": spec.name,
        "primary_metrics": spec.metrics[:1], "default_n_shot": spec.n_shot,
        "hub_dataset": card.get("dataset") or spec.hub or spec.name,
        "task_type": card.get("task_type") or ("text-generation" if generation
                                               else "multiple-choice"),
        "task_name": card.get("task_name") or spec.name,
        "split": card.get("split") or spec.split,
        "__doc__": f"Declarative benchmark {spec.name} ({spec.path.name}).", "__module__": __name__,
    }
    class_name = "Declarative_" + re.sub(r"\W", "_", spec.name)
    return type(class_name, (DeclarativeBenchmark,), attrs)


def load_benchmarks(path: str | Path) -> list[DeclarativeBenchmark]:
    """Instances of every declarative benchmark in a ``.toml`` file or a folder of them."""
    return [benchmark_class(load_spec(p))() for p in spec_files(path)]


def register_declarative(register: Callable[..., Any], path: str | Path) -> list[str]:
    """Register every declarative benchmark of a ``.toml`` file or folder; call it from a
    plugin's ``register_benchmarks(register)`` hook with a path inside the package (for example
    ``Path(__file__).parent / "tasks"``). Returns the names registered."""
    names = []
    for file in spec_files(path):
        spec = load_spec(file)
        register(spec.name, benchmark_class(spec))
        names.append(spec.name)
    return names


__all__ = [
    "DeclarativeBenchmark", "TaskSpec", "benchmark_class", "generation_score", "load_benchmarks",
    "load_spec", "register_declarative", "render", "spec_files",
]
