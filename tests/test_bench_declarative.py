"""Declarative benchmarks (kakugo_core.toolkit.declarative): the 15-line TOML of
docs/declarative.md, taken from the docs as written, gives the built-in sib200 benchmark's items,
prompts and per-item predictions; it loads by path, from a folder, by name from --tasks-dir and
from a real installed package; bad files are one-line errors naming the file and the key."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from kakugo_core.cli import cli
from kakugo_core.errors import KakugoError
from kakugo_core.languages import resolve
from kakugo_core.plugins import create

REPO = Path(__file__).resolve().parent.parent
BUNDLED = REPO / "kakugo_core" / "data" / "sib200"
DOCS = (REPO / "docs" / "declarative.md").read_text("utf-8")


def docs_example(name: str) -> str:
    """The fenced block after ``<!-- example: NAME -->`` in docs/declarative.md."""
    match = re.search(rf"<!-- example: {re.escape(name)} -->\n```\w*\n(.*?)```", DOCS, re.S)
    assert match, f"docs/declarative.md has no example {name}"
    return match.group(1)


TOPIC = docs_example("topic.toml")


@pytest.fixture
def topic_dir(tmp_path: Path) -> Path:
    """The docs' TOML with the bundled SIB-200 sample beside it, as the docs say."""
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "topic.toml").write_text(TOPIC, "utf-8")
    shutil.copytree(BUNDLED, tmp_path / "tasks" / "sib200")
    return tmp_path / "tasks"


def _items(task):
    return [(it.item_id, it.context, it.choices, it.gold) for it in task.items]


def test_the_docs_example_is_15_lines_and_builds_sib200s_prompts(topic_dir):
    from kakugo_core.toolkit.benchmarks import MultipleChoiceBenchmark
    from kakugo_core.toolkit.declarative import load_benchmarks

    assert len(TOPIC.strip().splitlines()) <= 15
    (ours,) = load_benchmarks(topic_dir / "topic.toml")
    assert isinstance(ours, MultipleChoiceBenchmark) and ours.name == "topic"
    builtin = create("benchmarks", "sib200")
    for language in ("jav_Latn", "yor_Latn"):
        for n_shot in (0, 3):
            options = {"n_shot": n_shot}
            a = ours.prepare(resolve(language), options)
            b = builtin.prepare(resolve(language), options)
            assert len(a.items) == 204
            assert _items(a) == _items(b)
            if n_shot:
                assert a.items[0].context.count("\nTopic: ") == 3
    a0 = ours.prepare(resolve("jav_Latn"), {"n_shot": 0}).prompt_hash
    a3 = ours.prepare(resolve("jav_Latn"), {"n_shot": 3}).prompt_hash
    assert a0 != a3


def test_prompt_hash_covers_the_file_and_the_data(topic_dir):
    from kakugo_core.toolkit.declarative import load_benchmarks

    def digest() -> str:
        (bench,) = load_benchmarks(topic_dir / "topic.toml")
        return bench.prepare(resolve("jav_Latn"), {"n_shot": 0}).prompt_hash

    first = digest()
    assert digest() == first  # stable across loads
    toml = topic_dir / "topic.toml"
    toml.write_text(toml.read_text("utf-8") + "# a comment\n", "utf-8")
    second = digest()
    assert second != first
    data = topic_dir / "sib200" / "jav_Latn" / "test.tsv"
    lines = data.read_text("utf-8").splitlines(keepends=True)
    data.write_text("".join(lines[:-1]), "utf-8")  # one row fewer
    assert digest() not in (first, second)


@pytest.mark.slow
@pytest.mark.parametrize("n_shot", [0, 3])
def test_the_docs_example_predicts_exactly_like_builtin_sib200(tiny_model, topic_dir, tmp_path,
                                                               n_shot):
    db, preds = tmp_path / "r.sqlite", tmp_path / "preds"
    result = CliRunner().invoke(cli, [
        "bench", "-m", str(tiny_model), "-b", f"sib200,{topic_dir / 'topic.toml'}",
        "-l", "jav_Latn", "--n-shot", str(n_shot), "--limit", "40", "--db", str(db),
        "--predictions-dir", str(preds), "--no-progress"])
    assert result.exit_code == 0, result.output
    slug = next(preds.iterdir())
    ours = (slug / "topic" / "jav_Latn.jsonl").read_text("utf-8").splitlines()
    theirs = (slug / "sib200" / "jav_Latn.jsonl").read_text("utf-8").splitlines()
    assert len(ours) == 40
    assert ours == theirs  # id, gold, pred, labels and every log-likelihood, byte for byte
    assert len({json.loads(line)["logprobs"][0] for line in ours}) > 1  # items differ
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT benchmark, metric, value FROM results ORDER BY 1, 2").fetchall()
        versions = dict(con.execute("SELECT benchmark, versions FROM results").fetchall())
    assert json.loads(versions["topic"])["benchmark_plugin"] == "file:topic.toml"
    assert json.loads(versions["sib200"])["benchmark_plugin"] == "kakugo"
    by = {(b, m): v for b, m, v in rows}
    assert by[("topic", "acc")] == by[("sib200", "acc")]
    assert by[("topic", "macro_f1")] == by[("sib200", "macro_f1")]


