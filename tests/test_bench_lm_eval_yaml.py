"""lm-evaluation-harness task YAML scored by Kakugo's engine: the YAML of docs/declarative.md (taken
from the docs as written) over real SIB-200 rows (tests/fixtures/lm_eval_sib200, licence note in
SOURCE.md there) gives, through ``kakugo bench --include-path`` with the transformers backend,
the per-item predictions ``lm_eval.simple_evaluate`` gives with HFLM, log-likelihoods within
1e-4, at 0 and 2 shots; a ``loglikelihood`` task too."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from kakugo_core.cli import cli
from kakugo_core.errors import KakugoError
from kakugo_core.languages import resolve

FIXTURE = Path(__file__).parent / "fixtures" / "lm_eval_sib200"
DOCS = (Path(__file__).resolve().parent.parent / "docs" / "declarative.md").read_text("utf-8")
_BLOCK = re.search(r"<!-- example: sib200_jav_topic.yaml -->\n```yaml\n(.*?)```", DOCS, re.S)
assert _BLOCK, "docs/declarative.md lost its lm-eval YAML example"
TOPIC_YAML = _BLOCK.group(1)
#: a loglikelihood task over the same rows: the log-likelihood of the topic after the text
LL_YAML = """\
task: sib200_jav_text
dataset_path: json
dataset_kwargs:
  data_files:
    train: sib200_jav/train.jsonl
    test: sib200_jav/test.jsonl
training_split: train
test_split: test
fewshot_split: train
output_type: loglikelihood
doc_to_text: "Text: {{text}}\\nTopic:"
doc_to_target: " {{category}}"
metric_list:
  - metric: perplexity
  - metric: acc
metadata:
  version: 1.0
"""


#: lm-eval's belebele prompt over the Belebele-format fixture (real FLORES passages, see
#: tests/fixtures/belebele/README.md): 4 one-token choices, so the tiny model's answers vary
BELEBELE_YAML = """\
task: belebele_jav_fixture
dataset_path: json
dataset_kwargs:
  data_files:
    test: belebele_jav.jsonl
test_split: test
fewshot_split: test
output_type: multiple_choice
doc_to_text: "P: {{flores_passage}}\\nQ: {{question.strip()}}\\nA: {{mc_answer1}}\\n\\
  B: {{mc_answer2}}\\nC: {{mc_answer3}}\\nD: {{mc_answer4}}\\nAnswer:"
doc_to_choice: ["A", "B", "C", "D"]
doc_to_target: "{{['1', '2', '3', '4'].index(correct_answer_num)}}"
metric_list:
  - metric: acc
metadata:
  version: 1.0
  kakugo_language: jav_Latn
