"""lm-evaluation-harness task YAML as Kakugo benchmarks, scored by Kakugo's engine.

lm-eval's own task loading builds the requests (``TaskManager(include_path=...)``, the
``ConfigurableTask``'s documents, ``doc_to_text``/``doc_to_choice``/``doc_to_target``, few-shot
sampling with lm-eval's default seed, ``target_delimiter``, ``fewshot_delimiter``:
``build_all_requests``), and lm-eval's ``process_results`` and aggregations turn the
log-likelihoods into metrics, so per-item predictions are the ones ``lm_eval`` gives; only the
log-likelihoods come from the chosen Kakugo backend. Output types: ``multiple_choice`` and
``loglikelihood``. lm_eval is imported only when a task is loaded.

Languages: a task is stored under the ``-l`` language it is scored for. ``metadata:
{kakugo_language: jav_Latn}`` (or a list) in the YAML restricts it to those languages; without it
any language is accepted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kakugo_core.errors import KakugoError
from kakugo_core.interfaces import (
    Backend,
    BenchmarkResult,
    LoglikelihoodRequest,
    Score,
)
from kakugo_core.languages import Language
from kakugo_core.toolkit.benchmarks import (
    MCItem,
    MultipleChoiceBenchmark,
    PreparedTask,
    card_metadata,
    common_options,
    limit_seed,
    prompt_hash,
)
from kakugo_core.toolkit.declarative import check_name
from kakugo_core.toolkit.metrics import bootstrap_stderr, mean_stderr
from kakugo_core.toolkit.sampling import sample_items, sample_key

#: ``-b lm-eval:NAME`` names a task of lm-eval's own catalogue (slow: indexes all of it)
PREFIX = "lm-eval:"
#: lm-eval's default ``fewshot_random_seed``
FEWSHOT_SEED = 1234
OUTPUT_TYPES = ("multiple_choice", "loglikelihood")
_managers: dict[tuple[tuple[str, ...], bool], Any] = {}


def _quiet() -> None:
    for name in ("lm-eval", "lm_eval"):
        logging.getLogger(name).setLevel(logging.ERROR)


#: the YAML tags a task file may use without running code (anything else, lm-eval's
#: ``!function`` above all, imports or calls Python)
_DATA_TAGS = {f"tag:yaml.org,2002:{t}" for t in (
    "str", "int", "float", "bool", "null", "map", "seq", "timestamp", "binary", "merge",
    "set", "omap", "pairs", "value")}
TRUST_HINT = "pass --trust-task-code (or set bench.trust_task_code = true) to run it"


def _code_tag(node: Any) -> str | None:
    """The first tag in a YAML node tree that is not plain data."""
    import yaml

    stack, seen = [node], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:  # an alias: its node is checked once
            continue
        seen.add(id(node))
        if node.tag not in _DATA_TAGS:
            return f"{node.tag} {node.value}" if isinstance(node, yaml.ScalarNode) else node.tag
        if isinstance(node, yaml.MappingNode):
            stack += [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            stack += node.value
    return None


def _includes(node: Any) -> list[str]:
    import yaml

    for key, value in node.value if isinstance(node, yaml.MappingNode) else ():
        if key.value == "include":
            values = value.value if isinstance(value, yaml.SequenceNode) else [value]
            return [str(v.value) for v in values if isinstance(v, yaml.ScalarNode)]
    return []


def _evaluate_metrics(node: Any) -> list[str]:
    """Metrics of every ``metric_list`` in a YAML node tree that lm-eval would hand to Hugging
    Face ``evaluate.load`` (which runs a metric script): ``hf_evaluate: true``, or a name not
    in lm-eval's own registry."""
    import yaml

    found: list[tuple[str, bool]] = []
    stack, seen = [node], set()
    while stack:
        node = stack.pop()
        if id(node) in seen or isinstance(node, yaml.ScalarNode):
            continue
        seen.add(id(node))
        pairs = node.value if isinstance(node, yaml.MappingNode) else []
        stack += [n for pair in pairs for n in pair] if pairs else node.value
        for key, value in pairs:
            if key.value == "metric_list" and isinstance(value, yaml.SequenceNode):
                for entry in value.value:
                    keys = {k.value: v.value for k, v in getattr(entry, "value", [])
                            if isinstance(k, yaml.ScalarNode) and isinstance(v, yaml.ScalarNode)}
                    if "metric" in keys:
                        found.append((str(keys["metric"]),
                                      str(keys.get("hf_evaluate", "")).lower() == "true"))
    if not found:
        return []
    import lm_eval.api.metrics  # noqa: F401  (fills the registry)
    from lm_eval.api.registry import metric_registry

    return [m for m, hf in found if hf or m not in metric_registry]


