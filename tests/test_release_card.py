"""Release folders, model cards, tables, plot and eval results, built offline from a real results
store and a real tiny model (no Hub involved)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from kakugo_core.errors import KakugoError
from kakugo_core.release import (
    check_repo_id,
    default_repo_id,
    find_store_model,
    prepare_dataset_release,
    prepare_release,
    release,
)
from kakugo_core.store import ResultsStore
from kakugo_core.toolkit.release_files import parameter_count, size_label, tree_digest

REPO_ID = "alice/kakugo-150k-jav"
BASE = "tiny/base-model"


@pytest.fixture
def student(tiny_model: Path, tmp_path: Path) -> Path:
    """A copy of the tiny model with a training summary, as `kakugo train` leaves it."""
    import shutil

    folder = tmp_path / "student"
    shutil.copytree(tiny_model, folder)
    (folder / "training_summary.json").write_text(json.dumps({
        "base_model": BASE, "dataset": "/home/someone/runs/jav/dataset", "epochs": 1,
        "options": {"method": "full", "learning_rate": 1e-5},
        "train": {"examples": 1234, "train_loss": 2.3456789,
                  "losses": [{"stage": "sft", "train": [[1, 3.0], [2, 2.5]]}],
                  "chat_template": "{% for message in messages %}..."},
    }))
    (folder / "loss_curve.png").write_bytes(b"\x89PNG\r\n\x1a\n fake")
    return folder


@pytest.fixture
def store(tmp_path: Path, student: Path) -> ResultsStore:
    db = ResultsStore(tmp_path / "results.sqlite")
    db.put(str(student), "r1", "sib200", "jav_Latn", 3, "p1", [("acc", 0.42, 0.03, 204)])
    db.put(BASE, "", "sib200", "jav_Latn", 3, "p1", [("acc", 0.30, 0.032, 204)])
    db.put("other/model", "", "sib200", "jav_Latn", 3, "p1", [("acc", 0.55, 0.035, 204)])
    db.put(str(student), "r1", "flores", "jav_Latn", 3, "p2",
           [("chrf_en_xx", 20.5, 0.8, 100), ("chrf_xx_en", 30.25, 1.0, 100)])
    db.put(BASE, "", "flores", "jav_Latn", 3, "p2",
           [("chrf_en_xx", 12.5, 0.6, 100), ("chrf_xx_en", 29.0, 1.0, 100)])
    # another language of another model: not the student's, so not in its card
    db.put("other/model", "", "sib200", "sun_Latn", 3, "p1", [("acc", 0.9, 0.02, 204)])
    return db


def _prepare(student: Path, store: ResultsStore, out: Path, **kw: object) -> Path:
    return prepare_release(student, store=store, base_model=BASE, language="Javanese",
                           out_dir=out, repo_id=REPO_ID, **kw)  # type: ignore[arg-type]


def test_card_metadata_and_eval_results_come_from_the_store(
    student: Path, store: ResultsStore, tmp_path: Path
) -> None:
    from huggingface_hub import ModelCard

    out = _prepare(student, store, tmp_path / "release")
    card = ModelCard.load(out / "README.md")
    data = card.data
    assert data.language == ["jv"]
    assert data.license == "apache-2.0"
    assert data.base_model == BASE
    assert data.pipeline_tag == "text-generation"
    assert "kakugo" in data.tags and "jav_Latn" in data.tags
    assert data.model_name == REPO_ID

    stored = {(r.benchmark, r.metric): r.value for r in store.rows(models=[str(student)])}
    carded = {}
    for result in data.eval_results:
        benchmark = {"Davlan/sib200": "sib200",
                     "openlanguagedata/flores_plus": "flores"}[result.dataset_type]
        assert result.dataset_config == "jav_Latn"
        metric = result.metric_name.split(" ")[0]
        carded[(benchmark, metric)] = result.metric_value
    # the Hub's leaderboards read accuracy as a percentage and chrF on its own 0-100 scale
    assert carded == {k: round(v * 100, 2) if k[0] == "sib200" else round(v, 2)
                      for k, v in stored.items()}

    # the newer .eval_results/*.yaml files hold the same numbers
    import yaml
    from huggingface_hub import parse_eval_result_entries

    entries = []
    for path in sorted((out / ".eval_results").glob("*.yaml")):
        entries += parse_eval_result_entries(yaml.safe_load(path.read_text()))
    by_task = {(e.dataset_id, e.task_id): e.value for e in entries}
    assert by_task == {
        ("Davlan/sib200", "jav_Latn"): 42.0,
        ("openlanguagedata/flores_plus", "jav_Latn/chrf_en_xx"): 20.5,
        ("openlanguagedata/flores_plus", "jav_Latn/chrf_xx_en"): 30.25,
    }


def test_card_tables_show_base_student_others_with_deltas_and_errors(
    student: Path, store: ResultsStore, tmp_path: Path
) -> None:
    out = _prepare(student, store, tmp_path / "release")
    text = (out / "README.md").read_text()
    # SIB-200 accuracies are shown ×100 with their 95 % Wilson intervals (textbook formula),
    # and the change ± the standard errors those intervals imply
    def wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        return centre - half, centre + half

    def shown(p: float, n: int) -> str:
        low, high = wilson(p, n)
        return f"{p * 100:.1f} [{low * 100:.1f}–{high * 100:.1f}]"

    se = math.sqrt(sum(((b - a) / (2 * 1.96)) ** 2
                       for a, b in (wilson(0.30, 204), wilson(0.42, 204)))) * 100
    row = (f"| jav_Latn | acc | 204 | 3 | {shown(0.30, 204)} | {shown(0.42, 204)} | "
           f"**+12.0 ± {se:.1f}** | {shown(0.55, 204)} |")
    assert row in text
    assert "| jav_Latn | acc | 204 | 3 | 30.0 [24.1–36.6] | 42.0 [35.4–48.9] |" in text
    # chrF is not a fraction: shown as stored; +1.2 is within 1.96 SE, so not bold
    assert "| jav_Latn | chrf_xx_en | 100 | 3 | 29.0 ± 1.0 | 30.2 ± 1.0 | +1.2 ± 1.4 | – |" in text
    assert "sun_Latn" not in text  # only the student's languages
    assert "![Base vs. student on every benchmark](results/base_vs_student.png)" in text
    assert str(student) not in text  # the local path never reaches the card
    # usage in both modes, training summary, limitations, both citations
    for needle in ("Think step by step", "Answer concisely", "from vllm import LLM",
                   "| train.examples | 1234 |", "| train.train_loss | 2.346 |",
                   "| options.learning_rate | 1e-05 |", "| dataset | dataset |",
                   "![Training and validation loss](loss_curve.png)",
                   "## Limitations", "2601.14051", "2403.10882"):
        assert needle in text
    assert "/home/someone" not in text and "train.losses" not in text
    assert "{% for message" not in text
    records = json.loads((out / "results/comparison.json").read_text())["results"]
    assert {(r["model"], r["benchmark"], r["metric"], r["value"]) for r in records
            if r["role"] == "student"} == {
        (REPO_ID, "sib200", "acc", 0.42), (REPO_ID, "flores", "chrf_en_xx", 20.5),
        (REPO_ID, "flores", "chrf_xx_en", 30.25)}


def test_release_folder_has_the_model_and_a_png_plot(
    student: Path, store: ResultsStore, tmp_path: Path
) -> None:
    out = _prepare(student, store, tmp_path / "release")
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "training_summary.json",
            "README.md", "results/base_vs_student.png", "results/comparison.md",
            "results/comparison.csv", ".eval_results/sib200.yaml",
            ".eval_results/flores.yaml"} <= names
    assert ".kakugo-tiny-model" not in names  # hidden files stay behind
    assert (out / "results/base_vs_student.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "model.safetensors").read_bytes() == (student / "model.safetensors").read_bytes()
    assert not (out / "model.safetensors").samefile(student / "model.safetensors")


def test_same_inputs_give_byte_identical_releases(
    student: Path, store: ResultsStore, tmp_path: Path
) -> None:
    first = tree_digest(_prepare(student, store, tmp_path / "a"))
    second = tree_digest(_prepare(student, store, tmp_path / "b"))
    assert first == second


def test_the_latest_evaluation_wins(student: Path, store: ResultsStore, tmp_path: Path) -> None:
    import time

    time.sleep(1.1)  # `created` has one-second resolution
    store.put(str(student), "r2", "sib200", "jav_Latn", 3, "p9", [("acc", 0.61, 0.03, 204)])
    text = (_prepare(student, store, tmp_path / "release") / "README.md").read_text()
    assert "61.0 [54.2–67.4]" in text and "42.0 [" not in text


def test_the_student_is_found_by_its_path_relative_or_absolute(
    student: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = ResultsStore(tmp_path / "rel.sqlite")
    monkeypatch.chdir(tmp_path)
    db.put("student", "", "sib200", "jav_Latn", 0, "p", [("acc", 0.5, 0.1, 10)])
    assert find_store_model(db, student.resolve()) == "student"
    with pytest.raises(KakugoError, match="no results for model 'nope'"):
        find_store_model(db, student, "nope")


def test_parameter_count_and_size_label(tiny_model: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert parameter_count(tiny_model) == model.num_parameters()
    assert size_label(3_000_000_000) == "3b"
    assert size_label(1_500_000_000) == "1.5b"
    assert size_label(150_000) == "150k"
    assert size_label(360_000_000) == "360m"
    label = size_label(parameter_count(tiny_model))
    assert default_repo_id(tiny_model, "jav", "alice") == f"alice/kakugo-{label}-jav"


@pytest.mark.parametrize("bad", ["noowner", "a/b/c", "alice/-x", "alice/x--y", "alice/x y",
                                 "alice/" + "x" * 97, "alice/x.."])
def test_invalid_repository_names_are_refused(bad: str) -> None:
    with pytest.raises(KakugoError, match="invalid repository name"):
        check_repo_id(bad)


def test_bad_inputs_are_one_line_errors_and_write_nothing(
    student: Path, store: ResultsStore, tmp_path: Path
) -> None:
    empty = tmp_path / "empty-model"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    out = tmp_path / "release"
    with pytest.raises(KakugoError, match="has no weights") as err:
        _prepare(empty, store, out)
    assert "\n" not in str(err.value)
    with pytest.raises(KakugoError, match="no results for model"):
        prepare_release(student, store=ResultsStore(tmp_path / "other.sqlite"), base_model=BASE,
                        language="jav", out_dir=out, repo_id=REPO_ID)
    with pytest.raises(KakugoError, match="unknown language"):
        prepare_release(student, store=store, base_model=BASE, language="Klingonese",
                        out_dir=out, repo_id=REPO_ID)
    (student / "training_summary.json").write_text("{not json")
    with pytest.raises(KakugoError, match="training_summary.json is not valid JSON"):
        _prepare(student, store, out)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".release")]


def test_a_failed_rebuild_keeps_the_previous_release(
    student: Path, store: ResultsStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _prepare(student, store, tmp_path / "release")
    before = tree_digest(out)
    import kakugo_core.toolkit.plots

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(kakugo_core.toolkit.plots, "plot_base_vs_student", broken)
    with pytest.raises(RuntimeError):
        _prepare(student, store, out)
    assert tree_digest(out) == before
    assert not [p for p in tmp_path.iterdir() if ".staging-" in p.name]


def _save_dataset(folder: Path, with_card: bool) -> Path:
    from datasets import Dataset, DatasetDict

    rows = {"messages": [[{"role": "user", "content": f"q{i}"},
                          {"role": "assistant", "content": f"a{i}"}] for i in range(6)],
            "kind": ["think", "concise"] * 3}
    dd = DatasetDict({"train": Dataset.from_dict(rows), "validation": Dataset.from_dict(
        {k: v[:2] for k, v in rows.items()})})
    dd.save_to_disk(str(folder))
    if with_card:
        (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# My own card\n")
    return folder


def test_dataset_release_reuses_its_card_or_writes_one(tmp_path: Path) -> None:
    from datasets import load_dataset
    from huggingface_hub import DatasetCard

    own = prepare_dataset_release(_save_dataset(tmp_path / "ds1", True), out_dir=tmp_path / "o1",
                                  repo_id="alice/data", language="jav")
    assert (own / "README.md").read_text() == "---\nlicense: apache-2.0\n---\n# My own card\n"

    made = prepare_dataset_release(_save_dataset(tmp_path / "ds2", False),
                                   out_dir=tmp_path / "o2", repo_id="alice/data",
                                   language="jav", model_repo_id=REPO_ID)
    card = DatasetCard.load(made / "README.md")
    assert card.data.language == ["jv"] and "kakugo" in card.data.tags
    assert "| train | 6 |" in card.text and "| validation | 2 |" in card.text
    loaded = load_dataset("parquet", data_files={
        "train": str(made / "data/train-00000-of-00001.parquet")})
    assert loaded["train"]["kind"] == ["think", "concise"] * 3


def test_folder_target_release_is_idempotent(
    student: Path, store: ResultsStore, tmp_path: Path
) -> None:
    ds = _save_dataset(tmp_path / "ds", False)
    out = tmp_path / "published"
    first = release(student, target="folder", repo_id=REPO_ID, store=store, base_model=BASE,
                    language="jav", dataset_dir=ds, out_dir=out)
    assert first.changed and first.dataset is not None and first.dataset.changed
    assert (out / "README.md").is_file()
    assert (tmp_path / "published-data" / "data/train-00000-of-00001.parquet").is_file()
    assert "alice/kakugo-150k-jav-data" in (out / "README.md").read_text()
    again = release(student, target="folder", repo_id=REPO_ID, store=store, base_model=BASE,
                    language="jav", dataset_dir=ds, out_dir=out)
    assert not again.changed and again.dataset is not None and not again.dataset.changed
    assert not (out / "model.safetensors").samefile(student / "model.safetensors")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no work left over


def test_a_base_without_results_is_warned_about_and_shown_empty(
    student: Path, store: ResultsStore, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging

    # `kakugo` CLI runs earlier in the session stop this logger from propagating to caplog
    monkeypatch.setattr(logging.getLogger("kakugo"), "propagate", True)
    out = prepare_release(student, store=store, base_model="never/benchmarked",
                          language="jav", out_dir=tmp_path / "release", repo_id=REPO_ID)
    assert "no results for the base model 'never/benchmarked'" in caplog.text
    text = (out / "README.md").read_text()
    assert "| jav_Latn | acc | 204 | 3 | – | 42.0 [35.4–48.9] | – |" in text
    assert not (out / "results/base_vs_student.png").exists()
    assert "base_vs_student.png" not in text


def test_usage_snippets_are_valid_python_with_the_configured_prompts(
    student: Path, store: ResultsStore, tmp_path: Path
) -> None:
    import ast
    import re

    from kakugo_core.config import load_config

    prompt = 'Mikir dhisik ing <think> … </think>, banjur "wangsulan".'
    cfg = load_config(overrides=[f"dataset.think_system_prompt={json.dumps(prompt)}"])
    out = _prepare(student, store, tmp_path / "release", config=cfg)
    text = (out / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 2
    namespace: dict[str, object] = {}
    first = ast.parse(blocks[0])
    assigns = [n for n in first.body if isinstance(n, ast.Assign)
               and getattr(n.targets[0], "id", "") == "THINK"]
    exec(compile(ast.Module(body=assigns, type_ignores=[]), "card", "exec"), namespace)
    assert namespace["THINK"] == prompt
    ast.parse(blocks[1])
