"""Model and dataset cards: huggingface_hub's ModelCard/DatasetCard with Kakugo's templates, the
``model-index`` eval results and the Hub's newer ``.eval_results/*.yaml`` files, all built from a
:class:`~kakugo_core.toolkit.comparison.Comparison` (that is, from the results store)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kakugo_core.errors import KakugoError
from kakugo_core.languages import Language
from kakugo_core.toolkit.comparison import Comparison, ComparisonRow, benchmark_label, is_fraction
from kakugo_core.toolkit.provenance import describe, describe_judge
from kakugo_core.toolkit.provenance import is_hub_id as is_hub_id

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class BenchmarkInfo:
    """How a benchmark is named on the Hub (for model-index and .eval_results)."""

    hub_dataset: str
    task_type: str
    task_name: str
    split: str


KNOWN_BENCHMARKS = {
    "sib200": BenchmarkInfo("Davlan/sib200", "text-classification", "Topic classification",
                            "test"),
    "belebele": BenchmarkInfo("facebook/belebele", "multiple-choice", "Reading comprehension",
                              "test"),
    "global_mmlu": BenchmarkInfo("CohereLabs/Global-MMLU", "multiple-choice",
                                 "Multitask language understanding", "test"),
    "flores": BenchmarkInfo("openlanguagedata/flores_plus", "translation", "Machine translation",
                            "devtest"),
}
METRIC_TYPES = {"acc": "accuracy", "acc_norm": "accuracy", "f1": "f1", "chrf": "chrf",
                "chrf++": "chrf", "bleu": "bleu", "exact_match": "exact_match"}


def metric_type(metric: str) -> str:
    """The Hub's metric type for a stored metric name (``chrf_xx_en`` -> ``chrf``)."""
    for prefix in sorted(METRIC_TYPES, key=len, reverse=True):
        if metric == prefix or metric.startswith(prefix + "_"):
            return METRIC_TYPES[prefix]
    return metric


def benchmark_info(name: str, stored: Mapping[str, str] | None = None) -> BenchmarkInfo:
    """Known Hub names of a benchmark; a plugin may declare ``hub_dataset``, ``task_type``,
    ``task_name`` and ``split`` attributes on its class to override or add them. Where no
    installed plugin registers ``name``, the attributes ``stored`` with its results count (a
    task file benched by path; :attr:`Comparison.stored_card`)."""
    from kakugo_core.plugins import registry

    known = KNOWN_BENCHMARKS.get(name, BenchmarkInfo(name, "text-generation", name, "test"))
    reg = registry("benchmarks")
    factory = reg.get(name).factory if name in reg else None
    if factory is None and stored:
        return BenchmarkInfo(stored.get("hub_dataset") or known.hub_dataset,
                             stored.get("task_type") or known.task_type,
                             stored.get("task_name") or known.task_name,
                             stored.get("split") or known.split)
    return BenchmarkInfo(
        getattr(factory, "hub_dataset", None) or getattr(factory, "hub_id", None)
        or known.hub_dataset,
        getattr(factory, "task_type", None) or known.task_type,
        getattr(factory, "task_name", None) or known.task_name,
        getattr(factory, "split", None) or known.split,
    )


def hub_url(repo_id: str, repo_type: str = "model") -> str:
    prefix = "" if repo_type == "model" else f"{repo_type}s/"
    return f"https://huggingface.co/{prefix}{repo_id}"


def task_id(row: ComparisonRow, metrics_of_language: int) -> str:
    """The task id of one eval result: the language code, plus the metric when the benchmark
    reports more than one for that language (e.g. ``jav_Latn`` or ``jav_Latn/chrf``)."""
    return row.language if metrics_of_language == 1 else f"{row.language}/{row.metric}"


def _metric_count(comparison: Comparison, row: ComparisonRow) -> int:
    return len({r.metric for r in comparison.rows
                if r.benchmark == row.benchmark and r.language == row.language})