def check_no_code(files: Sequence[str | Path]) -> None:
    """Refuse, before lm-eval reads them, task YAML files (and the files they ``include``)
    that would run Python code: ``!function`` (which also makes ``class:`` tasks and
    ``custom_dataset`` loaders) or any other non-data tag. Read without constructing, so
    nothing is imported here."""
    import yaml

    todo = [Path(f).expanduser().resolve() for f in files]
    seen: set[Path] = set()
    while todo:
        file = todo.pop()
        if file in seen or not file.is_file():
            continue
        seen.add(file)
        try:  # the bytes and parser lm-eval reads them with (any encoding YAML allows)
            node = yaml.compose(file.read_bytes(), Loader=getattr(yaml, "CSafeLoader",
                                                                  yaml.SafeLoader))
        except (OSError, yaml.YAMLError):
            continue  # lm-eval cannot read it either; this only looks for code
        tag = _code_tag(node) if node is not None else None
        if tag:
            raise KakugoError(f"{file}: runs Python code ({tag[:80]}); {TRUST_HINT}")
        loaded = _evaluate_metrics(node) if node is not None else []
        if loaded:
            raise KakugoError(f"{file}: metric_list: {loaded[0][:80]!r} would be loaded as code "
                              f"by Hugging Face evaluate (not an lm-eval metric); {TRUST_HINT}")
        todo += [file.parent / inc for inc in _includes(node)]


def task_files(folders: Sequence[str | Path]) -> list[Path]:
    """The task YAML files lm-eval indexes in ``folders``."""
    return sorted(f for folder in folders for pattern in ("*.yaml", "*.yml")
                  for f in Path(folder).expanduser().rglob(pattern) if f.is_file())


@contextmanager
def templates(trust_code: bool, where: str) -> Iterator[None]:
    """lm-eval's Jinja templates (``doc_to_text``, ...) rendered in Jinja's sandbox unless
    ``trust_code``: lm-eval's own environment lets a template reach Python
    (``{{ lipsum.__globals__ ... }}``)."""
    from jinja2.sandbox import SandboxedEnvironment, SecurityError
    from lm_eval import utils

    before = utils.env
    if not trust_code and not isinstance(before, SandboxedEnvironment):
        sandbox = SandboxedEnvironment(loader=before.loader, undefined=before.undefined,
                                       keep_trailing_newline=before.keep_trailing_newline)
        sandbox.filters.update(before.filters)
        utils.env = sandbox
    try:
        yield
    except SecurityError as exc:
        raise KakugoError(f"{where}: a template reaches into Python ({str(exc)[:120]}); "
                          f"{TRUST_HINT}") from None
    finally:
        utils.env = before


def _reraise_sandbox(exc: Exception) -> None:
    from jinja2.sandbox import SecurityError

    if isinstance(exc, SecurityError):
        raise exc


def task_manager(include_paths: Sequence[str | Path], defaults: bool = False,
                 trust_code: bool = False) -> Any:
    """One lm-eval ``TaskManager`` per set of include paths (indexing is slow), without
    lm-eval's own catalogue unless ``defaults``; unless ``trust_code``, include paths whose
    YAML would run code are refused before lm-eval reads them."""
    key = (tuple(str(Path(p).expanduser().resolve()) for p in include_paths), defaults)
    for path in key[0]:
        if not Path(path).is_dir():
            raise KakugoError(f"--include-path {path}: no such folder")
    if not trust_code:
        check_no_code(task_files(key[0]))
    if key not in _managers:
        _quiet()
        from lm_eval.tasks import TaskManager

        _managers[key] = TaskManager(include_path=list(key[0]) or None,
                                     include_defaults=defaults)
    return _managers[key]


def knows(name: str, include_paths: Sequence[str | Path], trust_code: bool = False) -> bool:
    """Whether ``name`` is a task (or group) in the include paths."""
    return bool(include_paths) and name in task_manager(
        include_paths, trust_code=trust_code).all_tasks


def load_tasks(spec: str, include_paths: Sequence[str | Path] = (),
               trust_code: bool = False) -> list[LMEvalTask]:
    """Benchmarks for a task name or group in ``include_paths``, an lm-eval YAML file, or
    ``lm-eval:NAME`` (lm-eval's catalogue, installed code like any package's). Task files
    that would run Python code are refused unless ``trust_code``."""
    defaults = spec.startswith(PREFIX)
    name = spec.removeprefix(PREFIX)
    paths, target = list(include_paths), name
    if name.endswith((".yaml", ".yml")):
        file = Path(name).expanduser().resolve()
        if not file.is_file():
            raise KakugoError(f"{name}: no such lm-eval task file")
        paths.append(file.parent)
        target = str(file)
    manager = task_manager(paths, defaults, trust_code)
    from datasets.utils import logging as datasets_logging

    bars = datasets_logging.is_progress_bar_enabled()
    datasets_logging.disable_progress_bar()  # lm-eval loads the data: no bars on stderr
    try:
        with templates(trust_code, name):
            loaded = manager.load([target])
    except KakugoError:
        raise
    except KeyError:
        where = ", ".join(str(p) for p in paths) or "lm-eval's catalogue"
        raise KakugoError(f"unknown lm-eval task {name!r} (looked in {where}; "
                          "pass --include-path DIR)") from None
    except Exception as exc:
        _reraise_sandbox(exc)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise KakugoError(f"lm-eval cannot load task {name!r}: {first}") from None
    finally:
        if bars:
            datasets_logging.enable_progress_bar()
    out = []
    for task_name, task in sorted(loaded["tasks"].items()):
        entry = manager.task_index.get(task_name)
        yaml_path = getattr(entry, "yaml_path", None)
        out.append(LMEvalTask(task, Path(yaml_path) if yaml_path else None, trust_code))
    return out


