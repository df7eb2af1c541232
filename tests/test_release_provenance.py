"""A card says what produced every number: the teacher and judge that were used, a local base
linked as local and said to have random weights, model-index on the Hub's scales, every stored
metric, every covering benchmark shown or explained, and only the training options that applied.
Built as the offline demo builds it (corpus teacher, tiny random base), checked with
huggingface_hub's own card and model-index parsing."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest

from kakugo_core.config import load_config
from kakugo_core.release import prepare_release
from kakugo_core.store import ResultsStore

REPO_ID = "local/kakugo-jav"
JUDGE = "openai:kakugo-corpus-teacher"


@pytest.fixture
def demo_like(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A run folder laid out as `kakugo run --demo` leaves it, with a relative base path."""
    from plugins.students._sft import TrainOptions

    monkeypatch.chdir(tmp_path)
    base = Path("runs/demo-jav_Latn/demo-inputs/base-model")
    shutil.copytree(tiny_model, base)  # keeps .kakugo-tiny-model: random weights
    data = Path("runs/demo-jav_Latn/dataset/data")
    from datasets import Dataset, DatasetDict

    DatasetDict({"train": Dataset.from_dict({"messages": [[{"role": "user", "content": "x"}]]})}
                ).save_to_disk(str(data))
    (data / "README.md").write_text("---\nteacher_model: kakugo-corpus-teacher\n---\n# data\n")
    student = Path("runs/demo-jav_Latn/train/model")
    shutil.copytree(tiny_model, student)
    (student / ".kakugo-tiny-model").unlink()
    options = asdict(TrainOptions(base_model=str(base), method="full"))
    (student / "training_summary.json").write_text(json.dumps({
        "base_model": str(base), "dataset": str(data), "options": options,
        "train_loss": 2.5, "optimizer_steps": 80}))
    store = ResultsStore(tmp_path / "results.sqlite")
    for model, acc, f1, chrf in ((str(base), 0.1225, 0.031, 6.946683532565199),
                                 (str(student), 0.2451, 0.1875, 21.123456)):
        store.put(model, "", "sib200", "jav_Latn", 0, "p1",
                  [("acc", acc, 0.023, 204), ("macro_f1", f1, None, 204)])
        store.put(model, "", "flores", "jav_Latn", 3, "p2",
                  [("chrf_xx_en", chrf, 0.5, 40), ("chrf_en_xx", chrf / 2, 0.4, 40)])
    store.put(str(student), "", "judge", "jav_Latn", 0, "p3",
              [("win_rate", 0.6, 0.07, 40), ("tie_rate", 0.1, 0.04, 40),
               ("loss_rate", 0.3, 0.07, 40), ("unparsed", 0.0, None, 80)],
              versions={"judge": JUDGE, "opponent": str(base)})
    config = load_config(overrides=["bench.benchmarks=['sib200', 'flores']"])
    out = prepare_release(student, store=store, base_model=str(base), language="Javanese",
                          dataset_dir=data, out_dir=tmp_path / "out", repo_id=REPO_ID,
                          config=config)
    return {"out": out, "base": str(base), "text": (out / "README.md").read_text()}


def test_card_names_the_corpus_teacher_and_the_stand_in_judge(demo_like: dict) -> None:
    text = demo_like["text"]
    assert "large teacher model" not in text
    assert "corpus teacher (`kakugo-corpus-teacher`: a small program" in text
    assert "not a language model" in text
    judge = re.search(r'"teacher as judge" scores are .*?judged by (.*?)\.\n\n', text, re.S)
    assert judge is not None and "chrF++" in judge.group(1)
    assert "reference answer" in judge.group(1)


def test_local_random_base_is_said_so_and_never_linked_by_path(demo_like: dict) -> None:
    from huggingface_hub import ModelCard

    text = demo_like["text"]
    assert demo_like["base"] not in text
    assert "](runs/" not in text and "(runs/" not in text
    assert "a local model (`base-model`, not on the Hugging Face Hub)" in text
    assert "**random weights**" in text
    assert ModelCard.load(demo_like["out"] / "README.md").data.base_model is None


def test_model_index_uses_the_hubs_scales_rounded(demo_like: dict) -> None:
    from huggingface_hub import ModelCard
    from huggingface_hub.repocard_data import model_index_to_eval_results

    card = ModelCard.load(demo_like["out"] / "README.md")
    name, results = model_index_to_eval_results(card.data.to_dict()["model-index"])
    assert name == REPO_ID
    values = {(r.dataset_type, r.metric_name.split(" ")[0]): r.metric_value for r in results}
    assert values[("Davlan/sib200", "acc")] == 24.51  # accuracy as a percentage
    assert values[("Davlan/sib200", "macro_f1")] == 18.75
    assert values[("openlanguagedata/flores_plus", "chrf_xx_en")] == 21.12  # chrF as 0-100
    assert values[("judge", "win_rate")] == 60.0
    assert all(0 <= v <= 100 and round(v, 2) == v for v in values.values())
    assert not any(metric == "unparsed" for _, metric in values)