# -- eval results --------------------------------------------------------------------------
#: decimals of a model-index value (on its 0-100 scale): 42.16 %, chrF 6.95
HUB_DECIMALS = 2


def hub_value(comparison: Comparison, row: ComparisonRow, value: float) -> float:
    """A score on the scale the Hub's leaderboards read: fractions (accuracy, F1, rates) as
    percentages, chrF/BLEU as stored (already 0-100), rounded to :data:`HUB_DECIMALS`."""
    scale = 100.0 if is_fraction(comparison.rows_of(row.benchmark)) else 1.0
    return round(value * scale, HUB_DECIMALS)


def model_index_results(comparison: Comparison) -> list[Any]:
    """The student's scores as huggingface_hub ``EvalResult`` objects (model-index)."""
    from huggingface_hub import EvalResult

    results = []
    for row in comparison.rows:
        cell = row.cells[comparison.student]
        info = benchmark_info(row.benchmark, comparison.stored_card.get(row.benchmark))
        # scores from local or bundled files are not the Hub split: say so, claim no split
        from_hub = not cell.data_source or cell.data_source.startswith("hub:")
        origin = "" if from_hub else "," + _origin_note(cell.data_source).replace(" on ", " ", 1)
        results.append(EvalResult(
            task_type=info.task_type,
            task_name=info.task_name,
            dataset_type=info.hub_dataset,
            dataset_name=f"{benchmark_label(row.benchmark)} ({row.language}{origin})",
            dataset_config=row.language,
            dataset_split=info.split if from_hub else None,
            metric_type=metric_type(row.metric),
            metric_name=f"{row.metric} ({cell.n_shot}-shot)",
            metric_value=hub_value(comparison, row, cell.value),
        ))
    return results


def _origin_note(data_source: str) -> str:
    if not data_source or data_source.startswith("hub:"):
        return ""
    return " on a bundled sample" if "bundled:" in data_source else " on local files"


def eval_results_files(comparison: Comparison) -> dict[str, str]:
    """``.eval_results/<benchmark>.yaml`` texts: the Hub's structured eval results format
    (a list of ``{dataset: {id, task_id}, value, date, notes}``) for the student. A benchmark
    scored at several settings gets a file per setting, as the Hub asks for variants of one
    benchmark: the most shots in ``<benchmark>.yaml``, the others in
    ``<benchmark>_1-shot.yaml`` and so on."""
    from kakugo_core.leaderboard import setting_of

    files: dict[str, str] = {}
    for benchmark in comparison.benchmarks():
        rows = comparison.rows_of(benchmark)
        settings = sorted({setting_of(r.cells[comparison.student]) for r in rows}, reverse=True)
        for setting in settings:
            name = benchmark if setting == settings[0] else f"{benchmark}_{setting.tag}"
            files[f".eval_results/{name}.yaml"] = _eval_results_file(
                comparison, benchmark,
                [r for r in rows if setting_of(r.cells[comparison.student]) == setting])
    return files


def _eval_results_file(comparison: Comparison, benchmark: str,
                       rows: list[ComparisonRow]) -> str:
    """One ``.eval_results`` file: the student's ``rows`` of one benchmark and setting."""
    import yaml
    from huggingface_hub import EvalResultEntry, eval_result_entries_to_yaml

    info = benchmark_info(benchmark, comparison.stored_card.get(benchmark))
    scale = " (x100)" if is_fraction(comparison.rows_of(benchmark)) else ""
    entries = []
    for row in rows:
        cell = row.cells[comparison.student]
        stderr = "n/a" if cell.stderr is None else f"{hub_value(comparison, row, cell.stderr):g}"
        entries.append(EvalResultEntry(
            dataset_id=info.hub_dataset,
            task_id=task_id(row, _metric_count(comparison, row)),
            value=hub_value(comparison, row, cell.value),
            date=cell.created,
            notes=(f"{row.metric}{scale}, {cell.n_shot}-shot, n={cell.n}, stderr={stderr}; "
                   f"scored with Kakugo{_origin_note(cell.data_source)}"),
        ))
    return str(yaml.safe_dump(eval_result_entries_to_yaml(entries), sort_keys=False,
                              allow_unicode=True))


