"""Comparable or separate: a 1-shot store merged into a 3-shot one with the real
`kakugo store merge` never yields a mean over mixed shots or a Δ across settings, in any
leaderboard format, on the static site, or in a model card's comparison tables."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kakugo_core.hub_results import rows_from_eval_results
from kakugo_core.leaderboard import build_leaderboard
from kakugo_core.store import ResultsStore
from kakugo_core.toolkit.cards import eval_results_files
from kakugo_core.toolkit.comparison import build_comparison, render_markdown

REPO = Path(__file__).resolve().parents[1]
LANGS = ("ace_Latn", "jav_Latn", "min_Latn", "sun_Latn", "swh_Latn", "yor_Latn")
#: 3-shot SIB-200 accuracy per model and language; the student re-ran two languages 1-shot
SIB3 = {"base": (0.50, 0.52, 0.48, 0.55, 0.60, 0.45),
        "student": (0.58, 0.61, 0.57, 0.62, 0.66, 0.52)}
SIB1 = {"jav_Latn": 0.30, "sun_Latn": 0.33}
#: FLORES en->xx chrF++: base and student at 3-shot, the student again at 1-shot (far higher:
#: subtracted from the base's 3-shot cell, it would look like a significant gain)
FLORES3 = {"base": 20.0, "student": 22.0}
FLORES1 = 45.0
SE, N = 0.03, 204


def kakugo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kakugo_core", *args], capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "400"})


@pytest.fixture(scope="module")
def merged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-shot store with a later 1-shot store merged into it by `kakugo store merge`."""
    folder = tmp_path_factory.mktemp("comparable")
    three, one = folder / "three.sqlite", folder / "one.sqlite"
    with ResultsStore(three) as store:
        for model, values in SIB3.items():
            for lang, value in zip(LANGS, values, strict=True):
                store.put(model, "", "sib200", lang, 3, f"s3-{lang}", [("acc", value, SE, N)])
            store.put(model, "", "flores", "jav_Latn", 3, "f3-jav",
                      [("chrf_en_xx", FLORES3[model], 0.5, 1012)])
    time.sleep(1.1)  # `created` has one-second resolution: the 1-shot results are newer
    with ResultsStore(one) as store:
        for lang, value in SIB1.items():
            store.put("student", "", "sib200", lang, 1, f"s1-{lang}", [("acc", value, SE, N)])
        store.put("student", "", "flores", "jav_Latn", 1, "f1-jav",
                  [("chrf_en_xx", FLORES1, 0.5, 1012)])
    proc = kakugo("store", "merge", str(three), str(one))
    assert proc.returncode == 0, proc.stderr
    return three


def board_of(db: Path, fmt: str, *extra: str) -> str:
    proc = kakugo("leaderboard", "--db", str(db), "--baseline", "base", "--format", fmt,
                  "--metric", "acc,chrf_en_xx", *extra)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def mean(values: tuple[float, ...] | list[float]) -> float:
    return sum(values) / len(values)


def test_json_keeps_settings_apart(merged: Path) -> None:
    doc = json.loads(board_of(merged, "json"))
    assert doc["columns"] == ["sib200@3-shot/acc", "sib200@1-shot/acc", "flores@3-shot/chrf_en_xx",
                              "flores@1-shot/chrf_en_xx"]
    student = doc["models"]["student"]
    assert student["results"]["sib200@3-shot"]["acc,none"] == pytest.approx(mean(SIB3["student"]))
    assert student["results"]["sib200@1-shot"]["acc,none"] == pytest.approx(mean(list(
        SIB1.values())))
    assert student["n-shot"]["sib200@3-shot"] == 3 and student["n-shot"]["sib200@1-shot"] == 1
    deltas = doc["deltas"]["student"]
    gain = mean([s - b for s, b in zip(SIB3["student"], SIB3["base"], strict=True)])
    assert deltas["sib200@3-shot"]["acc,none"] == pytest.approx(gain)
    assert deltas["sib200@3-shot"]["languages"] == list(LANGS)
    assert deltas["flores@3-shot"]["chrf_en_xx,none"] == pytest.approx(2.0)
    # the baseline has no 1-shot result: nothing to subtract from
    assert not [task for task in deltas if "1-shot" in task]
    notes = " ".join(doc["notes"])
    assert "3-shot, 1-shot" in notes and "No Δ for flores chrf_en_xx 1-shot" in notes