def test_every_stored_metric_and_every_covering_benchmark_is_accounted_for(
    demo_like: dict,
) -> None:
    text = demo_like["text"]
    assert "| jav_Latn | macro_f1 | 204 | 0 | 3.1 | 18.8 |" in text
    # Belebele covers Javanese: absent only with a reason; Global-MMLU does not cover it
    assert re.search(r"Covering Javanese but not evaluated: Belebele \([^)]*demo[^)]*\)", text)
    assert "Not covered for Javanese: Global-MMLU" in text
    # the judge compares the student with the base: no always-empty base and Δ columns
    judge = text.split("#### Teacher as judge", 1)[1].split("\n\n", 2)[1]
    assert "Base:" not in judge and "Δ" not in judge and "| win_rate | 40 | 0 | 60.0" in judge


def test_training_table_shows_only_the_options_that_applied(demo_like: dict) -> None:
    text = demo_like["text"]
    table = text.split("| Setting | Value |", 1)[1].split("\n\n", 1)[0]
    assert "| options.method | full |" in table
    assert "| options.learning_rate |" in table
    for absent in ("lora", "alignment", "vocab_", "deepspeed", "accelerate_config",
                   "num_processes", "eval_steps"):
        assert absent not in table, absent
    assert "runs/" not in table  # local paths show their last part only


def _comparison() -> object:
    from kakugo_core.toolkit.comparison import Cell, Comparison, ComparisonRow

    def row(benchmark: str, metric: str, base: float, student: float) -> ComparisonRow:
        r = ComparisonRow(benchmark, "jav_Latn", metric)
        r.cells = {"student": Cell(student, 0.02, 204, 0, "p", "", ""),
                   LONG_BASE: Cell(base, 0.02, 204, 0, "p", "", "")}
        return r

    return Comparison("student", LONG_BASE, [], [
        row("sib200", "acc", 0.12, 0.25), row("sib200", "macro_f1", 0.03, 0.19),
        row("flores", "chrf_xx_en", 6.9, 21.1), row("flores", "chrf_en_xx", 3.5, 10.6)])


LONG_BASE = "some-organisation/a-rather-long-base-model-name-Instruct-2607"


def test_chart_y_axes_are_true_per_metric_and_the_legend_is_whole(tmp_path: Path) -> None:
    from kakugo_core.toolkit.plots import base_vs_student_figure, plot_base_vs_student

    comparison = _comparison()
    labels = {"base_label": f"base: {LONG_BASE}", "student_label": "student: kakugo-jav"}
    fig = base_vs_student_figure(comparison, **labels)
    ylabels = {ax.get_title(): ax.get_ylabel() for ax in fig.axes}
    assert "×100" in ylabels["SIB-200"] and "accuracy" in ylabels["SIB-200"]
    assert "chrF++" in ylabels["FLORES-200"] and "×100" not in ylabels["FLORES-200"]
    texts = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert texts == [labels["base_label"], labels["student_label"]]  # whole, not cut
    fig.canvas.draw()
    box = fig.legends[0].get_window_extent()
    assert box.x0 >= 0 and box.x1 <= fig.bbox.x1 and box.y0 >= 0
    assert plot_base_vs_student(comparison, tmp_path / "plot.png", **labels).is_file()


def test_loss_curve_draws_validation_as_markers_not_a_trend(tmp_path: Path) -> None:
    from plugins.students._train_report import loss_figure, plot_loss_curve

    stages = [{"stage": "sft", "train": [[1, 3.0], [2, 2.6], [3, 2.4], [4, 2.3]],
               "validation": [[0, 3.2], [4, 2.5]]}]
    fig = loss_figure(stages)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert lines["sft validation"].get_linestyle() == "None"
    assert lines["sft validation"].get_marker() == "o"
    assert lines["sft train"].get_linestyle() == "-"
    plot_loss_curve(stages, tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes().startswith(b"\x89PNG")


def test_card_accuracy_at_zero_shows_a_wilson_interval_not_plus_minus_zero(
    tmp_path: Path,
) -> None:
    """0/40 has a stored (binomial) standard error of 0: the card shows [0.0–8.8] and the
    change gets a non-zero standard error; the chart draws a non-zero error bar."""
    from kakugo_core.toolkit.comparison import Cell, Comparison, ComparisonRow, render_markdown
    from kakugo_core.toolkit.plots import base_vs_student_figure

    row = ComparisonRow("sib200", "jav_Latn", "acc")
    row.cells = {"student": Cell(0.1, 0.0480, 40, 0, "p", "", ""),
                 "base": Cell(0.0, 0.0, 40, 0, "p", "", "")}
    text = render_markdown(Comparison("student", "base", [], [row]))
    assert "| 0.0 [0.0–8.8] | 10.0 [4.0–23.1] |" in text
    assert "± 0.0" not in text
    delta = row.delta("student", "base")
    assert delta is not None and delta[1] is not None and delta[1] > 0.04
    fig = base_vs_student_figure(Comparison("student", "base", [], [row]),
                                 base_label="base", student_label="student")
    bars = [c for c in fig.axes[0].containers if hasattr(c, "errorbar") and c.errorbar]
    base_bar = bars[0].errorbar.lines[2][0].get_segments()[0]
    assert base_bar[1][1] - base_bar[0][1] > 2.0  # ±2.2 points (×100), not a zero-height bar