# -- model card ----------------------------------------------------------------------------
#: training-summary entries too long or too raw for a table (the loss curve is plotted instead)
SUMMARY_SKIP = frozenset({"losses", "chat_template", "log_history"})
MAX_VALUE_CHARS = 120


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_value_text(v) for v in value)
    text = str(value)
    if isinstance(value, str) and "/" in value and (
            value.startswith(("/", "~", ".")) or not is_hub_id(value)):
        text = Path(value).name  # a local path: only its last part means anything to readers
    return text


#: option prefixes that only apply when a switch in ``options`` is on
CONDITIONAL_OPTIONS = (
    ("lora_", lambda o: o.get("method") == "lora"),
    ("alignment_", lambda o: bool(o.get("alignment_pretraining"))),
    ("vocab_", lambda o: bool(o.get("vocab_expansion_tokens"))),
)


def applied_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The training options that took effect: no LoRA settings for a full fine-tune, no
    alignment or vocabulary-expansion settings when those steps were off, and no empty or
    zero "not used" values (no DeepSpeed file, no periodic evaluation)."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        if any(key.startswith(prefix) and not applies(options)
               for prefix, applies in CONDITIONAL_OPTIONS):
            continue
        if value in ("", None, [], {}) or (key in ZERO_MEANS_OFF and not value):
            continue
        if key == "alignment_pretraining" and not value:
            continue
        out[key] = value
    return out


#: options whose 0 means "off" (and is then not shown)
ZERO_MEANS_OFF = frozenset({"eval_steps", "save_steps", "num_processes",
                            "vocab_expansion_tokens"})


def _flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if key in SUMMARY_SKIP:
            continue
        if isinstance(value, Mapping):
            out.extend(_flatten(value, name + "."))
            continue
        text = " ".join(_value_text(value).split())
        if len(text) > MAX_VALUE_CHARS:
            text = text[:MAX_VALUE_CHARS - 1] + "…"
        out.append((name, text))
    return [(k.replace("|", "\\|"), v.replace("|", "\\|")) for k, v in out]


def read_training_summary(model_dir: Path) -> list[tuple[str, str]]:
    """``training_summary.json`` of a model folder as (setting, value) rows; [] when absent."""
    path = model_dir / "training_summary.json"
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise KakugoError(f"{path} is not valid JSON ({exc}); fix or remove it") from None
    if not isinstance(data, Mapping):
        raise KakugoError(f"{path} must hold a JSON object; fix or remove it")
    if isinstance(data.get("options"), Mapping):
        data = {**data, "options": applied_options(data["options"])}
    return _flatten(data)