def test_folder_and_tasks_dir_and_name_clash(topic_dir, tmp_path):
    from kakugo_core.task_files import resolve_benchmarks

    other = TOPIC.replace('name = "topic"', 'name = "topic_en"').replace(
        'languages = ["eng_Latn", "jav_Latn", "sun_Latn", "swh_Latn", "yor_Latn"]',
        'languages = {eng_Latn = "eng_Latn"}')
    (topic_dir / "topic_en.toml").write_text(other, "utf-8")
    found = resolve_benchmarks([str(topic_dir) + "/"])
    assert [b.name for b in found] == ["topic", "topic_en"]
    by_name = resolve_benchmarks(["topic_en", "sib200"], tasks_dirs=[topic_dir])
    assert by_name[0].name == "topic_en" and by_name[1] == "sib200"
    assert by_name[0].language_code(resolve("eng_Latn")) == "eng_Latn"
    assert by_name[0].language_code(resolve("jav_Latn")) is None
    clash = tmp_path / "clash.toml"
    clash.write_text(TOPIC.replace('name = "topic"', 'name = "sib200"'), "utf-8")
    result = CliRunner().invoke(cli, ["bench", "-m", "unused", "-b", str(clash), "-l", "jav"])
    assert isinstance(result.exception, KakugoError)
    assert "'sib200' is taken by kakugo" in str(result.exception)


BAD = [
    ('name = "x"\n', "languages: missing"),
    (TOPIC.replace("gold = ", "glod = "), "glod: unknown key"),
    (TOPIC.replace('choices = [', 'choices = 3 #['), "choices: must be a list"),
    (TOPIC.replace('"acc", "macro_f1"', '"acc", "chrf"'), "metrics: 'chrf' is not a "
                                                         "multiple_choice metric"),
    (TOPIC.replace('"eng_Latn", ', '"klingon", '), "languages.klingon: unknown language"),
    (TOPIC.replace('template = "Text: {text}', 'template = "Text: {text'),
     "template: not a valid template"),
    (TOPIC.replace('name = "topic"', 'name = "a b"'), "name: 'a b' must be"),
    (TOPIC.replace("[card]", "[card]\ncolour = \"red\""), "card.colour: unknown"),
    ("name = [", "not valid TOML"),
    (TOPIC.replace("{text}", "{txet}"), "row 1 lacks txet"),
]


@pytest.mark.parametrize(("content", "words"), BAD)
def test_bad_files_are_one_line_errors_naming_file_and_key(topic_dir, content, words):
    path = topic_dir / "topic.toml"
    path.write_text(content, "utf-8")
    result = CliRunner().invoke(cli, ["bench", "-m", "unused", "-b", str(path), "-l", "jav_Latn",
                                      "--db", str(topic_dir / "r.sqlite")])
    assert isinstance(result.exception, KakugoError), result.output
    message = str(result.exception)
    assert "\n" not in message
    assert message.startswith(str(path.resolve()))
    assert words in message
    assert not (topic_dir / "r.sqlite").exists()  # nothing written