def test_csv_columns_carry_the_setting_and_no_cross_setting_delta(merged: Path) -> None:
    rows = {r["model"]: r for r in csv.DictReader(io.StringIO(board_of(merged, "csv")))}
    student = rows["student"]
    assert "sib200/acc" not in student
    assert float(student["sib200@3-shot/acc"]) == pytest.approx(mean(SIB3["student"]))
    assert student["sib200@3-shot/acc:languages"].split() == list(LANGS)
    assert student["sib200@1-shot/acc:languages"].split() == list(SIB1)
    assert student["flores@1-shot/chrf_en_xx:delta"] == ""
    assert student["sib200@1-shot/acc:delta"] == ""
    assert float(student["flores@3-shot/chrf_en_xx:delta"]) == pytest.approx(2.0)


def _markdown_table(text: str) -> tuple[list[str], dict[str, list[str]]]:
    lines = [line for line in text.splitlines() if line.startswith("|")]
    split = [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines]
    return split[0], {row[0]: row for row in split[2:]}


def test_markdown_separate_columns_footnotes_and_no_bold_across_settings(merged: Path) -> None:
    text = board_of(merged, "markdown")
    header, rows = _markdown_table(text)
    assert header[1].startswith("sib200 acc 3-shot (%)") and header[1].endswith("(6 langs)")
    assert any(h.startswith("sib200 acc 1-shot (%)") for h in header)
    assert not any(h.startswith("sib200 acc (%)") for h in header)
    assert not any(h.startswith("Δ") and "1-shot" in h for h in header)  # no Δ to show
    student = dict(zip(header, rows["student"], strict=True))
    for label, cell in student.items():
        if "**" in cell:
            assert label.startswith("Δ") and "3-shot" in label
    flores1 = next(v for k, v in student.items() if k.startswith("flores chrf_en_xx 1-shot"))
    assert flores1.startswith(f"{FLORES1:.1f}")
    notes = [line for line in text.splitlines() if line.startswith("- ")]
    assert any("sib200 was scored at 2 settings (3-shot, 1-shot)" in n for n in notes)
    assert any("No Δ for flores chrf_en_xx 1-shot: base has no results" in n for n in notes)


def test_table_names_the_settings_and_prints_the_footnotes(merged: Path) -> None:
    text = board_of(merged, "table")
    assert "sib200 acc 3-shot" in text and "sib200 acc 1-shot" in text
    assert "sib200 acc (%)" not in text
    assert "each is its own column" in text and "No Δ for flores chrf_en_xx 1-shot" in text


def test_html_and_site_mark_no_delta_across_settings(merged: Path, tmp_path: Path) -> None:
    page = board_of(merged, "html")
    heads = [(key, delta) for key, delta in re.findall(
        r'<th scope="col"[^>]*data-key="([^"]+)"( class="delta")?', page) if key.count("/") == 1]
    keys = [key for key, delta in heads if not delta]
    assert keys == ["sib200@3-shot/acc", "sib200@1-shot/acc", "flores@3-shot/chrf_en_xx",
                    "flores@1-shot/chrf_en_xx"]
    assert [key for key, delta in heads if delta] == ["sib200@3-shot/acc",
                                                       "flores@3-shot/chrf_en_xx"]
    assert "No Δ for flores chrf_en_xx 1-shot" in page

    site = tmp_path / "site"
    proc = kakugo("leaderboard", "--db", str(merged), "--baseline", "base", "--format", "site",
                  "--out", str(site), "--metric", "acc,chrf_en_xx")
    assert proc.returncode == 0, proc.stderr
    index = (site / "index.html").read_text("utf-8")
    assert "sib200 acc 3-shot (%)" in index and "flores chrf_en_xx 1-shot" in index
    assert "No Δ for flores chrf_en_xx 1-shot" in index
    student_row = next(r for r in index.split("<tr") if 'data-value="student"' in r)
    cells = re.findall(r"<td([^>]*)>([^<]*)</td>", student_row)
    # overview: value, Δ for each of the four columns; the two 1-shot Δ are empty, not bold
    assert [text for _, text in cells][3] == "–" and [text for _, text in cells][7] == "–"
    assert "significant" not in cells[3][0] and "significant" not in cells[7][0]
    columns = json.loads((site / "data/leaderboard.json").read_text("utf-8"))["columns"]
    assert [key for key in columns if key.count("/") == 1] == keys
    model_page = (site / "models/student.html").read_text("utf-8")
    assert model_page.count(">jav_Latn<") == 4  # sib200 and flores, each at both settings


