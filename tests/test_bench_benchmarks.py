"""Each built-in benchmark on the tiny model, with real data (bundled SIB-200, fixtures)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kakugo_core.languages import resolve
from kakugo_core.plugins import create

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def backend(tiny_model):
    scorer = create("backends", "transformers", str(tiny_model), batch_size=8)
    yield scorer
    scorer.close()


def _shots_of(context: str, n_examples: int) -> list[str]:
    return context.split("\n\n")[-(n_examples + 1):-1]


@pytest.mark.slow
def test_sib200_scores_real_items_with_acc_and_macro_f1(backend):
    bench = create("benchmarks", "sib-200")
    result = bench.evaluate(backend, resolve("Javanese"), {"n_shot": 2, "limit": 12})
    scores = {s.metric: s for s in result.scores}
    assert set(scores) == {"acc", "macro_f1"}
    assert scores["acc"].n == 12 and scores["acc"].stderr is not None
    assert 0 <= scores["acc"].value <= 1 and 0 <= scores["macro_f1"].value <= 1
    hits = sum(p["correct"] for p in result.predictions)
    assert scores["acc"].value == pytest.approx(hits / 12)
    assert all(len(p["logprobs"]) == 7 for p in result.predictions)
    assert {p["gold_label"] for p in result.predictions} <= set(bench_labels())
    assert result.language == "jav_Latn" and result.n_shot == 2


def bench_labels() -> tuple[str, ...]:
    from benchmarks.sib200 import LABELS

    return LABELS


def test_sib200_few_shot_is_deterministic_and_never_the_scored_item():
    bench = create("benchmarks", "sib200")
    options = {"n_shot": 3, "limit": 40}
    first = bench.prepare(resolve("jav_Latn"), options)
    again = bench.prepare(resolve("jav_Latn"), options)
    assert [i.context for i in first.items] == [i.context for i in again.items]
    assert first.prompt_hash == again.prompt_hash
    for item in first.items:
        query = item.context.split("\n\n")[-1]
        assert query.startswith("Text: ") and query.endswith("\nTopic:")
        shots = _shots_of(item.context, 3)
        assert len(shots) == 3 and query.removesuffix("\nTopic:") not in "\n".join(shots)
    zero = bench.prepare(resolve("jav_Latn"), {"n_shot": 0, "limit": 40})
    assert zero.prompt_hash != first.prompt_hash
    assert zero.items[0].context.count("Text: ") == 1


def test_fewshot_skips_excluded_keys():
    from kakugo_core.toolkit.fewshot import fewshot_for

    pool = [{"id": str(i)} for i in range(6)]
    picked = fewshot_for(pool, 3, {"0", "1", "2"}, key=lambda r: r["id"], seed="x")
    assert len(picked) == 3 and not {"0", "1", "2"} & {r["id"] for r in picked}
    assert fewshot_for(pool, 10, {"5"}, key=lambda r: r["id"], seed="x") == \
        fewshot_for(pool, 10, {"5"}, key=lambda r: r["id"], seed="x")
    assert len(fewshot_for(pool, 10, {"5"}, key=lambda r: r["id"], seed="x")) == 5


def test_an_excluded_shot_is_replaced_in_place_so_prompts_share_a_prefix():
    from kakugo_core.toolkit.fewshot import fewshot_for

    pool = [{"id": str(i)} for i in range(20)]
    base = [r["id"] for r in fewshot_for(pool, 3, set(), key=lambda r: r["id"], seed="y")]
    for position in range(3):
        own = base[position]  # an item whose own example is one of the shared shots
        got = [r["id"] for r in fewshot_for(pool, 3, {own}, key=lambda r: r["id"], seed="y")]
        assert own not in got and len(got) == 3
        assert got[:position] == base[:position] and got[position + 1:] == base[position + 1:]


@pytest.mark.slow
def test_belebele_from_local_files_in_the_published_schema(backend):
    bench = create("benchmarks", "belebele")
    options = {"n_shot": 1, "data_dir": str(FIXTURES), "limit": 6}
    task = bench.prepare(resolve("yor_Latn"), options)
    for item in task.items:
        passage = item.context.split("\n\n")[-1].split("\nQ: ")[0]
        assert passage.startswith("P: ")
        assert passage not in item.context.split("\n\n")[0]  # the shot is another passage
        assert item.choices == [" A", " B", " C", " D"]
    result = bench.evaluate(backend, resolve("yor_Latn"), options)
    assert [s.metric for s in result.scores] == ["acc"]
    assert result.scores[0].n == 6
    assert result.prompt_hash == task.prompt_hash


@pytest.mark.slow
def test_global_mmlu_reports_acc_per_category_and_cultural_subset(backend):
    bench = create("benchmarks", "global_mmlu")
    result = bench.evaluate(backend, resolve("English"), {"n_shot": 2,
                                                          "data_dir": str(FIXTURES)})
    scores = {s.metric: s for s in result.scores}
    assert {"acc", "acc_stem", "acc_humanities", "acc_social_sciences", "acc_medical",
            "acc_business", "acc_other", "acc_cs", "acc_ca"} == set(scores)
    assert scores["acc"].n == 12 and scores["acc_stem"].n == 4
    assert scores["acc_cs"].n + scores["acc_ca"].n == 12
    task = bench.prepare(resolve("English"), {"n_shot": 2, "data_dir": str(FIXTURES)})
    astronomy = next(i for i in task.items if i.item_id.startswith("astronomy/"))
    assert astronomy.context.startswith(
        "The following are multiple choice questions (with answers) about astronomy.")
    assert "largest planet" in astronomy.context  # same-subject dev example first


@pytest.mark.slow
def test_flores_translates_both_ways_with_chrf_and_bleu(backend):
    bench = create("benchmarks", "flores")
    result = bench.evaluate(backend, resolve("sun_Latn"),
                            {"n_shot": 1, "limit": 3, "max_new_tokens": 8})
    metrics = [s.metric for s in result.scores]
    assert metrics == ["chrf_xx_en", "chrf_en_xx", "bleu_xx_en", "bleu_en_xx"]
    assert bench.primary_metrics == ("chrf_xx_en", "chrf_en_xx")
    assert all(s.n == 3 for s in result.scores)
    assert len(result.predictions) == 6
    for p in result.predictions:
        assert "\n" not in p["hypothesis"] and p["reference"]
        assert p["direction"] in ("xx_en", "en_xx")


def test_flores_pairs_sib200_layout_by_index_id(sib200_dir):
    from benchmarks.flores import load_parallel

    scored, shots, source = load_parallel("jav_Latn", None, "main")
    assert source.startswith("bundled:")
    english = {r.split("\t")[0]: r.split("\t")[2] for r in
               (sib200_dir / "eng_Latn" / "test.tsv").read_text("utf-8").splitlines()[1:]}
    assert len(scored) == 204 and len(shots) == 701
    assert all(english[p["id"]].strip() == p["en"] for p in scored)


def test_corpus_scores_match_sacrebleu():
    from sacrebleu.metrics import BLEU, CHRF

    from benchmarks.flores import corpus_scores

    hyps = ["the cat sat on the mat", "a dog barked", "rain again today"]
    refs = ["the cat sat on a mat", "the dog barked loudly", "it rains again today"]
    scores, per_sentence = corpus_scores(hyps, refs, "xx_en")
    assert scores[0].value == pytest.approx(CHRF(word_order=2).corpus_score(hyps, [refs]).score)
    assert scores[1].value == pytest.approx(BLEU().corpus_score(hyps, [refs]).score)
    assert scores[0].stderr and scores[0].stderr > 0
    assert len(per_sentence) == 3


def test_binomial_stderr_and_macro_f1():
    from kakugo_core.toolkit.metrics import macro_f1, mean_stderr

    assert mean_stderr([1, 0, 1, 1]) == pytest.approx((0.75 * 0.25 / 3) ** 0.5)
    assert macro_f1(["a", "a", "b"], ["a", "b", "b"], ["a", "b", "c"]) == pytest.approx(
        (2 / 3 + 2 / 3) / 2)


def test_prompt_hash_separates_data_sources(tmp_path, sib200_dir):
    import shutil

    bench = create("benchmarks", "sib200")
    shutil.copytree(sib200_dir / "jav_Latn", tmp_path / "sib200" / "jav_Latn")
    bundled = bench.prepare(resolve("jav_Latn"), {"n_shot": 3})
    local = bench.prepare(resolve("jav_Latn"), {"n_shot": 3, "data_dir": str(tmp_path)})
    assert [i.context for i in bundled.items] == [i.context for i in local.items]
    assert bundled.prompt_hash != local.prompt_hash
    assert local.source.startswith("local:") and bundled.source.startswith("bundled:")


def test_local_jsonl_and_parquet_give_the_same_items(tmp_path):
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(line) for line in
            (FIXTURES / "belebele" / "eng_Latn" / "test.jsonl").read_text("utf-8").splitlines()]
    (tmp_path / "belebele" / "eng_Latn").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "belebele" / "eng_Latn" / "test.parquet")
    bench = create("benchmarks", "belebele")
    a = bench.prepare(resolve("eng_Latn"), {"n_shot": 2, "data_dir": str(FIXTURES)})
    b = bench.prepare(resolve("eng_Latn"), {"n_shot": 2, "data_dir": str(tmp_path)})
    assert [(i.context, i.gold) for i in a.items] == [(i.context, i.gold) for i in b.items]


@pytest.mark.slow
def test_chat_template_wraps_the_prompt_and_changes_the_hash(backend):
    bench = create("benchmarks", "sib200")
    plain = bench.prepare(resolve("jav_Latn"), {"n_shot": 1, "limit": 3})
    chat = bench.prepare(resolve("jav_Latn"), {"n_shot": 1, "limit": 3, "chat_template": True})
    assert plain.prompt_hash != chat.prompt_hash
    wrapped = bench.wrap(backend, chat, True)
    assert wrapped[0].context.startswith("<|user|>\n")
    assert wrapped[0].context.endswith("<|assistant|>\n")
    assert wrapped[0].choices[0] == "science/technology"
    result = bench.evaluate(backend, resolve("jav_Latn"),
                            {"n_shot": 1, "limit": 3, "chat_template": True})
    assert result.prompt_hash == chat.prompt_hash and result.scores[0].n == 3
