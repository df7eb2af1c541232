"""run_bench and `kakugo bench`: the store, skipping, --force, predictions and bad input."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from kakugo_core.cli import cli
from kakugo_core.errors import (
    KakugoError,
    NotCoveredError,
    UnknownLanguageError,
    UnknownPluginError,
)
from kakugo_core.scoring import model_slug, run_bench
from kakugo_core.store import ResultsStore

FIXTURES = Path(__file__).parent / "fixtures"


def _cells(db: Path) -> list[tuple]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT benchmark, language, metric, created FROM results "
                            "ORDER BY 1, 2, 3").fetchall()


@pytest.mark.slow
def test_run_bench_stores_skips_and_forces(tiny_model, tmp_path):
    db, preds = tmp_path / "results.sqlite", tmp_path / "preds"
    store = ResultsStore(db)
    args = dict(store=store, n_shot=1, limit=5, predictions_dir=preds, progress=False,
                data_dir=None)
    first = run_bench([str(tiny_model)], ["sib200"], ["jav_Latn", "Sundanese"], **args)
    assert [(r.benchmark, r.language) for r in first] == [("sib200", "jav_Latn"),
                                                          ("sib200", "sun_Latn")]
    rows = store.rows()
    assert {r.metric for r in rows} == {"acc", "macro_f1"} and len(rows) == 4
    assert all(r.revision.startswith("sha256:") and r.n == 5 for r in rows)
    assert rows[0].versions["backend"] == "transformers"
    jsonl = preds / model_slug(str(tiny_model)) / "sib200" / "jav_Latn.jsonl"
    lines = [json.loads(line) for line in jsonl.read_text("utf-8").splitlines()]
    assert len(lines) == 5 and {"id", "gold", "pred", "correct", "logprobs"} <= set(lines[0])
    before = _cells(db)
    jsonl.unlink()

    again = run_bench([str(tiny_model)], ["sib200"], ["jav_Latn", "sun_Latn"], **args)
    assert _cells(db) == before  # nothing recomputed
    assert not jsonl.exists()
    assert [s.value for s in again[0].scores] == [s.value for s in first[0].scores]
    assert again[0].predictions == []

    forced = run_bench([str(tiny_model)], ["sib200"], ["jav_Latn"], force=True, **args)
    assert jsonl.exists() and forced[0].predictions
    assert [s.value for s in forced[0].scores] == [s.value for s in first[0].scores]

    other = run_bench([str(tiny_model)], ["sib200"], ["jav_Latn"], **{**args, "n_shot": 0})
    assert other[0].prompt_hash != first[0].prompt_hash
    assert len({r.n_shot for r in store.rows()}) == 2
    store.close()


@pytest.mark.slow
def test_a_benchmark_can_have_its_own_shot_count(tiny_model, tmp_path):
    store = ResultsStore(tmp_path / "results.sqlite")
    args = dict(store=store, n_shot=2, limit=3, progress=False,
                benchmark_options={"max_new_tokens": 4}, n_shot_by_benchmark={"sib200": 0})
    results = run_bench([str(tiny_model)], ["sib200", "flores"], ["jav_Latn"], **args)
    assert [(r.benchmark, r.n_shot) for r in results] == [("sib200", 0), ("flores", 2)]
    assert {(r.benchmark, r.n_shot) for r in store.rows()} == {("sib200", 0), ("flores", 2)}
    before = _cells(tmp_path / "results.sqlite")
    again = run_bench([str(tiny_model)], ["sib200", "flores"], ["jav_Latn"], **args)
    assert _cells(tmp_path / "results.sqlite") == before  # found under their own counts
    assert [r.n_shot for r in again] == [0, 2] and not any(r.predictions for r in again)
    store.close()


@pytest.mark.parametrize(
    ("benchmarks", "languages", "data_dir", "error", "words"),
    [
        (["sib201"], ["jav_Latn"], None, UnknownPluginError, "unknown benchmark 'sib201'"),
        (["sib200"], ["Klingonish"], None, UnknownLanguageError, "unknown language"),
        (["global_mmlu"], ["jav_Latn"], None, NotCoveredError, "does not cover Javanese"),
        (["belebele"], ["jav_Latn"], None, KakugoError, "pass --data-dir"),
        (["belebele"], ["sun_Latn"], FIXTURES, KakugoError, "no belebele test file"),
        (["sib200"], ["amh_Ethi"], None, KakugoError, "no network"),
    ],
)
def test_bad_input_fails_before_any_model_loads(tmp_path, benchmarks, languages, data_dir,
                                                error, words):
    db = tmp_path / "results.sqlite"
    with pytest.raises(error, match=words) as info:
        run_bench([str(tmp_path / "no-model-needed")], benchmarks, languages,
                  store=ResultsStore(db), data_dir=data_dir, progress=False)
    assert "\n" not in str(info.value)
    assert _cells(db) == []


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ('{"link": "x"\n', "line 1 is not JSON"),
        ('{"link": "x", "question_number": 1}\n', "lacks flores_passage"),
        (None, "correct_answer_num must be 1-4"),
    ],
)
def test_malformed_data_files_are_one_line_errors(tmp_path, content, words):
    folder = tmp_path / "belebele" / "eng_Latn"
    folder.mkdir(parents=True)
    if content is None:
        row = json.loads((FIXTURES / "belebele" / "eng_Latn" / "test.jsonl")
                         .read_text("utf-8").splitlines()[0])
        row["correct_answer_num"] = "7"
        content = json.dumps(row) + "\n"
    (folder / "test.jsonl").write_text(content, "utf-8")
    result = CliRunner().invoke(cli, ["bench", "-m", "unused", "-b", "belebele", "-l", "eng",
                                      "--data-dir", str(tmp_path),
                                      "--db", str(tmp_path / "r.sqlite")])
    assert result.exit_code != 0
    assert isinstance(result.exception, KakugoError)
    assert words in str(result.exception) and "\n" not in str(result.exception)
    assert not (tmp_path / "r.sqlite").exists()


def test_cli_prints_one_line_error_and_exits_non_zero(tmp_path):
    import subprocess
    import sys

    db = tmp_path / "r.sqlite"
    proc = subprocess.run(
        [sys.executable, "-m", "kakugo_core", "bench", "-m", "x", "-b", "global_mmlu",
         "-l", "yor_Latn", "--db", str(db)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith("kakugo: error:") and "--data-dir" in proc.stderr
    assert not db.exists()


@pytest.mark.slow
def test_cli_bench_json_follows_lm_eval_schema(tiny_model, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(FIXTURES / "belebele", data / "belebele")
    args = ["bench", "-m", str(tiny_model), "-b", "sib200,belebele", "-l", "jav_Latn",
            "--limit", "4", "--n-shot", "1", "--data-dir", str(data),
            "--db", str(tmp_path / "r.sqlite"), "--json"]
    # sib200 from --data-dir needs its files there too
    shutil.copytree(Path(__file__).parent.parent / "kakugo_core" / "data" / "sib200" /
                    "jav_Latn", data / "sib200" / "jav_Latn")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert len(out) == 1 and out[0]["config"]["model"] == str(tiny_model)
    from kakugo_core.files import model_folder_revision

    assert out[0]["config"]["model_revision"] == model_folder_revision(tiny_model)
    task = out[0]["results"]["belebele_jav_Latn"]
    assert 0 <= task["acc,none"] <= 1 and "acc_stderr,none" in task
    assert out[0]["n-shot"]["sib200_jav_Latn"] == 1
    assert out[0]["n-samples"]["belebele_jav_Latn"]["effective"] == 4

    table = CliRunner().invoke(cli, args[:-1])
    assert table.exit_code == 0 and "sib200" in table.output  # table from the store
    again = json.loads(CliRunner().invoke(cli, args).output)  # stored cells, skipped
    assert again[0]["config"]["model_revision"] == out[0]["config"]["model_revision"]


def test_bench_help_is_fast_and_explains(tmp_path):
    result = CliRunner().invoke(cli, ["bench", "--help"])
    assert result.exit_code == 0
    assert "--data-dir" in result.output and "--force" in result.output


def test_cli_exports_lm_eval_tasks_without_a_model(tmp_path):
    out = tmp_path / "tasks"
    result = CliRunner().invoke(cli, ["bench", "-b", "sib200,flores", "-l", "jav_Latn",
                                      "--limit", "3", "--n-shot", "2",
                                      "--export-lm-eval", str(out)])
    assert result.exit_code == 0, result.output
    assert "lm_eval --model hf" in result.output and "--include_path" in result.output
    sib_yaml = (out / "kakugo_sib200_jav_Latn_2shot.yaml").read_text("utf-8")
    assert "output_type: multiple_choice" in sib_yaml and "num_fewshot: 0" in sib_yaml
    docs = [json.loads(line) for line in
            (out / "kakugo_sib200_jav_Latn_2shot.jsonl").read_text("utf-8").splitlines()]
    assert len(docs) == 3 and len(docs[0]["choices"]) == 7
    assert docs[0]["query"].count("Text: ") == 3  # two shots and the item
    flores = (out / "kakugo_flores_jav_Latn_2shot.yaml").read_text("utf-8")
    assert "output_type: generate_until" in flores and "chrf" in flores