def test_a_delta_needs_the_same_prompt_hash_and_engine(tmp_path: Path) -> None:
    """Same shots but another prompt or --limit sample (prompt hash) or scoring engine: that
    language is left out of the Δ, and a footnote says why; other engines are columns."""
    with ResultsStore(tmp_path / "r.sqlite") as store:
        for lang, base, student in (("jav_Latn", 0.5, 0.9), ("sun_Latn", 0.5, 0.6)):
            store.put("base", "", "sib200", lang, 3, f"full-{lang}", [("acc", base, SE, N)])
            hash_ = f"limit70-{lang}" if lang == "jav_Latn" else f"full-{lang}"
            store.put("student", "", "sib200", lang, 3, hash_, [("acc", student, SE, N)])
        store.put("student", "", "belebele", "jav_Latn", 3, "b", [("acc", 0.7, SE, N)], engine=2)
        store.put("base", "", "belebele", "jav_Latn", 3, "b", [("acc", 0.4, SE, N)])
        store.put("student", "", "toy", "jav_Latn", 3, "t", [("acc", 0.4, SE, N)])
        rows = store.rows()
    board = build_leaderboard(rows, baseline="base", metrics=["acc"])
    sib = next(c for c in board.columns if c.benchmark == "sib200" and c.language is None)
    delta = board.delta("student", sib)
    assert delta is not None and delta.languages == ("sun_Latn",)
    assert delta.value == pytest.approx(0.1)
    assert board.delta("student", sib.at("jav_Latn")) is None
    why = "prompt hash limit70-jav_Latn vs full-jav_Latn"
    assert any("leaves out 1 language(s)" in n and why in n for n in board.notes)
    labels = [c.label for c in board.display_columns if c.benchmark == "belebele"]
    assert labels == ["belebele acc 3-shot, engine 2", "belebele acc 3-shot"]
    assert not [k for k in board.deltas if k[1].benchmark == "belebele"]
    assert any("No Δ for belebele acc 3-shot, engine 2" in n for n in board.notes)
    # a benchmark the baseline never ran (the judge's case) has no Δ column and no footnote
    assert not [n for n in board.notes if "toy" in n]


def test_card_comparison_compares_only_same_settings(merged: Path, tmp_path: Path) -> None:
    with ResultsStore(merged, readonly=True) as store:
        comparison = build_comparison(store, "student", "base")
    text = render_markdown(comparison)
    flores = text[text.index("#### FLORES-200"):text.index("#### SIB-200")]
    rows = [line for line in flores.splitlines() if line.startswith("| jav_Latn")]
    by_shots = {row.split("|")[4].strip(): row for row in rows}
    assert set(by_shots) == {"3", "1"}
    one = [c.strip() for c in by_shots["1"].split("|")[1:-1]]
    assert one[4] == "–" and one[6] == "–" and "**" not in by_shots["1"]  # no base, no Δ
    three = [c.strip() for c in by_shots["3"].split("|")[1:-1]]
    assert three[6] == "**+2.0 ± 0.7**"  # same settings: a Δ, bold as significant
    assert "jav_Latn 1-shot: no Δ, the base has results for jav_Latn only at 3-shot" in flores
    sib = text[text.index("#### SIB-200"):]
    assert "jav_Latn: the student was scored at 3-shot, 1-shot" in sib
    for row in (r for r in sib.splitlines() if r.startswith("| ")):
        cells = [c.strip() for c in row.split("|")[1:-1]]
        if cells[3] == "1":
            assert cells[6] == "–"

    # the Hub's eval results: a file per setting (the Hub's rule for variants of a benchmark),
    # read back by `kakugo leaderboard import` with their shots
    files = eval_results_files(comparison)
    assert {".eval_results/sib200.yaml", ".eval_results/sib200_1-shot.yaml",
            ".eval_results/flores.yaml", ".eval_results/flores_1-shot.yaml"} == set(files)
    back = rows_from_eval_results("o/m", "c0", "flores_1-shot.yaml",
                                  files[".eval_results/flores_1-shot.yaml"], "", "")
    assert [(r.language, r.n_shot, r.value) for r in back] == [("jav_Latn", 1, FLORES1)]
    back = rows_from_eval_results("o/m", "c0", "sib200.yaml", files[".eval_results/sib200.yaml"],
                                  "", "")
    assert {r.n_shot for r in back} == {3} and len(back) == len(LANGS)

    # same shots, another prompt (a --limit sample): the card shows both values, no Δ
    with ResultsStore(tmp_path / "card.sqlite") as store:
        store.put("student", "", "sib200", "jav_Latn", 3, "limit70", [("acc", 0.9, SE, N)])
        store.put("base", "", "sib200", "jav_Latn", 3, "full", [("acc", 0.3, SE, N)])
        comparison = build_comparison(store, "student", "base")
    text = render_markdown(comparison)
    row = next(r for r in text.splitlines() if r.startswith("| jav_Latn"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[4].startswith("30.0") and cells[5].startswith("90.0") and cells[6] == "–"
    assert "no Δ, the base was scored differently (prompt hash limit70 vs full" in text