"""


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lm-eval-tasks")
    shutil.copytree(FIXTURE / "sib200_jav", root / "sib200_jav")
    (root / "sib200_jav_topic.yaml").write_text(TOPIC_YAML, "utf-8")
    (root / "sib200_jav_text.yaml").write_text(LL_YAML, "utf-8")
    (root / "belebele_jav_fixture.yaml").write_text(BELEBELE_YAML, "utf-8")
    shutil.copy(Path(__file__).parent / "fixtures" / "belebele" / "jav_Latn" / "test.jsonl",
                root / "belebele_jav.jsonl")
    return root


@pytest.fixture(scope="module")
def hflm(tiny_model):
    from kakugo_core.plugins import create

    backend = create("backends", "lm-eval", str(tiny_model), batch_size=8)
    yield backend.lm
    backend.close()


def _lm_eval(lm, task_dir: Path, task: str, n_shot: int) -> dict:
    import lm_eval
    from lm_eval.tasks import TaskManager

    return lm_eval.simple_evaluate(
        model=lm, tasks=[task], num_fewshot=n_shot, log_samples=True, verbosity="ERROR",
        task_manager=TaskManager(include_path=str(task_dir), include_defaults=False),
    )


def _kakugo(tiny_model, task_dir: Path, tmp_path: Path, task: str, n_shot: int) -> list[dict]:
    preds = tmp_path / "preds"
    result = CliRunner().invoke(cli, [
        "bench", "-m", str(tiny_model), "--include-path", str(task_dir), "-b", task,
        "-l", "jav_Latn", "--n-shot", str(n_shot), "--db", str(tmp_path / "r.sqlite"),
        "--predictions-dir", str(preds), "--no-progress"])
    assert result.exit_code == 0, result.output
    (slug,) = preds.iterdir()
    lines = (slug / task / "jav_Latn.jsonl").read_text("utf-8").splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.slow
@pytest.mark.parametrize(("task", "n_shot"), [("sib200_jav_topic", 0), ("sib200_jav_topic", 2),
                                              ("belebele_jav_fixture", 2)])
def test_multiple_choice_yaml_predicts_like_lm_eval(tiny_model, hflm, task_dir, tmp_path,
                                                    monkeypatch, task, n_shot):
    from kakugo_core.lm_eval_yaml import load_tasks

    monkeypatch.chdir(task_dir)  # the YAML's data_files are relative, as in the docs
    ours = _kakugo(tiny_model, task_dir, tmp_path, task, n_shot)
    out = _lm_eval(hflm, task_dir, task, n_shot)
    samples = sorted(out["samples"][task], key=lambda s: s["doc_id"])
    assert len(ours) == len(samples) == (24 if task.startswith("sib") else 14)
    assert [p["id"] for p in ours] == [str(s["doc_id"]) for s in samples]
    theirs_ll = [[r[0] for r in s["filtered_resps"]] for s in samples]
    theirs_pred = [max(range(len(ll)), key=lambda k: (ll[k], -k)) for ll in theirs_ll]
    assert [p["pred"] for p in ours] == theirs_pred
    for p, ll in zip(ours, theirs_ll, strict=True):
        assert p["logprobs"] == pytest.approx(ll, abs=1e-4)
    assert len({round(p["logprobs"][0], 3) for p in ours}) > 1  # the items really differ
    if task.startswith("belebele"):
        assert len(set(theirs_pred)) > 1  # not a constant answer
        assert [p["gold"] for p in ours] == [int(s["target"]) for s in samples]
    else:
        labels = ["science/technology", "travel", "politics", "sports", "health",
                  "entertainment", "geography"]
        assert [labels[p["gold"]] for p in ours] == [s["target"] for s in samples]
    # the same prompts: lm-eval's contexts, few-shot examples included
    (bench,) = load_tasks(task, [task_dir])
    prepared = bench.prepare(resolve("jav_Latn"), {"n_shot": n_shot})
    assert [it.context for it in prepared.items] == [s["arguments"][0][0] for s in samples]
    assert prepared.items[0].context.count("\nAnswer:" if "bele" in task else "\nTopic:") \
        == n_shot + 1
    with sqlite3.connect(tmp_path / "r.sqlite") as con:
        stored = dict(con.execute(
            "SELECT metric, value FROM results WHERE benchmark = ? AND language = 'jav_Latn' "
            "AND n_shot = ?", (task, n_shot)).fetchall())
        (versions,) = {v for (v,) in con.execute("SELECT versions FROM results")}
    assert json.loads(versions)["benchmark_plugin"] == f"lm-eval-task:{task}.yaml"
    for metric in ("acc", "acc_norm") if task.startswith("sib") else ("acc",):
        assert stored[metric] == pytest.approx(out["results"][task][f"{metric},none"])


@pytest.mark.slow
def test_loglikelihood_yaml_matches_lm_eval(tiny_model, hflm, task_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(task_dir)
    task = "sib200_jav_text"
    ours = _kakugo(tiny_model, task_dir, tmp_path, task, 2)
    out = _lm_eval(hflm, task_dir, task, 2)
    samples = sorted(out["samples"][task], key=lambda s: s["doc_id"])
    assert [p["logprob"] for p in ours] == pytest.approx(
        [s["filtered_resps"][0][0] for s in samples], abs=1e-4)
    assert [p["is_greedy"] for p in ours] == [s["filtered_resps"][0][1] for s in samples]
    assert len({round(p["logprob"], 3) for p in ours}) > 1
    with sqlite3.connect(tmp_path / "r.sqlite") as con:
        stored = dict(con.execute("SELECT metric, value FROM results").fetchall())
    assert stored["perplexity"] == pytest.approx(out["results"][task]["perplexity,none"],
                                                 rel=1e-4)
    assert stored["acc"] == pytest.approx(out["results"][task]["acc,none"])


def test_task_file_errors_are_one_line(task_dir, tmp_path, monkeypatch):
    from kakugo_core.lm_eval_yaml import load_tasks
    from kakugo_core.task_files import resolve_benchmarks

    monkeypatch.chdir(task_dir)
    gen = tmp_path / "gen.yaml"
    gen.write_text(TOPIC_YAML.replace("sib200_jav_topic", "gen_task").replace(
        "output_type: multiple_choice", "output_type: generate_until"), "utf-8")
    with pytest.raises(KakugoError, match="output_type: generate_until is not supported"):
        load_tasks(str(gen))
    with pytest.raises(KakugoError, match="unknown lm-eval task 'nope'"):
        load_tasks("nope", [task_dir])
    # by file path; its kakugo_language limits coverage
    (bench,) = resolve_benchmarks([str(task_dir / "sib200_jav_topic.yaml")])
    assert bench.name == "sib200_jav_topic"
    assert bench.language_code(resolve("jav_Latn")) == "jav_Latn"
    assert bench.language_code(resolve("yor_Latn")) is None
    # without kakugo_language, any -l language
    (free,) = resolve_benchmarks(["sib200_jav_text"], include_paths=[task_dir])
    assert free.language_code(resolve("yor_Latn")) == "yor_Latn"
    result = CliRunner().invoke(cli, ["bench", "-m", "unused", "--include-path", str(task_dir),
                                      "-b", "sib200_jav_topic", "-l", "yor_Latn"])
    assert isinstance(result.exception, KakugoError)
    assert "does not cover Yoruba" in str(result.exception)


def test_prompt_hash_covers_the_yaml_and_the_data(task_dir, tmp_path, monkeypatch):
    from kakugo_core.lm_eval_yaml import load_tasks

    folder = tmp_path / "tasks"
    shutil.copytree(task_dir, folder)
    monkeypatch.chdir(folder)
    yaml_file = folder / "sib200_jav_topic.yaml"

    def digest() -> str:
        (bench,) = load_tasks(str(yaml_file))
        return bench.prepare(resolve("jav_Latn"), {"n_shot": 2}).prompt_hash

    first = digest()
    assert digest() == first
    yaml_file.write_text(TOPIC_YAML + "# a comment\n", "utf-8")
    second = digest()
    assert second != first  # the file's bytes
    data = folder / "sib200_jav" / "train.jsonl"
    rows = data.read_text("utf-8").splitlines(keepends=True)
    data.write_text("".join(reversed(rows)), "utf-8")  # other few-shot examples
    assert digest() not in (first, second)


def test_a_zero_shot_yaml_with_n_shot_is_stored_0_shot_and_skipped_on_rerun(
        tiny_model, task_dir, tmp_path, monkeypatch):
    """A task whose YAML sets ``num_fewshot: 0`` stays 0-shot under ``--n-shot 2`` (as in
    lm_eval.simple_evaluate); it is stored as 0-shot, so the same command again finds it."""
    folder = tmp_path / "tasks"  # its own folder: the module's task index stays as it was
    shutil.copytree(task_dir, folder)
    monkeypatch.chdir(folder)
    (folder / "sib200_jav_zero.yaml").write_text(
        TOPIC_YAML.replace("sib200_jav_topic", "sib200_jav_zero") + "num_fewshot: 0\n", "utf-8")
    args = ["bench", "-m", str(tiny_model), "--include-path", str(folder), "-b",
            "sib200_jav_zero", "-l", "jav_Latn", "--n-shot", "2", "--limit", "14",
            "--db", str(tmp_path / "r.sqlite"), "--no-progress", "--json"]

    def stored() -> list[tuple]:
        with sqlite3.connect(tmp_path / "r.sqlite") as con:
            return con.execute("SELECT n_shot, metric, created FROM results").fetchall()

    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    after_first = stored()
    assert after_first and {row[0] for row in after_first} == {0}
    time.sleep(1.1)  # `created` has one-second resolution: a re-scoring would show
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert stored() == after_first  # skipped, not scored and stored again
    assert json.loads(again.output[again.output.index("[\n"):])[0]["n-shot"] == {
        "sib200_jav_zero_jav_Latn": 0}
