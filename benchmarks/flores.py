"""FLORES translation, xx->en and en->xx, scored with chrF++ and BLEU (sacrebleu).

Default Hub source: ``openlanguagedata/flores_plus`` (the maintained FLORES+; ``facebook/flores``
needs a loading script that current ``datasets`` refuses). Sentences are paired by ``id``; the
``devtest`` split is scored and few-shot pairs come from ``dev``. Locally the SIB-200 layout
(``<code>/{train,test}.tsv`` paired by ``index_id``) works too: ``test`` is scored, ``train``
gives the shots, so the bundled SIB-200 sample is an offline FLORES sample.

Prompt: ``{source language}: {sentence}\\n{target language}:``, greedy, stopped at end of line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kakugo_core import hookimpl
from kakugo_core.errors import KakugoError
from kakugo_core.interfaces import Backend, BenchmarkResult, GenerationRequest, Score
from kakugo_core.languages import Language, resolve
from kakugo_core.toolkit.benchmarks import (
    MultipleChoiceBenchmark,
    PreparedTask,
    apply_limit,
    common_options,
    limit_seed,
    prompt_hash,
)
from kakugo_core.toolkit.data import (
    BUNDLED_SIB200,
    Row,
    Split,
    find_local_file,
    hub_revision,
    load_split,
)
from kakugo_core.toolkit.fewshot import fewshot_for
from kakugo_core.toolkit.sampling import sample_key

HUB_ID = "openlanguagedata/flores_plus"
ENGLISH = "eng_Latn"
TEMPLATE = "{src_name}: {src}\n{tgt_name}:"
#: (scored split, few-shot split, id column) of the two layouts understood locally
LAYOUTS = (("devtest", "dev", "id"), ("test", "train", "index_id"))


def _pairs(xx: Sequence[Row], en: Sequence[Row], id_col: str) -> list[dict[str, str]]:
    english = {str(r[id_col]): str(r["text"]).strip() for r in en}
    return [
        {"id": str(r[id_col]), "xx": str(r["text"]).strip(), "en": english[str(r[id_col])]}
        for r in xx if str(r[id_col]) in english
    ]


def _load_layout(root: Path, code: str) -> tuple[Split, Split, Split, Split, str] | None:
    for scored, shots, id_col in LAYOUTS:
        files = [find_local_file(root, "flores", c, s)
                 for c in (code, ENGLISH) for s in (scored, shots)]
        if all(files):
            splits = [load_split("flores", c, s, (id_col, "text"), data_dir=root, hub_id="",
                                 hub_config="", hub_split="", revision="")
                      for c in (code, ENGLISH) for s in (scored, shots)]
            return splits[0], splits[1], splits[2], splits[3], id_col
    return None


def load_parallel(
    code: str, data_dir: str | None, revision: str
) -> tuple[list[dict[str, str]], list[dict[str, str]], str]:
    """(scored pairs, few-shot pairs, source label) for ``code`` paired with English."""
    roots = [Path(data_dir).expanduser()] if data_dir else [BUNDLED_SIB200]
    for root in roots:
        found = _load_layout(root, code)
        if found:
            xx_test, xx_shots, en_test, en_shots, id_col = found
            scored = _pairs(xx_test.rows, en_test.rows, id_col)
            if not scored:
                raise KakugoError(f"flores {code}: no {id_col} shared with {ENGLISH} in {root}; "
                                  "the files must be FLORES-parallel")
            source = "|".join(s.source for s in (xx_test, xx_shots, en_test, en_shots))
            if not data_dir:
                source = source.replace("local:", "bundled:")
            return scored, _pairs(xx_shots.rows, en_shots.rows, id_col), source
    if data_dir:
        raise KakugoError(
            f"no FLORES files for {code} and {ENGLISH} in {data_dir}: expected "
            f"DIR/flores/<code>/{{devtest,dev}}.jsonl (id, text) or the SIB-200 layout "
            f"DIR/<code>/{{test,train}}.tsv; see docs/benchmarks.md"
        )
    kwargs: dict[str, Any] = dict(data_dir=None, hub_id=HUB_ID, revision=revision)
    splits = [load_split("flores", c, s, ("id", "text"), hub_config=c, hub_split=s, **kwargs)
              for c in (code, ENGLISH) for s in ("devtest", "dev")]
    source = splits[0].source  # hub:<id>@<commit>; the commit is resolved once per process
    return (_pairs(splits[0].rows, splits[2].rows, "id"),
            _pairs(splits[1].rows, splits[3].rows, "id"), source)


def language_name(code: str) -> str:
    try:
        return resolve(code).name
    except KakugoError:
        return code


def corpus_scores(
    hyps: Sequence[str], refs: Sequence[str], suffix: str
) -> tuple[list[Score], list[float]]:
    """chrF++ and BLEU with bootstrap standard errors (resampled sufficient statistics)."""
    import numpy as np
    from sacrebleu.metrics import BLEU, CHRF

    out, sentence_chrf = [], []
    for metric, scorer in (("chrf", CHRF(word_order=2)), ("bleu", BLEU())):
        stats = np.array(scorer._extract_corpus_statistics(list(hyps), [list(refs)]))
        value = scorer._compute_score_from_stats(list(stats.sum(0))).score
        stderr = None
        if len(hyps) > 1:
            rng = np.random.default_rng(1234)
            boots = [scorer._compute_score_from_stats(
                list(stats[rng.integers(0, len(hyps), len(hyps))].sum(0))).score
                for _ in range(300)]
            stderr = float(np.std(boots, ddof=1))
        out.append(Score(f"{metric}_{suffix}", float(value), stderr, len(hyps)))
        if metric == "chrf":
            sentence_chrf = [float(scorer._compute_score_from_stats(list(s)).score)
                             for s in stats]
    return out, sentence_chrf


class FloresBenchmark(MultipleChoiceBenchmark):
    """FLORES translation in both directions with English."""

    name = "flores"
    coverage_key = "flores"
    primary_metrics = ("chrf_xx_en", "chrf_en_xx")

    def prepare(self, language: Language, options: Mapping[str, Any]) -> PreparedTask:
        code = self.code_for(language)
        if code == ENGLISH:
            raise KakugoError("flores translates to and from English: pick another language")
        n_shot, limit, data_dir, chat = common_options(options)
        revision = hub_revision(self.name, options)
        scored, shots_pool, source = load_parallel(code, data_dir, revision)
        names = {"xx": language_name(code), "en": "English"}
        items = []
        seed = limit_seed(options)
        for pair in apply_limit(scored, limit, seed):
            shots = fewshot_for(shots_pool, n_shot, {pair["id"]}, key=lambda p: p["id"],
                                seed=f"flores:{code}")
            for src, tgt in (("xx", "en"), ("en", "xx")):
                prompt = "".join(
                    TEMPLATE.format(src_name=names[src], src=s[src], tgt_name=names[tgt])
                    + f" {s[tgt]}\n\n" for s in shots
                ) + TEMPLATE.format(src_name=names[src], src=pair[src], tgt_name=names[tgt])
                items.append({"id": pair["id"], "direction": f"{src}_{tgt}", "prompt": prompt,
                              "source": pair[src], "reference": pair[tgt]})
        digest = prompt_hash(benchmark=self.name, code=code, n_shot=n_shot, chat=chat,
                             source=source, n=len(items), template=TEMPLATE,
                             max_new_tokens=int(options.get("max_new_tokens", 256)),
                             **sample_key(limit, seed, False, len(scored)))
        return PreparedTask(self.name, language.id, n_shot, digest, source, items)

    def evaluate(
        self, backend: Backend, language: Language, options: Mapping[str, Any]
    ) -> BenchmarkResult:
        task = self.prepare(language, options)
        chat = bool(options.get("chat_template"))
        max_new = int(options.get("max_new_tokens", 256))
        progress = options.get("progress")
        hyps: list[str] = []
        for start in range(0, len(task.items), 128):
            part = task.items[start:start + 128]
            requests = [GenerationRequest(
                backend.apply_chat_template(it["prompt"]) if chat else it["prompt"],
                stop=("\n",), max_new_tokens=max_new) for it in part]
            hyps.extend(h.strip() for h in backend.generate(requests))
            if progress is not None:
                progress(len(part))
        predictions = [{**{k: v for k, v in it.items() if k != "prompt"}, "hypothesis": h}
                       for it, h in zip(task.items, hyps, strict=True)]
        scores: list[Score] = []
        for direction in ("xx_en", "en_xx"):
            rows = [p for p in predictions if p["direction"] == direction]
            found, sentence = corpus_scores([p["hypothesis"] for p in rows],
                                            [p["reference"] for p in rows], direction)
            for p, value in zip(rows, sentence, strict=True):
                p["chrf"] = round(value, 4)
            scores.extend(found)
        order = {"chrf_xx_en": 0, "chrf_en_xx": 1, "bleu_xx_en": 2, "bleu_en_xx": 3}
        scores.sort(key=lambda s: order[s.metric])
        return BenchmarkResult(self.name, language.id, task.n_shot, task.prompt_hash, scores,
                               predictions, data_source=task.source)


@hookimpl
def register_benchmarks(register: Any) -> None:
    register("flores", FloresBenchmark, aliases=("flores200", "flores_plus", "flores-plus"))