def _languages(meta: Mapping[str, Any], where: str) -> list[str] | None:
    from kakugo_core.languages import resolve

    value = meta.get("kakugo_language", meta.get("kakugo_languages"))
    if value is None:
        return None
    values = [value] if isinstance(value, str) else value
    try:
        return [resolve(str(v)).id for v in values]
    except KakugoError:
        raise KakugoError(f"{where}: metadata.kakugo_language: unknown language in {value!r}"
                          ) from None


class LMEvalTask(MultipleChoiceBenchmark):
    """One lm-eval ``ConfigurableTask`` (``multiple_choice`` or ``loglikelihood``)."""

    def __init__(self, task: Any, yaml_path: Path | None = None,
                 trust_code: bool = False) -> None:
        config = task.config
        self.trust_code = trust_code
        self.task = task
        where = str(yaml_path or config.task)
        self.name = check_name(str(config.task), f"{where}: task")
        self.yaml_path = yaml_path
        self.output_type = str(config.output_type)
        if self.output_type not in OUTPUT_TYPES:
            raise KakugoError(f"{where}: output_type: {self.output_type} is not supported "
                              f"(Kakugo scores {', '.join(OUTPUT_TYPES)}); run it with lm_eval")
        if getattr(task, "multiple_input", False) or getattr(task, "multiple_target", False):
            raise KakugoError(f"{where}: multiple inputs or targets are not supported")
        if "acc_mutual_info" in getattr(task, "_metric_fn_list", {}):
            raise KakugoError(f"{where}: metric_list: acc_mutual_info is not supported")
        self.languages = _languages(config.metadata or {}, where)
        self.default_n_shot = config.num_fewshot
        metrics = [m["metric"] for m in (config.metric_list or []) if isinstance(m, dict)]
        self.primary_metrics = tuple(str(m) for m in metrics[:1]) or ("acc",)
        self.hub_dataset = str(config.dataset_path or self.name)
        self.task_type = "multiple-choice" if self.output_type == "multiple_choice" else \
            "text-generation"
        self.task_name = self.name
        self.split = str(config.test_split or config.validation_split or "test")
        self._yaml = yaml_path.read_bytes() if yaml_path and yaml_path.is_file() else b""

    @property
    def identity(self) -> dict[str, str]:
        """Stored with each result: the task file's name and lm-eval's version."""
        from importlib import metadata

        where = self.yaml_path.name if self.yaml_path else self.name
        return {"benchmark_plugin": f"lm-eval-task:{where}",
                "benchmark_plugin_version": f"lm_eval {metadata.version('lm_eval')}",
                **card_metadata(self)}

    def language_code(self, language: Language) -> str | None:
        if self.languages is None or language.id in self.languages:
            return language.id
        return None

    def _shots(self, n_shot: int) -> int:
        # as lm_eval.simple_evaluate: a task whose YAML sets num_fewshot: 0 stays 0-shot
        return 0 if self.default_n_shot == 0 else n_shot

    def prepare(self, language: Language, options: Mapping[str, Any]) -> PreparedTask:
        with templates(self.trust_code, str(self.yaml_path or self.name)):
            return self._prepare(language, options)

    def _prepare(self, language: Language, options: Mapping[str, Any]) -> PreparedTask:
        self.code_for(language)
        n_shot, limit, _data_dir, chat = common_options(options)
        n_shot = self._shots(n_shot)
        task = self.task
        _quiet()
        task.set_config(key="num_fewshot", value=n_shot)
        task.set_fewshot_seed(seed=FEWSHOT_SEED)
        try:  # every document, then Kakugo's seeded sample: --limit means one thing everywhere
            task.build_all_requests(limit=None, rank=0, world_size=1)
        except Exception as exc:
            _reraise_sandbox(exc)
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise KakugoError(f"lm-eval task {self.name}: cannot build requests: {first}"
                              ) from None
        by_doc: dict[int, list[Any]] = {}
        for inst in task.instances:
            by_doc.setdefault(inst.doc_id, []).append(inst)
        items = []
        for doc_id, group in sorted(by_doc.items()):
            group.sort(key=lambda i: i.idx)
            context = group[0].arguments[0]
            choices = [str(i.arguments[1]) for i in group]
            items.append(MCItem(str(doc_id), context, choices, self._gold(group[0].doc),
                                {"doc": group[0].doc}))
        seed = limit_seed(options)
        items = sample_items(items, limit, seed, label=lambda it: it.gold)
        requests = hashlib.sha256(json.dumps(
            [[it.context, it.choices, it.gold] for it in items], ensure_ascii=False
        ).encode()).hexdigest()[:16]
        source = f"lm-eval:{task.config.dataset_path}:{requests}"
        digest = prompt_hash(benchmark=self.name, yaml=hashlib.sha256(self._yaml).hexdigest(),
                             requests=requests, n_shot=n_shot, chat=chat, n=len(items),
                             fewshot_seed=FEWSHOT_SEED,
                             **sample_key(limit, seed, True, len(by_doc)))
        return PreparedTask(self.name, language.id, n_shot, digest, source, items)

    def _gold(self, doc: Any) -> int:
        if self.output_type != "multiple_choice":
            return 0
        gold = self.task.doc_to_target(doc)
        choices = self.task.doc_to_choice(doc)
        if isinstance(gold, str):
            return choices.index(gold) if gold in choices else -1
        return int(gold) if isinstance(gold, int) and 0 <= gold < len(choices) else -1

    def evaluate(
        self, backend: Backend, language: Language, options: Mapping[str, Any]
    ) -> BenchmarkResult:
        with templates(self.trust_code, str(self.yaml_path or self.name)):
            return self._evaluate(backend, language, options)

    def _evaluate(
        self, backend: Backend, language: Language, options: Mapping[str, Any]
    ) -> BenchmarkResult:
        task = self.prepare(language, options)
        items = self.wrap(backend, task, bool(options.get("chat_template")))
        progress = options.get("progress")
        predictions: list[dict[str, Any]] = []
        per_doc: list[dict[str, Any]] = []
        for start in range(0, len(items), 256):
            part = items[start:start + 256]
            scored = backend.loglikelihood(
                [LoglikelihoodRequest(it.context, c) for it in part for c in it.choices])
            cursor = 0
            for item, original in zip(part, task.items[start:start + 256], strict=True):
                results = [(r.logprob, r.is_greedy)
                           for r in scored[cursor:cursor + len(item.choices)]]
                cursor += len(item.choices)
                per_doc.append(self.task.process_results(original.extra["doc"], results))
                predictions.append(self._prediction(item, results))
            if progress is not None:
                progress(len(part))
        return BenchmarkResult(self.name, language.id, task.n_shot, task.prompt_hash,
                               self._scores(per_doc), predictions, data_source=task.source)

    def _prediction(self, item: MCItem, results: list[tuple[float, bool]]) -> dict[str, Any]:
        logprobs = [lp for lp, _ in results]
        if self.output_type == "loglikelihood":
            return {"id": item.item_id, "logprob": logprobs[0], "is_greedy": results[0][1]}
        pred = max(range(len(logprobs)), key=lambda k: (logprobs[k], -k))  # np.argmax's
        return {"id": item.item_id, "gold": item.gold, "pred": pred,
                "correct": pred == item.gold, "logprobs": logprobs}

    def _scores(self, per_doc: list[dict[str, Any]]) -> list[Score]:
        """lm-eval's aggregation of each metric; standard errors from the toolkit (the mean's
        formula for means, else a bootstrap over items)."""
        from lm_eval.api.metrics import mean

        aggregations = self.task.aggregation()
        scores = []
        for metric in (per_doc[0] if per_doc else {}):
            values = [d[metric] for d in per_doc]
            agg = aggregations.get(metric, mean)
            try:
                value = float(agg(values))
            except OverflowError:  # e.g. perplexity of a very unlikely text
                value = math.inf
            try:
                if agg is mean:
                    stderr = mean_stderr([float(v) for v in values])
                else:
                    def stat(idx: list[int], agg: Any = agg, values: list[Any] = values
                             ) -> float:
                        return float(agg([values[i] for i in idx]))

                    stderr = bootstrap_stderr(len(values), stat, resamples=200)
            except (OverflowError, ValueError, ZeroDivisionError):
                stderr = None
            if stderr is not None and not math.isfinite(stderr):
                stderr = None
            scores.append(Score(metric, value, stderr, len(values)))
        primary = self.primary_metrics[0]
        return sorted(scores, key=lambda s: s.metric != primary)


__all__ = ["LMEvalTask", "PREFIX", "TRUST_HINT", "check_no_code", "knows", "load_tasks",
           "task_files", "task_manager"]
