"""The bad-input census (issue 15): well over 100 kinds of bad input across every command, each
checked for the promise Kakugo makes about bad input: a non-zero exit (the expected code), ONE
line on stderr (``kakugo: error: ...``, never a traceback), and every file that existed before
unchanged, byte for byte.

Cases run in-process through ``kakugo_core.cli.main`` (the console script's own entry point,
so the exit codes and stderr are the script's; a few subprocess tests in the other test files
check the script itself). Each case works on a fresh copy of one prepared workspace: a tiny
model, a results store holding its SIB-200 Javanese scores, a training dataset, prompts and
benchmark data. Add a row to CASES for every new kind of bad input found.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SIB200 = Path(__file__).resolve().parent.parent / "kakugo_core" / "data" / "sib200"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SECRET = "sk-census-SECRET-4b1d9e7f0a"


@dataclass
class Case:
    """One kind of bad input: the arguments (run in the workspace), what the single stderr line
    must contain, the exit code, and an optional setup that damages the workspace first."""

    id: str
    argv: list[str]
    expect: str
    code: int = 2
    setup: Callable[[Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)


# -- workspace damage -------------------------------------------------------------------------
def write(rel: str, data: str | bytes) -> Callable[[Path], None]:
    def setup(ws: Path) -> None:
        path = ws / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, "utf-8")
    return setup


def chain(*steps: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(ws: Path) -> None:
        for step in steps:
            step(ws)
    return setup


def model_copy(name: str, change: Callable[[Path], None] | None = None) -> Callable[[Path], None]:
    def setup(ws: Path) -> None:
        shutil.copytree(ws / "tiny", ws / name)
        if change is not None:
            change(ws / name)
    return setup


def sib_data(test_tsv: str | bytes, name: str = "test.tsv") -> Callable[[Path], None]:
    """``bad/sib200/jav_Latn/`` with the bundled train/dev splits and this test split."""
    def setup(ws: Path) -> None:
        folder = ws / "bad" / "sib200" / "jav_Latn"
        folder.mkdir(parents=True)
        for split in ("train", "dev"):
            shutil.copy(SIB200 / "jav_Latn" / f"{split}.tsv", folder)
        target = folder / name
        if isinstance(test_tsv, bytes):
            target.write_bytes(test_tsv)
        else:
            target.write_text(test_tsv, "utf-8")
    return setup


def _sib_test() -> list[str]:
    return (SIB200 / "jav_Latn" / "test.tsv").read_text("utf-8").splitlines()


def sib_lines(change: Callable[[list[str]], list[str]]) -> Callable[[Path], None]:
    return sib_data("\n".join(change(_sib_test())) + "\n")


def belebele(rows: list[dict]) -> Callable[[Path], None]:
    return write("bad/belebele/jav_Latn/test.jsonl",
                 "".join(json.dumps(r) + "\n" for r in rows))


BELEBELE_ROW = {"link": "l1", "question_number": 1, "flores_passage": "p", "question": "q",
                "mc_answer1": "a", "mc_answer2": "b", "mc_answer3": "c", "mc_answer4": "d",
                "correct_answer_num": "1"}


def read_only(rel: str) -> Callable[[Path], None]:
    """Make ``ws/rel`` (a folder) unwritable, for root too (the immutable attribute)."""
    def setup(ws: Path) -> None:
        path = ws / rel
        path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            done = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
            if done.returncode != 0:
                pytest.skip("cannot make a folder read-only for root here (no chattr +i)")
        else:
            path.chmod(0o555)
    return setup


def _unfreeze(ws: Path) -> None:
    if os.geteuid() == 0:
        for path in ws.rglob("*"):
            if path.is_dir() and not path.is_symlink():
                subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    for path in ws.rglob("*"):
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)


def manifest(stage: str, data: object) -> Callable[[Path], None]:
    return write(f"runs/r/{stage}/manifest.json", json.dumps(data))


BENCH_ANY = ["bench", "-m", "tiny", "-l", "jav_Latn", "--limit", "2", "--n-shot", "0", "--db",
             "new.sqlite", "--no-progress"]  # name the benchmark with -b
BENCH = ["bench", "-b", "sib200", "-l", "jav_Latn", "--limit", "2", "--n-shot", "0",
         "--db", "new.sqlite", "--no-progress"]
BENCH_TINY = [*BENCH, "-m", "tiny"]
RELEASE = ["release", "--model", "tiny", "--base", "base-model", "-l", "jav_Latn",
           "--db", "store.sqlite"]
JUDGE = ["judge", "-m", "tiny", "--opponent", "tiny2", "-l", "jav_Latn", "--db", "new.sqlite",
         "--no-progress"]
EXPORT = ["compare", "export", "-l", "jav_Latn", "--out", "cmp", "--no-progress"]
TRAIN = ["train", "-m", "tiny", "--dataset", "ds", "--out", "trained"]


def other_language(argv: list[str]) -> list[str]:
    """``argv`` without its ``-l LANG`` (a one-language command refuses two)."""
    at = argv.index("-l")
    return argv[:at] + argv[at + 2:]


NO_TEACHER = ["--set", "teacher.base_url=http://127.0.0.1:9/v1", "--set",
              "teacher.max_retries=0", "--set", "teacher.timeout_s=2"]
GEN = ["generate", "jav_Latn", "--work-dir", "gen", "--no-progress", "--generators", "topic"]

def task_yaml(task: str, extra: str = "") -> str:
    """An lm-eval multiple-choice task over the real SIB-200 Javanese fixture rows."""
    data = FIXTURES / "lm_eval_sib200" / "sib200_jav"
    return (f"task: {json.dumps(task)}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
            f"    test: {json.dumps(str(data / 'test.jsonl'))}\ntest_split: test\n"
            "output_type: multiple_choice\ndoc_to_text: \"{{text}}\"\n"
            "doc_to_choice: [\"travel\", \"health\"]\ndoc_to_target: 0\n" + extra)


#: a task file whose !function imports tasks/utils.py, which would write ``ran``
EVIL_TASK = chain(
    write("tasks/utils.py", "open('ran', 'w').write('x')\ndef docs(d):\n    return d\n"),
    write("tasks/evil_task.yaml", task_yaml("evil_task", "process_docs: !function utils.docs\n")))


CASES: list[Case] = [
    # -- languages ----------------------------------------------------------------------------
    Case("lang-unknown-name", ["languages", "Klingon"], "unknown language 'Klingon'"),
    Case("lang-sql-like", ["languages", "x'; DROP TABLE"], "unknown language"),
    Case("lang-bench", [*BENCH, "-m", "tiny", "-l", "xx_Nope"], "unknown language"),
    Case("lang-bench-one-of-many", [*BENCH_TINY, "-l", "jav,Klingon"], "unknown language"),
    Case("lang-not-bundled-offline", [*BENCH_TINY, "-l", "yue_Hant"], "yue_Hant"),
    Case("lang-generate", ["generate", "Klingon", "--work-dir", "gen"], "unknown language"),
    Case("lang-generate-empty", ["generate", "", "--work-dir", "gen"], "language"),
    Case("lang-run", ["run", "Klingon", "--no-progress"], "unknown language"),
    Case("lang-run-list", ["run", "--languages", "jav,Klingon", "--no-progress"],
         "unknown language"),
    Case("lang-dataset", ["dataset", "Klingon", "--work-dir", "gen", "--out", "d2"],
         "unknown language"),
    Case("lang-release", [*RELEASE[:-4], "-l", "Klingon", "--db", "store.sqlite"],
         "unknown language"),
    Case("lang-release-never-benched", [*RELEASE[:-4], "-l", "yor_Latn", "--db",
                                        "store.sqlite"], "no results for 'tiny' in Yoruba"),
    Case("lang-judge", [*other_language(JUDGE), "-p", "prompts.jsonl", "-l", "zzz_Qqqq"],
         "unknown language"),
    Case("lang-compare", [*other_language(EXPORT), "-m", "tiny", "-m", "tiny2", "-p",
                          "prompts.jsonl", "-l", "qqq"], "unknown language"),
    Case("lang-demo-no-data", ["run", "--demo", "French", "--run-dir", "demo", "--no-progress"],
         "the demo has no bundled data"),
    # -- configuration ------------------------------------------------------------------------
    Case("cfg-missing-file", ["config", "--config", "nope.toml"], "no such configuration file"),
    Case("cfg-not-toml", ["config", "--config", "bad.toml"], "not valid TOML",
         setup=write("bad.toml", "[train\nepochs = 1\n")),
    Case("cfg-binary", ["config", "--config", "bad.toml"], "not valid TOML",
         setup=write("bad.toml", b"\xff\xfe\x00garbage")),
    Case("cfg-a-folder", ["config", "--config", "ds"], "is a directory"),
    Case("cfg-unknown-section", ["config", "--config", "bad.toml"], "unknown key 'foo'",
         setup=write("bad.toml", "[foo]\nx = 1\n")),
    Case("cfg-section-not-table", ["config", "--config", "bad.toml"], "'train' must be a table",
         setup=write("bad.toml", "train = 5\n")),
    Case("cfg-wrong-type-file", ["config", "--config", "bad.toml"],
         "'train.epochs' must be float", setup=write("bad.toml", '[train]\nepochs = "one"\n')),
    Case("cfg-file-range", ["config", "--config", "bad.toml"], "'bench.limit' must be >= 0",
         setup=write("bad.toml", "[bench]\nlimit = -5\n")),
    Case("cfg-set-no-equals", ["config", "--set", "bench.limit"], "expected section.key=value"),
    Case("cfg-set-unknown", ["config", "--set", "train.epoch=2"], "unknown key 'train.epoch'"),
    Case("cfg-set-empty-key", ["config", "--set", "=5"], "unknown key"),
    Case("cfg-set-double-dot", ["config", "--set", "teacher..model=x"], "unknown key"),
    Case("cfg-set-table", ["config", "--set", "bench=3"], "'bench' must be a table"),
    Case("cfg-set-string-for-float", ["config", "--set", "train.learning_rate=abc"],
         "'train.learning_rate' must be float"),
    Case("cfg-set-bool-for-int", ["config", "--set", "bench.limit=true"],
         "'bench.limit' must be int"),
    Case("cfg-limit-negative", ["config", "--set", "bench.limit=-5"], "'bench.limit' must be >= 0"),
    Case("cfg-timeout-negative", ["config", "--set", "teacher.timeout_s=-1"],
         "'teacher.timeout_s' must be > 0"),
    Case("cfg-validation-fraction", ["config", "--set", "dataset.validation_fraction=1.5"],
         "'dataset.validation_fraction' must be >= 0 and < 1"),
    Case("cfg-max-retries", ["config", "--set", "teacher.max_retries=-1"],
         "'teacher.max_retries' must be >= 0"),
    Case("cfg-concurrency-zero", ["config", "--set", "teacher.concurrency=0"],
         "'teacher.concurrency' must be >= 1"),
    Case("cfg-top-p", ["config", "--set", "teacher.top_p=1.5"], "'teacher.top_p' must be"),
    Case("cfg-method", ["config", "--set", "train.method=qlora"],
         "'train.method' must be one of full, lora"),
    Case("cfg-precision", ["config", "--set", "train.precision=fp8"], "'train.precision'"),
    Case("cfg-nan", ["config", "--set", "train.learning_rate=nan"],
         "'train.learning_rate' must be a number"),
    Case("cfg-free-table-negative", ["config", "--set", "bench.n_shot_by_benchmark.sib200=-1"],
         "must be a non-negative int"),
    Case("cfg-leaderboard-format", ["config", "--set", "leaderboard.format=pdf"],
         "'leaderboard.format' must be one of"),
    Case("cfg-bench-set-limit", [*BENCH_TINY, "--set", "bench.limit=-5"],
         "'bench.limit' must be >= 0"),
    Case("cfg-generate-max-cost", [*GEN, "--max-cost", "-1"], "'generate.max_cost' must be >= 0"),
    Case("cfg-train-epochs", [*TRAIN, "--epochs", "-1"], "'train.epochs' must be > 0"),
    Case("cfg-train-lr-zero", [*TRAIN, "--learning-rate", "0"], "'train.learning_rate' must be"),
    Case("cfg-train-max-length", [*TRAIN, "--max-length", "0"], "'train.max_length' must be"),
    Case("cfg-run-bad-set", ["run", "jav", "--set", "train.epochs=0", "--no-progress"],
         "'train.epochs' must be > 0"),
    Case("cfg-teacher-http-client", ["teacher", "--set", "teacher.http_client=curl"],
         "'teacher.http_client' must be one of"),
    Case("cfg-flag-bad-int", [*BENCH_TINY, "--limit", "many"], "'--limit'"),
    Case("cfg-flag-negative-limit", [*BENCH_TINY, "--limit", "-1"], "'--limit'"),
    Case("cfg-unknown-option", [*BENCH_TINY, "--limt", "3"], "No such option"),
    Case("cfg-unknown-command", ["benchh"], "No such command"),
    # -- benchmark data files, every format ---------------------------------------------------
    Case("data-dir-missing", [*BENCH_TINY, "--data-dir", "nowhere"], "no sib200 test file"),
    Case("data-dir-a-file", [*BENCH_TINY, "--data-dir", "prompts.jsonl"], "is a file"),
    Case("data-tsv-extra-fields", [*BENCH_TINY, "--data-dir", "bad"],
         "more tab-separated fields than the header",
         setup=sib_lines(lambda ls: [ls[0], ls[1] + "\tsurplus", *ls[2:]])),
    Case("data-tsv-duplicate-id", [*BENCH_TINY, "--data-dir", "bad"], "repeats index_id",
         setup=sib_lines(lambda ls: [*ls, ls[1]])),
    Case("data-tsv-no-header", [*BENCH_TINY, "--data-dir", "bad"], "lacks",
         setup=sib_lines(lambda ls: ls[1:])),
    Case("data-tsv-empty", [*BENCH_TINY, "--data-dir", "bad"], "no rows", setup=sib_data("")),
    Case("data-tsv-header-only", [*BENCH_TINY, "--data-dir", "bad"], "no rows",
         setup=sib_lines(lambda ls: ls[:1])),
    Case("data-tsv-not-utf8", [*BENCH_TINY, "--data-dir", "bad"], "cannot read benchmark data",
         setup=sib_data(b"index_id\tcategory\ttext\n1\tscience\t\xff\xfe bad\n")),
    Case("data-tsv-empty-text", [*BENCH_TINY, "--data-dir", "bad"], "lacks text",
         setup=sib_lines(lambda ls: [ls[0], ls[1].rsplit("\t", 1)[0] + "\t", *ls[2:]])),
    Case("data-tsv-missing-column", [*BENCH_TINY, "--data-dir", "bad"], "lacks category",
         setup=sib_lines(lambda ls: ["index_id\ttopic\ttext", *ls[1:]])),
    Case("data-jsonl-bad-line", [*BENCH_TINY, "--data-dir", "bad"], "line 2 is not JSON",
         setup=sib_data('{"index_id": "1", "category": "a", "text": "t"}\n{half\n',
                        "test.jsonl")),
    Case("data-jsonl-not-object", [*BENCH_TINY, "--data-dir", "bad"], "row 1 is not an object",
         setup=sib_data('["index_id", "category"]\n', "test.jsonl")),
    Case("data-jsonl-missing-field", [*BENCH_TINY, "--data-dir", "bad"], "lacks category",
         setup=sib_data('{"index_id": "1", "text": "t"}\n', "test.jsonl")),
    Case("data-json-object", [*BENCH_TINY, "--data-dir", "bad"], "expected a JSON list",
         setup=sib_data('{"rows": []}', "test.json")),
    Case("data-json-strings", [*BENCH_TINY, "--data-dir", "bad"], "not an object",
         setup=sib_data('["a", "b"]', "test.json")),
    Case("data-json-truncated", [*BENCH_TINY, "--data-dir", "bad"], "cannot read benchmark data",
         setup=sib_data('[{"index_id": "1", "categ', "test.json")),
    Case("data-jsonl-duplicate-id", [*BENCH_TINY, "--data-dir", "bad"], "repeats index_id",
         setup=sib_data('{"index_id": "7", "category": "a", "text": "t"}\n' * 2,
                        "test.jsonl")),
    Case("data-parquet-garbage", [*BENCH_TINY, "--data-dir", "bad"],
         "cannot read benchmark data", setup=sib_data(b"PAR1 not really", "test.parquet")),
    Case("data-belebele-bad-answer", [*BENCH_ANY, "-b", "belebele", "--data-dir", "bad"],
         "correct_answer_num must be 1-4",
         setup=belebele([{**BELEBELE_ROW, "correct_answer_num": "7"}])),
    Case("data-belebele-duplicate", [*BENCH_ANY, "-b", "belebele", "--data-dir", "bad"],
         "appears twice", setup=belebele([BELEBELE_ROW, BELEBELE_ROW])),
    Case("data-belebele-missing-field", [*BENCH_ANY, "-b", "belebele", "--data-dir", "bad"],
         "lacks question", setup=belebele([{k: v for k, v in BELEBELE_ROW.items()
                                             if k != "question"}])),
    Case("data-global-mmlu-missing", [*BENCH_ANY, "-b", "global_mmlu", "--data-dir", "bad"],
         "global_mmlu", setup=write("bad/README", "nothing here")),
    Case("data-unknown-benchmark", [*BENCH_TINY, "-b", "sib201"], "sib201"),
    Case("data-export-into-file", [*BENCH, "--export-lm-eval", "prompts.jsonl"], "is a file"),
    Case("data-predictions-dir-file", [*BENCH_TINY, "--predictions-dir", "prompts.jsonl"],
         "is a file"),
    Case("data-judge-prompts-missing", [*JUDGE, "-p", "nope.jsonl"], "nope.jsonl"),
    Case("data-judge-prompts-empty", [*JUDGE, "-p", "empty.jsonl"], "empty.jsonl",
         setup=write("empty.jsonl", "")),
    Case("data-judge-prompts-no-field", [*JUDGE, "-p", "bad.jsonl"], "bad.jsonl",
         setup=write("bad.jsonl", '{"question": "hi"}\n')),
    Case("data-judge-prompts-garbage", [*JUDGE, "-p", "bad.jsonl"], "bad.jsonl",
         setup=write("bad.jsonl", "{{{\n")),
    Case("data-judge-no-opponent", [*JUDGE[:3], "-l", "jav_Latn", "-p", "prompts.jsonl",
                                    "--db", "new.sqlite"], "opponent"),
    Case("data-compare-prompts-garbage", [*EXPORT, "-m", "tiny", "-m", "tiny2", "-p",
                                          "bad.jsonl"], "bad.jsonl",
         setup=write("bad.jsonl", "not json at all\n")),
    Case("data-compare-one-model", [*EXPORT, "-m", "tiny", "-p", "prompts.jsonl"],
         "give exactly two --model"),
    Case("data-compare-same-model", [*EXPORT, "-m", "tiny", "-m", "tiny", "-p", "prompts.jsonl"],
         "both --model options"),
    Case("data-compare-import-garbage", ["compare", "import", "votes.csv", "--key", "key.json",
                                         "--db", "new.sqlite"], "",
         setup=chain(write("votes.csv", b"\x00\x01garbage"), write("key.json", "[1, 2"))),
    Case("data-compare-import-missing", ["compare", "import", "nope.csv", "--key", "nope.json",
                                         "--db", "new.sqlite"], "nope"),
    Case("data-dataset-no-work-dir", ["dataset", "jav", "--work-dir", "nowhere", "--out", "d2"],
         "nowhere"),
    Case("data-dataset-garbage-rows", ["dataset", "jav", "--work-dir", "gen", "--out", "d2"], "",
         setup=write("gen/responses.jsonl", '{"id": 1, "oops"\n[1,2]\n')),
    Case("data-train-no-dataset", [*TRAIN[:3], "--dataset", "nowhere", "--out", "trained"],
         "nowhere"),
    Case("data-train-garbage-dataset", [*TRAIN[:3], "--dataset", "gen", "--out", "trained"],
         "gen", setup=write("gen/dataset_dict.json", "{broken")),
    # -- models -------------------------------------------------------------------------------
    Case("model-empty-folder", [*BENCH, "-m", "empty"], "has no config.json",
         setup=lambda ws: (ws / "empty").mkdir()),
    Case("model-no-tokenizer", [*BENCH, "-m", "notok"], "has no tokenizer",
         setup=model_copy("notok", lambda m: (m / "tokenizer.json").unlink())),
    Case("model-truncated-weights", [*BENCH, "-m", "cut"], "truncated safetensors",
         setup=model_copy("cut", lambda m: os.truncate(m / "model.safetensors", 2000))),
    Case("model-garbage-weights", [*BENCH, "-m", "junk"], "not a valid safetensors file",
         setup=model_copy("junk", lambda m: (m / "model.safetensors").write_bytes(b"\x00" * 64))),
    Case("model-no-weights", [*BENCH, "-m", "noweights"], "has no weights",
         setup=model_copy("noweights", lambda m: (m / "model.safetensors").unlink())),
    Case("model-garbage-config", [*BENCH, "-m", "badcfg"], "cannot load model",
         setup=model_copy("badcfg", lambda m: (m / "config.json").write_text("{oops"))),
    Case("model-missing-relative", [*BENCH, "-m", "./models/missing"], "does not exist"),
    Case("model-missing-absolute", [*BENCH, "-m", "/nonexistent/kakugo/model"], "does not exist"),
    Case("model-a-file", [*BENCH, "-m", "prompts.jsonl"], "is a file"),
    Case("model-bad-hub-id", [*BENCH, "-m", "not a repo!!"], "cannot load model"),
    Case("model-hub-offline", [*BENCH, "-m", "nobody/nothing-here"], "cannot load model"),
    Case("model-device-cuda", [*BENCH_TINY, "--device", "cuda:7"], "device 'cuda:7'"),
    Case("model-device-unknown", [*BENCH_TINY, "--device", "tpu"], "unknown device 'tpu'"),
    Case("model-train-empty", [*TRAIN[:1], "-m", "empty", *TRAIN[3:]], "empty",
         setup=lambda ws: (ws / "empty").mkdir()),
    Case("model-train-missing-path", [*TRAIN[:1], "-m", "./bases/gone", *TRAIN[3:]],
         "base model folder ./bases/gone does not exist"),
    Case("model-judge-empty", [*JUDGE[:2], "empty", *JUDGE[3:], "-p", "prompts.jsonl"],
         "has no config.json", setup=lambda ws: (ws / "empty").mkdir()),
    Case("model-compare-missing", [*EXPORT, "-m", "./gone", "-m", "tiny", "-p", "prompts.jsonl"],
         "does not exist"),
    Case("model-release-empty", ["release", "--model", "empty", *RELEASE[3:]], "empty",
         setup=lambda ws: (ws / "empty").mkdir()),
    Case("model-release-not-benched", ["release", "--model", "tiny2", *RELEASE[3:]],
         "no results for model"),
    # -- results stores -----------------------------------------------------------------------
    Case("store-leaderboard-missing", ["leaderboard", "--db", "nope.sqlite"], "nope.sqlite"),
    Case("store-leaderboard-garbage", ["leaderboard", "--db", "prompts.jsonl"], "prompts.jsonl"),
    Case("store-leaderboard-folder", ["leaderboard", "--db", "ds"], "is a directory"),
    Case("store-leaderboard-format", ["leaderboard", "--db", "store.sqlite", "--format", "pdf"],
         "pdf"),
    Case("store-release-missing", [*RELEASE[:-1], "nope.sqlite"], "does not exist"),
    Case("store-release-garbage", [*RELEASE[:-1], "prompts.jsonl"], "prompts.jsonl"),
    Case("store-bench-folder", [*BENCH_TINY, "--db", "ds"], "is a directory"),
    # -- run folders --------------------------------------------------------------------------
    Case("run-status-missing", ["status", "nowhere"], "is not a run folder"),
    Case("run-status-a-file", ["status", "prompts.jsonl"], "is not a run folder"),
    Case("run-status-list-manifest", ["status", "runs/r"], "", code=0,
         setup=manifest("train", ["not", "a", "manifest"])),
    Case("run-status-wrong-types", ["status", "runs/r", "--json"], "", code=0,
         setup=manifest("bench", {"stage": "bench", "counts": "lots", "seconds": "ten"})),
    Case("run-status-binary-manifest", ["status", "runs/r"], "", code=0,
         setup=write("runs/r/generate/manifest.json", b"\xff\xfe\x00\x01")),
    Case("run-unknown-stage", ["run", "jav", "--stages", "generate,tran"], "unknown stage 'tran'"),
    Case("run-unknown-force", ["run", "jav", "--force", "everything"], "unknown stage"),
    Case("run-stage-needs-train", ["run", "jav", "--stages", "bench", "--run-dir", "runs/r",
                                   "--no-progress"], "needs an up-to-date 'train' stage"),
    Case("run-dir-a-file", ["run", "jav", "--run-dir", "prompts.jsonl"], "is a file"),
    Case("run-dir-two-languages", ["run", "--languages", "jav,sun", "--run-dir", "runs/x"],
         "--run-dir names one run"),
    Case("run-no-language", ["run", "--no-progress"], "name a language"),
    Case("run-negative-price", ["run", "jav", "--gpu-price-per-hour", "x"],
         "'--gpu-price-per-hour'"),
    # -- teacher, caches and tokens -----------------------------------------------------------
    Case("teacher-unreachable", ["teacher", *NO_TEACHER], "failed 1 times"),
    Case("teacher-not-a-url", ["teacher", "--set", "teacher.base_url=not-a-url", "--set",
                               "teacher.max_retries=0"], "teacher"),
    Case("teacher-unknown-plugin", ["teacher", "--set", "teacher.plugin=nope"], "nope"),
    Case("teacher-generate-unknown-plugin", [*GEN, "--teacher", "nope"], "nope"),
    Case("teacher-401-echoes-key", ["teacher", "--set", "teacher.api_key_env=MY_TEACHER_VAR",
                                    "--set", "teacher.max_retries=0"], "HTTP 401",
         env={"MY_TEACHER_VAR": SECRET}),
    Case("teacher-generate-401", [*GEN, "--set", "teacher.api_key_env=MY_TEACHER_VAR"],
         "HTTP 401", env={"MY_TEACHER_VAR": SECRET}),
    Case("teacher-generate-unreachable", [*GEN, *NO_TEACHER], "failed 1 times"),
    Case("plugin-unknown-backend", [*BENCH_TINY, "--backend", "nope"], "nope"),
    Case("plugin-unknown-student", [*TRAIN, "--plugin", "nope"], "unknown student 'nope'"),
    Case("teacher-unknown-generator", [*GEN[:-1], "topic,nope"], "nope"),
    Case("cache-dir-a-file", [*GEN, *NO_TEACHER, "--set", "teacher.cache_dir=prompts.jsonl"],
         "prompts.jsonl"),
    Case("cache-judge-cache-folder", [*JUDGE, "-p", "prompts.jsonl", "--cache-file", "ds"],
         "is a directory"),
    Case("cache-work-dir-a-file", [*GEN[:3], "prompts.jsonl"], "is a file"),
    Case("token-hub-no-token", [*RELEASE, "--target", "hub", "--repo-id", "me/model"], "token",
         env={"HF_TOKEN": "", "HF_HOME": "hf-home"}),
    Case("repo-id-no-owner", [*RELEASE, "--repo-id", "just-a-name"], "just-a-name"),
    Case("repo-id-too-deep", [*RELEASE, "--repo-id", "a/b/c"], "a/b/c"),
    Case("repo-id-bad-chars", [*RELEASE, "--repo-id", "me/bad name!"], "bad name"),
    Case("release-unknown-target", [*RELEASE, "--target", "ftp"], "ftp"),
    Case("release-dataset-missing", [*RELEASE, "--dataset", "nowhere"], "nowhere"),
    # -- paths: refusing to overwrite, read-only folders --------------------------------------
    Case("path-tiny-model-over-model", ["tiny-model", "ds"], "did not make",
         setup=write("ds/model.safetensors", b"someone else's weights")),
    Case("path-tiny-model-file", ["tiny-model", "prompts.jsonl"], "is a file"),
    Case("path-tiny-model-hidden", ["tiny-model", "t2", "--hidden", "33"], "multiple of 32"),
    Case("path-tiny-model-language", ["tiny-model", "t2", "--languages", "xx_Yyyy"],
         "no bundled SIB-200 sentences"),
    Case("path-train-out-not-empty", [*TRAIN[:5], "--out", "tiny2"], "not empty"),
    Case("path-release-over-foreign", [*RELEASE, "--out", "ds"], "not a Kakugo release"),
    Case("path-release-under-read-only", [*RELEASE, "--out", "locked/release"], "locked",
         setup=read_only("locked")),
    Case("path-release-over-read-only", [*RELEASE, "--out", "locked/release"], "locked",
         setup=chain(write("locked/release/README.md", "---\ntags: [kakugo]\n---\nold\n"),
                     read_only("locked"), read_only("locked/release"))),
    Case("path-leaderboard-output-folder", ["leaderboard", "--db", "store.sqlite", "-o", "ds"],
         "is a directory"),
    Case("path-leaderboard-read-only", ["leaderboard", "--db", "store.sqlite", "-o",
                                        "locked/board.md"], "locked", setup=read_only("locked")),
    Case("path-compare-out-file", [*EXPORT[:-3], "--out", "prompts.jsonl", "-m", "tiny", "-m",
                                   "tiny2", "-p", "prompts.jsonl"], "inputs"),
    Case("path-compare-out-file-not-input", [*EXPORT[:-3], "--out", "store.sqlite", "-m",
                                             "tiny", "-m", "tiny2", "-p", "prompts.jsonl"],
         "is a file"),
    Case("path-compare-out-foreign", [*EXPORT[:-3], "--out", "gen", "-m", "tiny", "-m", "tiny2",
                                      "-p", "prompts.jsonl"], "did not make",
         setup=write("gen/notes.txt", "mine")),
    Case("path-dataset-out-file", ["dataset", "jav", "--work-dir", "gen", "--out",
                                   "prompts.jsonl"], "is a file"),
    # -- the one output rule (issue 23) -------------------------------------------------------
    Case("out-site-over-foreign", ["leaderboard", "--db", "store.sqlite", "--format", "site",
                                   "-o", "tiny"], "did not make"),
    Case("out-site-dot", ["leaderboard", "--db", "store.sqlite", "--format", "site", "-o", "."],
         "holds store.sqlite"),
    Case("out-site-dotdot", ["leaderboard", "--db", "store.sqlite", "--format", "site",
                             "--out", ".."], "holds store.sqlite"),
    Case("out-csv-over-its-store", ["leaderboard", "--db", "store.sqlite", "--format", "csv",
                                    "-o", "store.sqlite"], "inputs"),
    Case("out-site-inside-model", ["leaderboard", "--db", "store.sqlite", "--format", "site",
                                   "--out", "tiny/site"], "did not make",
         setup=write("tiny/site/x.txt", "x")),
    Case("out-dataset-over-foreign", ["dataset", "jav", "--work-dir", "gen", "-o", "tiny"],
         "did not make"),
    Case("out-dataset-inside-work", ["dataset", "jav", "--work-dir", "gen", "-o", "gen/d"],
         "inside gen"),
    Case("out-train-into-dataset", [*TRAIN[:5], "-o", "ds/model"], "inside ds"),
    Case("out-release-over-model", [*RELEASE, "-o", "tiny"], "inputs"),
    Case("out-release-hub-options-folder", [*RELEASE, "--target", "folder", "--create-pr",
                                            "--tag", "v1"], "hub target"),
    Case("out-tiny-model-twice", ["tiny-model", "t2", "-o", "t3"], "once"),
    Case("out-judge-predictions-over-prompts", [*JUDGE, "-p", "prompts.jsonl", "--predictions",
                                                "prompts.jsonl"], "inputs"),
    Case("out-store-merge-into-source", ["store", "merge", "-o", "store.sqlite",
                                         "store.sqlite"], "inputs"),
    Case("vocab-judge-two-languages", [*JUDGE, "-p", "prompts.jsonl", "-l", "sun"],
         "one language"),
    Case("vocab-leaderboard-overwrite-without-site", ["leaderboard", "--db", "store.sqlite",
                                                      "--overwrite"], "--format site"),
    # issue 25: run folders
    Case("run-folder-in-use", ["run", "jav", "--stages", "bench", "--run-dir", "runs/r",
                               "--no-progress"], "in use by another `kakugo run` (pid 4242 on ",
         setup=lambda ws: _hold_run_lock(ws / "runs" / "r", 4242)),
    # issue 25: task files
    Case("task-code-bench", [*BENCH_ANY, "--include-path", "tasks", "-b", "evil_task"],
         "--trust-task-code", setup=EVIL_TASK),
    Case("task-code-export", ["bench", "--include-path", "tasks", "-b", "evil_task", "-l",
                              "jav_Latn", "--export-lm-eval", "out"], "--trust-task-code",
         setup=EVIL_TASK),
    Case("task-code-yaml-file", ["bench", "-b", "tasks/evil_task.yaml", "-l", "jav_Latn",
                                 "--export-lm-eval", "out"], "evil_task.yaml",
         setup=EVIL_TASK),
    Case("task-name-escape", [*BENCH_ANY, "-b", "tasks/escape.yaml", "--predictions-dir", "p"],
         "task: '../../../LMESC'",
         setup=write("tasks/escape.yaml", task_yaml("../../../LMESC"))),
    Case("task-template-python", ["bench", "-b", "tasks/jinja.yaml", "-l", "jav_Latn",
                                  "--export-lm-eval", "out"], "reaches into Python",
         setup=write("tasks/jinja.yaml", task_yaml("jinja_task").replace(
             '"{{text}}"', "\"{{ lipsum.__globals__['os'].getcwd() }}{{text}}\""))),
    # issue 25: runtime
    Case("rt-cfg-dev-zero", ["config", "--config", "/dev/zero"], "not a regular file"),
    Case("rt-cfg-fifo", ["config", "--config", "pipe.toml"], "is a FIFO, not a regular file",
         setup=lambda ws: os.mkfifo(ws / "pipe.toml")),
    Case("rt-cfg-over-1mib", ["config", "--config", "big.toml"], "over the 1048576-byte limit",
         setup=write("big.toml", "# padding\n" * 110_000)),
    Case("rt-bench-cfg-dev-zero", [*BENCH_TINY, "--config", "/dev/zero"], "not a regular file"),
    Case("rt-bench-cfg-fifo", [*BENCH_TINY, "--config", "pipe.toml"], "is a FIFO",
         setup=lambda ws: os.mkfifo(ws / "pipe.toml")),
    Case("rt-bench-long-model-name", [*BENCH, "-m", "d" * 130 + "/" + "m" * 130,
                                      "--predictions-dir", "preds"],
         "over this file system's limit", setup=chain(
             lambda ws: (ws / ("d" * 130)).mkdir(),
             lambda ws: (ws / ("d" * 130) / ("m" * 130)).symlink_to(
                 ws / "tiny", target_is_directory=True))),
    Case("rt-bench-data-fifo", [*BENCH_TINY, "--data-dir", "bad"], "no sib200 test file",
         setup=chain(sib_data("x"), lambda ws: (ws / "bad/sib200/jav_Latn/test.tsv").unlink(),
                     lambda ws: os.mkfifo(ws / "bad/sib200/jav_Latn/test.tsv"))),
    # issue 25: more hostile input
    Case("hostile-cfg-key-as-env-name", ["config", "--set", f"teacher.api_key_env={SECRET}"],
         "must name the environment variable that holds the key"),
    Case("hostile-generate-key-as-env-name", [*GEN, "--set", f"teacher.api_key_env={SECRET}"],
         "not be the key"),
    Case("hostile-run-key-as-env-name", ["run", "jav", "--no-progress", "--set",
                                         f"teacher.api_key_env={SECRET}"], "not be the key"),
    Case("hostile-teacher-url-userinfo", ["teacher", "--set",
                                          f"teacher.base_url=http://me:{SECRET}@127.0.0.1:9/v1",
                                          "--set", "teacher.max_retries=0", "--set",
                                          "teacher.timeout_s=2"],
         "at http://***@127.0.0.1:9/v1 failed 1 times"),
    Case("hostile-judge-limit-negative", [*JUDGE, "-p", "prompts.jsonl", "--limit", "-1"],
         "Invalid value for '--limit'"),
    Case("hostile-export-limit-word", [*EXPORT, "-m", "tiny", "-m", "tiny2", "-p",
                                       "prompts.jsonl", "--limit", "abc"],
         "Invalid value for '--limit'"),
    Case("hostile-limit-seed-word", [*BENCH_TINY, "--limit-seed", "x"],
         "Invalid value for '--limit-seed'"),
    Case("hostile-bench-n-shot-negative", [*BENCH_TINY[:-7], "--n-shot", "-1", "--db",
                                           "new.sqlite", "-m", "tiny"],
         "Invalid value for '--n-shot'"),
    Case("hostile-cfg-trust-string", ["config", "--set", 'bench.trust_task_code="yes"'],
         "'bench.trust_task_code' must be bool"),
    Case("hostile-cfg-limit-float", ["config", "--set", "bench.limit=1.5"],
         "'bench.limit' must be int, got float"),
    Case("hostile-cfg-set-nested-under-int", ["config", "--set", "bench.limit.x=1"],
         "'bench.limit' must be int, got dict"),
    Case("hostile-cfg-gguf-unknown", ["config", "--set", 'release.gguf=["Q4_0"]'],
         "'release.gguf' must be one of F32, F16, Q8_0"),
    Case("hostile-release-gguf-unknown", [*RELEASE, "--set", 'release.gguf=["Q2_K"]'],
         "'release.gguf' must be one of"),
    Case("hostile-cfg-bom-only", ["config", "--config", "bom.toml"], "bom.toml: not valid TOML",
         setup=write("bom.toml", b"\xef\xbb\xbf")),
    Case("hostile-cfg-nul-byte", ["config", "--config", "nul.toml"], "nul.toml: not valid TOML",
         setup=write("nul.toml", b"[bench]\nlimit = 1\x00\n")),
    Case("hostile-task-yaml-slash", ["bench", "-b", "tasks/slash.yaml", "-l", "jav_Latn",
                                     "--export-lm-eval", "out"], "task: 'a/b' must be",
         setup=write("tasks/slash.yaml", task_yaml("a/b"))),
    Case("hostile-task-toml-escape", [*BENCH_ANY, "-b", "tasks/esc.toml"],
         "name: '../x' must be", setup=write("tasks/esc.toml", (
             'name = "../x"\nlanguages = ["jav_Latn"]\ntemplate = "{text}"\n'
             'gold = "category"\n'))),
    Case("hostile-task-yaml-missing", [*BENCH_ANY, "-b", "tasks/nope.yaml"],
         "tasks/nope.yaml: no such lm-eval task file"),
    Case("hostile-include-path-file", [*BENCH_ANY, "--include-path", "prompts.jsonl", "-b",
                                       "sib200"], "'prompts.jsonl' is a file"),
    Case("hostile-generate-two-languages", ["generate", "jav,sun", "--work-dir", "gen"],
         "unknown language 'jav,sun'"),
    Case("hostile-store-merge-missing-source", ["store", "merge", "-o", "m.sqlite",
                                                "nope.sqlite"], "nope.sqlite: no results"),
    Case("hostile-store-merge-garbage-source", ["store", "merge", "-o", "m.sqlite",
                                                "prompts.jsonl"], "not a SQLite database"),
    Case("hostile-leaderboard-site-over-store", ["leaderboard", "--db", "store.sqlite",
                                                 "--format", "site", "-o", "store.sqlite"],
         "store.sqlite is one of this command's inputs"),
    Case("hostile-judge-cache-under-file", [*JUDGE, "-p", "prompts.jsonl", "--cache-file",
                                            "prompts.jsonl/x.json"], "prompts.jsonl"),
    Case("hostile-db-under-file", [*BENCH_TINY, "--db", "prompts.jsonl/x.sqlite"],
         "prompts.jsonl/x.sqlite: cannot create its folder"),
]

#: lock files the census holds open (as another run would) for the rest of the session
_HELD_LOCKS: list[object] = []


def _hold_run_lock(run_dir: Path, pid: int) -> None:
    """Hold ``run_dir``'s run lock through a file opened here, as another process would."""
    import fcntl

    from kakugo_core.pipeline import LOCK_FILE

    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    handle.write(json.dumps({"pid": pid, "host": "node-1", "since": "2026-01-01T00:00:00"}))
    handle.flush()
    _HELD_LOCKS.append(handle)