def build_model_card(
    comparison: Comparison,
    *,
    repo_id: str,
    language: Language,
    base_model: str,
    license: str,
    size: str,
    tables: str,
    plot: str | None,
    training: list[tuple[str, str]],
    loss_curve: str | None,
    dataset_repo_id: str | None,
    think_prompt: str,
    concise_prompt: str,
    teacher: str = "",
    configured_benchmarks: list[str] | None = None,
    gguf_files: list[dict[str, str]] | None = None,
) -> Any:
    """The model card (a huggingface_hub ``ModelCard``). ``teacher`` is the model that wrote
    the training data (as the dataset recorded it); ``configured_benchmarks`` the ones the
    configuration runs, to say why a benchmark that covers the language has no results;
    ``gguf_files`` the release's GGUF exports (``name``, ``type``, ``size``), smallest last."""
    from huggingface_hub import ModelCard, ModelCardData

    tags = ["kakugo", "low-resource-languages", "synthetic-data", "distillation",
            language.id, "text-generation"] + (["gguf"] if gguf_files else [])
    card_data = ModelCardData(
        language=[language.iso639_1 or language.iso639_3],
        license=license,
        library_name="transformers",
        pipeline_tag="text-generation",
        tags=tags,
        base_model=base_model if is_hub_id(base_model) else None,
        datasets=[dataset_repo_id] if dataset_repo_id else None,
        model_name=repo_id,
        eval_results=model_index_results(comparison) or None,
    )
    shots = sorted({c.n_shot for r in comparison.rows for c in r.cells.values()})
    covered = set(comparison.benchmarks())
    not_covered = [benchmark_label(k) for k, code in language.benchmarks.items()
                   if not code and k not in covered]
    provenance = describe(base_model, teacher)
    not_run = [f"{benchmark_label(k)} ({_why_not_run(k, configured_benchmarks, provenance)})"
               for k, code in language.benchmarks.items() if code and k not in covered]
    judges = sorted({c.judge for r in comparison.rows_of("judge") for c in r.cells.values()
                     if c.judge})
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATES / "model_card.md"),
        repo_id=repo_id,
        language=language,
        base_model=base_model,
        provenance=provenance,
        judge_text="; ".join(describe_judge(j) for j in judges),
        not_run="; ".join(not_run),
        size=size,
        others=comparison.others,
        tables=tables,
        plot=plot,
        training=training,
        loss_curve=loss_curve,
        dataset_repo_id=dataset_repo_id,
        dataset_url=hub_url(dataset_repo_id, "dataset") if dataset_repo_id else None,
        # Python string literals for the usage snippets (JSON strings are valid Python ones)
        think_literal=json.dumps(think_prompt, ensure_ascii=False),
        concise_literal=json.dumps(concise_prompt, ensure_ascii=False),
        not_covered=", ".join(not_covered),
        n_shot_text="/".join(str(s) for s in shots) + "-shot" if shots else "few-shot",
        gguf_files=gguf_files or [],
        gguf_note=GGUF_NOTE,
    )


#: what the card says about its GGUF files (docs/releases.md has the measured tolerances)
GGUF_NOTE = (
    "The tensor layout and tokenizer metadata follow llama.cpp's own converter "
    "(`convert_hf_to_gguf.py`). Kakugo's test suite exports real models this way, loads the "
    "files back with transformers' GGUF loader and checks their benchmark predictions against "
    "the safetensors weights: F16 gives the same predictions; Q8_0 is 8-bit and can change a "
    "close call. Norms stay in F32.")


def _why_not_run(benchmark: str, configured: list[str] | None, provenance: Any) -> str:
    if configured is not None and benchmark not in configured:
        if provenance.is_demo_teacher:
            return ("the offline demo downloads nothing and bundles no data for it; "
                    "not in `bench.benchmarks`")
        return "not in this run's `bench.benchmarks`"
    return "no result for this model in the results store; run `kakugo bench` with it"


# -- dataset card --------------------------------------------------------------------------
def build_dataset_card(
    *,
    repo_id: str,
    language: Language,
    license: str,
    splits: list[tuple[str, int]],
    columns: list[str],
    model_repo_id: str | None,
) -> Any:
    """A dataset card for a generated dataset that has none of its own."""
    from huggingface_hub import DatasetCard, DatasetCardData

    total = sum(rows for _, rows in splits)
    size = ("n<1K" if total < 1_000 else "1K<n<10K" if total < 10_000
            else "10K<n<100K" if total < 100_000 else "100K<n<1M")
    pretty = f"Kakugo {language.name} instruction data"
    card_data = DatasetCardData(
        language=[language.iso639_1 or language.iso639_3],
        license=license,
        pretty_name=pretty,
        task_categories=["text-generation"],
        tags=["kakugo", "synthetic", "low-resource-languages", language.id],
        size_categories=[size],
    )
    return DatasetCard.from_template(
        card_data,
        template_path=str(TEMPLATES / "dataset_card.md"),
        repo_id=repo_id,
        pretty_name=pretty,
        language=language,
        splits=splits,
        columns=", ".join(f"`{c}`" for c in columns) or "none",
        model_repo_id=model_repo_id,
        model_url=hub_url(model_repo_id) if model_repo_id else None,
    )
