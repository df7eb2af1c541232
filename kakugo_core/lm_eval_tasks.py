"""Kakugo benchmarks as lm-evaluation-harness tasks: an exporter that turns a prepared Kakugo
benchmark into an lm-eval task YAML plus its documents.

Exported tasks hold fully formatted prompts (few-shot examples included), so lm-eval scores
exactly the prompts Kakugo does: ``num_fewshot`` stays 0 and the choice continuations carry
their own leading space (``target_delimiter: ""``). Nothing here imports lm_eval.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kakugo_core.files import inside
from kakugo_core.languages import Language


def export_task(
    benchmark: Any, language: Language, out_dir: str | Path, options: Mapping[str, Any]
) -> Path:
    """Write ``<out_dir>/<task>.yaml`` and ``<task>.jsonl`` so that
    ``lm_eval --model hf --model_args pretrained=M --include_path OUT --tasks <task>``
    scores the same prompts as ``kakugo bench``; return the YAML's path.

    Multiple-choice benchmarks export ``output_type: multiple_choice`` (metric ``acc``);
    flores exports ``generate_until`` with lm-eval's ``chrf`` metric per direction."""
    task = benchmark.prepare(language, options)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = f"kakugo_{task.benchmark}_{task.language}_{task.n_shot}shot"
    docs = inside(out, f"{name}.jsonl")
    if task.items and isinstance(task.items[0], dict):  # generation (flores, declarative)
        rows = [{"id": it["id"], "direction": it.get("direction", ""), "query": it["prompt"],
                 "reference": it["reference"]} for it in task.items]
        body = (
            "output_type: generate_until\n"
            'doc_to_text: "{{query}}"\n'
            'doc_to_target: "{{reference}}"\n'
            "generation_kwargs:\n  until: [\"\\n\"]\n  do_sample: false\n"
            "metric_list:\n  - metric: chrf\n    aggregation: chrf\n    higher_is_better: true\n"
            "filter_list:\n  - name: strip\n    filter:\n      - function: regex\n"
            "        regex_pattern: \"^\\\\s*(.*?)\\\\s*$\"\n"
        )
    else:
        rows = [{"id": it.item_id, "query": it.context, "choices": it.choices, "gold": it.gold}
                for it in task.items]
        body = (
            "output_type: multiple_choice\n"
            'doc_to_text: "{{query}}"\n'
            'doc_to_choice: "{{choices}}"\n'
            'doc_to_target: "{{gold}}"\n'
            'target_delimiter: ""\n'
            "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n"
        )
    tmp = docs.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    tmp.replace(docs)
    yaml = (
        f"# Exported by Kakugo: {task.benchmark} {task.language}, {task.n_shot}-shot, "
        f"prompt hash {task.prompt_hash}, data {task.source}\n"
        f"task: {name}\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {json.dumps(str(docs.resolve()))}\n"
        "test_split: test\n"
        "num_fewshot: 0\n"
        + body
        + "metadata:\n  version: 1.0\n"
    )
    path = inside(out, f"{name}.yaml")
    path.with_suffix(".yaml.tmp").write_text(yaml, "utf-8")
    path.with_suffix(".yaml.tmp").replace(path)
    return path