# -- the workspace ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path,
          dataset_builder) -> Path:
    """The prepared workspace each case gets a copy of."""
    from kakugo_core.store import ResultsStore

    ws = tmp_path_factory.mktemp("census-world")
    shutil.copytree(tiny_model, ws / "tiny")
    shutil.copytree(tiny_model, ws / "tiny2")
    dataset_builder.build_dataset(SIB200, ws / "ds", 6, 2)
    (ws / "prompts.jsonl").write_text("".join(json.dumps({"prompt": f"Question {i}?"}) + "\n"
                                              for i in range(3)), "utf-8")
    (ws / "gen").mkdir()
    code, err = _invoke([*BENCH, "-m", "tiny", "--db", "store.sqlite"], ws)
    assert code == 0, err
    with ResultsStore(ws / "store.sqlite") as store:
        assert store.models() == ["tiny"]
    (ws / "new.sqlite").unlink(missing_ok=True)
    return ws


def _invoke(argv: list[str], cwd: Path) -> tuple[object, str]:
    """Run ``kakugo ARGV`` in-process in ``cwd`` as the console script does; return the exit
    code ("traceback" for an uncaught exception) and stderr."""
    from kakugo_core import cli

    err, out = io.StringIO(), io.StringIO()
    logger = logging.getLogger("kakugo")
    before = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            handlers = [h for h in logger.handlers if isinstance(h, logging.StreamHandler)]
            streams = [h.setStream(err) for h in handlers]
            try:
                cli.main(argv)
                code: object = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # noqa: BLE001 - the census reports it as a traceback
                traceback.print_exc(file=err)
                code = "traceback"
            finally:
                for handler, stream in zip(handlers, streams, strict=True):
                    handler.setStream(stream)
    finally:
        os.chdir(before)
    return code, err.getvalue()