def test_generation_benchmark_with_chrf(tmp_path, tiny_model):
    """A FLORES-like generation task over the bundled parallel sample (jav -> eng)."""
    from kakugo_core.toolkit.declarative import load_benchmarks

    rows = [json.loads(line) for line in _paired_rows(6)]
    (tmp_path / "jav_Latn").mkdir()
    (tmp_path / "jav_Latn" / "test.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    (tmp_path / "mt.toml").write_text(textwrap.dedent('''\
        name = "mt_jav_eng"
        type = "generation"
        languages = ["jav_Latn"]
        files = "{code}/{split}.jsonl"
        id = "index_id"
        template = "{{language}}: {{src}}\\nEnglish:"
        gold = "tgt"
        metrics = ["chrf", "exact_match"]
        max_new_tokens = 8
        '''), "utf-8")
    (bench,) = load_benchmarks(tmp_path / "mt.toml")
    backend = create("backends", "transformers", str(tiny_model), batch_size=4)
    try:
        result = bench.evaluate(backend, resolve("jav_Latn"), {"n_shot": 1})
    finally:
        backend.close()
    assert [s.metric for s in result.scores] == ["chrf", "exact_match"]
    assert 0 <= result.scores[0].value <= 100 and result.scores[0].n == 6
    assert result.predictions[0]["reference"] == rows[0]["tgt"]
    from sacrebleu.metrics import CHRF

    hyps = [p["hypothesis"] for p in result.predictions]
    expected = CHRF(word_order=2).corpus_score(hyps, [[r["tgt"] for r in rows]]).score
    assert result.scores[0].value == pytest.approx(expected)
    prompt = bench.prepare(resolve("jav_Latn"), {"n_shot": 1}).items[0]["prompt"]
    assert prompt.startswith("Javanese: ") and prompt.count("\nEnglish:") == 2
    from kakugo_core.lm_eval_tasks import export_task

    exported = export_task(bench, resolve("jav_Latn"), tmp_path / "export", {"n_shot": 1})
    assert "output_type: generate_until" in exported.read_text("utf-8")


def _paired_rows(n: int) -> list[str]:
    import csv

    def read(code: str) -> dict[str, str]:
        with (BUNDLED / code / "test.tsv").open(encoding="utf-8", newline="") as fh:
            return {r["index_id"]: r["text"]
                    for r in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)}

    jav, eng = read("jav_Latn"), read("eng_Latn")
    return [json.dumps({"index_id": k, "src": jav[k], "tgt": eng[k]}, ensure_ascii=False)
            for k in list(jav)[:n]]


PACKAGE_PYPROJECT = '''\
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "kakugo-topic"
version = "0.2.0"

[project.entry-points.kakugo]
topic = "kakugo_topic"

[tool.setuptools.package-data]
kakugo_topic = ["tasks/*.toml", "tasks/sib200/*/*.tsv"]
'''


@pytest.mark.slow
def test_a_package_ships_the_toml_through_the_entry_point(tmp_path, tiny_model, monkeypatch):
    from kakugo_core.scoring import run_bench
    from kakugo_core.store import ResultsStore
    from kakugo_core.toolkit.cards import benchmark_info

    hook = re.search(r"### Shipping declarative.*?```python\n(.*?)```", DOCS, re.S)
    assert hook
    project = tmp_path / "kakugo-topic"
    package = project / "kakugo_topic"
    (package / "tasks" / "sib200").mkdir(parents=True)
    (package / "__init__.py").write_text(hook.group(1), "utf-8")
    (package / "tasks" / "topic.toml").write_text(TOPIC, "utf-8")
    shutil.copytree(BUNDLED / "jav_Latn", package / "tasks" / "sib200" / "jav_Latn")
    (project / "pyproject.toml").write_text(PACKAGE_PYPROJECT, "utf-8")
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(site), str(project)],
                   check=True, capture_output=True)
    shutil.rmtree(project)  # only the installed copy is left
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("KAKUGO_LOAD_PLUGINS", "kakugo-topic")
    from kakugo_core.plugins import get_host, reset_host

    reset_host()
    host = get_host()
    assert host.failures == []
    assert host.infos["topic"].registered == {"benchmarks": ["topic"]}
    info = benchmark_info("topic")
    assert (info.hub_dataset, info.task_type, info.task_name, info.split) == (
        "Davlan/sib200", "text-classification", "Topic classification", "test")
    store = ResultsStore(tmp_path / "r.sqlite")
    try:
        (result,) = run_bench([str(tiny_model)], ["topic"], ["jav_Latn"], store=store, n_shot=0,
                              limit=5, progress=False)
        assert result.benchmark == "topic" and result.data_source.startswith("file:")
        assert [r.benchmark for r in store.rows([str(tiny_model)])] == ["topic", "topic"]
    finally:
        store.close()


def test_a_files_shot_count_is_the_default_and_exports_to_lm_eval(topic_dir, tmp_path):
    from kakugo_core.evaluation import resolve_shots
    from kakugo_core.task_files import resolve_benchmarks

    with_shots = TOPIC.replace('seed = "sib200"\n', 'seed = "sib200"\nn_shot = 1\n')
    assert "n_shot = 1" in with_shots
    (topic_dir / "topic.toml").write_text(with_shots, "utf-8")
    benches = resolve_benchmarks([str(topic_dir / "topic.toml"), "sib200"])
    assert resolve_shots(benches, {}, None) == {"topic": 1}
    assert resolve_shots(benches, {"topic": 2}, None) == {"topic": 2}  # the config wins
    out = tmp_path / "export"
    result = CliRunner().invoke(cli, ["bench", "-b", str(topic_dir / "topic.toml"), "-l", "jav",
                                      "--limit", "3", "--n-shot", "1", "--export-lm-eval",
                                      str(out)])
    assert result.exit_code == 0, result.output
    docs = (out / "kakugo_topic_jav_Latn_1shot.jsonl").read_text("utf-8").splitlines()
    assert len(docs) == 3 and json.loads(docs[0])["query"].count("\nTopic:") == 2


def test_a_toml_benched_by_path_reaches_the_card_with_its_card_metadata(
        topic_dir, tiny_model, tmp_path):
    """No package registers it: the TOML's [card] is stored with its results, and the release
    (model-index, .eval_results) names the task by it, not as an unknown text-generation task."""
    import yaml
    from huggingface_hub import ModelCard

    from kakugo_core.release import prepare_release
    from kakugo_core.store import ResultsStore

    toml = topic_dir / "topic.toml"
    toml.write_text(TOPIC.replace('[card]', '[card]\ndataset = "me/topics"'), "utf-8")
    db = tmp_path / "r.sqlite"
    result = CliRunner().invoke(cli, ["bench", "-m", str(tiny_model), "-b", str(toml), "-l",
                                      "jav_Latn", "--limit", "14", "--n-shot", "0",
                                      "--db", str(db), "--no-progress"])
    assert result.exit_code == 0, result.output
    with ResultsStore(db) as store:
        store.put("tiny/base", "", "topic", "jav_Latn", 0, "p", [("acc", 0.2, 0.1, 14)])
        out = prepare_release(tiny_model, store=store, base_model="tiny/base",
                              language="Javanese", out_dir=tmp_path / "release",
                              repo_id="me/kakugo-jav", gguf_types=[])
    card = ModelCard.load(out / "README.md")
    (entry,) = [r for r in card.data.eval_results if r.metric_type == "accuracy"]
    assert (entry.dataset_type, entry.task_type, entry.task_name) == (
        "me/topics", "text-classification", "Topic classification")
    (eval_file,) = (out / ".eval_results").glob("topic.yaml")
    assert {e["dataset"]["id"] for e in yaml.safe_load(eval_file.read_text())} == {"me/topics"}


def test_kakugo_run_benches_a_task_file_named_in_its_config(topic_dir, tiny_model, tmp_path,
                                                             monkeypatch):
    """bench.benchmarks may list a TOML file (and bench.tasks_dirs a folder of them) in `kakugo
    run` as in `kakugo bench`: base and student are scored on it and it is in the manifest."""
    from kakugo_core.config import load_config
    from kakugo_core.pipeline import RunFolder
    from kakugo_core.run import RunOptions, run_language
    from kakugo_core.store import ResultsStore

    run_dir = tmp_path / "run"
    shutil.copytree(tiny_model, run_dir / "train" / "model")
    monkeypatch.setattr(RunFolder, "is_current", lambda self, stage, inputs: stage != "bench")
    db = tmp_path / "r.sqlite"
    lines: list[str] = []
    config = load_config(overrides=[
        f"bench.benchmarks=['{topic_dir / 'topic.toml'}', 'topic_by_name']",
        f"bench.tasks_dirs=['{tmp_path / 'more'}']", "bench.limit=14", "bench.n_shot=0",
        f"bench.db='{db}'", f"train.base_model='{tiny_model}'", "judge.in_run=false"])
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "other.toml").write_text(
        TOPIC.replace('name = "topic"', 'name = "topic_by_name"').replace(
            'files = "sib200/', f'files = "{topic_dir}/sib200/').replace(
            'languages = [', 'languages = ["yor_Latn"] #['), "utf-8")
    run_language("jav_Latn", config, RunOptions(run_dir=run_dir, stages=("bench",),
                                                progress=False, echo=lines.append))
    manifest = json.loads((run_dir / "bench" / "manifest.json").read_text())
    assert manifest["counts"]["benchmarks"] == ["topic"]
    assert "Javanese is not covered by topic_by_name: skipped" in lines
    with ResultsStore(db, readonly=True) as store:
        models = {(r.model, r.benchmark) for r in store.rows() if r.metric == "acc"}
    assert models == {(str(tiny_model), "topic"), (str(run_dir / "train" / "model"), "topic")}