def _checksums(root: Path) -> dict[str, str]:
    sums = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            sums[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return sums


@pytest.fixture
def teacher_401():
    """An OpenAI-compatible server on 127.0.0.1 that refuses every request with 401 and
    echoes the Authorization header it got back in the error body, as some proxies do."""
    from kakugo_core.teacher_server import Fault, OpenAICompatServer

    def responder(body: dict) -> Fault:
        return Fault(status=401, message=f"invalid key: Authorization: Bearer {SECRET}; "
                                         f"raw={SECRET}")

    with OpenAICompatServer(responder) as server:
        yield server.base_url


def test_the_census_is_large_and_ids_are_unique() -> None:
    assert len(CASES) >= 200
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   teacher_401: str) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(world, ws)
    monkeypatch.setenv("KAKUGO_DB", str(ws / "default.sqlite"))
    monkeypatch.setenv("XDG_DATA_HOME", str(ws / "xdg-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(ws / "xdg-cache"))
    monkeypatch.setenv("KAKUGO_CENSUS_TEACHER", teacher_401)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    argv = list(case.argv)
    if "MY_TEACHER_VAR" in case.env:  # the 401 cases talk to the echoing server
        argv += ["--set", f"teacher.base_url={teacher_401}"]
    try:
        if case.setup is not None:
            case.setup(ws)
        before = _checksums(ws)
        code, err = _invoke(argv, ws)
        after = _checksums(ws)
    finally:
        _unfreeze(ws)
    assert "Traceback" not in err, err
    assert code == case.code, err
    lines = [line for line in err.splitlines() if line.strip()]
    if case.code == 0:
        assert lines == [], err
    else:
        assert len(lines) == 1, err
        assert lines[0].startswith("kakugo: error: "), err
        assert case.expect in lines[0], err
    changed = [p for p, digest in before.items() if after.get(p) != digest]
    assert changed == [], f"changed or removed: {changed}"
    assert SECRET not in err
    for path in ws.rglob("*"):
        if path.is_file() and path.stat().st_size < 10_000_000:
            assert SECRET.encode() not in path.read_bytes(), f"the key leaked into {path}"
