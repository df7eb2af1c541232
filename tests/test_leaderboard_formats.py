"""Every leaderboard format parses and carries the right numbers; the CLI's errors are one line
and --output never leaves half a file."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from kakugo_core.errors import KakugoError
from kakugo_core.leaderboard import render_store
from kakugo_core.store import ResultsStore

#: (model, language) -> (acc, stderr, n); the student has no yor_Latn result
ACC = {
    ("base", "jav_Latn"): (0.50, 0.030, 204),
    ("base", "sun_Latn"): (0.60, 0.040, 204),
    ("base", "yor_Latn"): (0.40, 0.020, 204),
    ("student", "jav_Latn"): (0.62, 0.030, 204),
    ("student", "sun_Latn"): (0.66, 0.050, 204),
    ("odd|<b>name</b>", "jav_Latn"): (0.45, 0.035, 204),
}
CHRF = {("base", "jav_Latn"): (31.5, 0.8, 1012), ("student", "jav_Latn"): (40.25, 0.9, 1012)}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "results.sqlite"
    with ResultsStore(path) as store:
        for (model, lang), (acc, se, n) in ACC.items():
            store.put(model, "main", "sib200", lang, 3, "h1",
                      [("acc", acc, se, n), ("macro_f1", acc - 0.1, se, n)])
        for (model, lang), (chrf, se, n) in CHRF.items():
            store.put(model, "main", "flores", lang, 3, "h2",
                      [("chrf_en_xx", chrf, se, n), ("bleu_en_xx", chrf / 2, se, n)])
    return path


def mean_and_se(model: str) -> tuple[float, float, int, list[str]]:
    """Independent reference: plain arithmetic over the ACC table."""
    entries = [(lang, v) for (m, lang), v in ACC.items() if m == model]
    k = len(entries)
    mean = sum(v[0] for _, v in entries) / k
    se = math.sqrt(sum(v[1] ** 2 for _, v in entries)) / k
    return mean, se, sum(v[2] for _, v in entries), [lang for lang, _ in entries]


def test_csv_has_averages_stderr_counts_and_deltas(db: Path) -> None:
    text = render_store(db, "csv", baseline="base", metrics=["acc", "chrf_en_xx"])
    table = list(csv.DictReader(io.StringIO(text)))
    assert [r["model"] for r in table] == ["base", "odd|<b>name</b>", "student"]
    by_model = {r["model"]: r for r in table}
    for model in ("base", "student", "odd|<b>name</b>"):
        mean, se, n, langs = mean_and_se(model)
        assert float(by_model[model]["sib200/acc"]) == pytest.approx(mean)
        assert float(by_model[model]["sib200/acc:stderr"]) == pytest.approx(se)
        assert int(by_model[model]["sib200/acc:n"]) == n
        assert by_model[model]["sib200/acc:languages"].split() == sorted(langs)
    student = by_model["student"]
    shared = ("jav_Latn", "sun_Latn")
    expected = sum(ACC[("student", x)][0] - ACC[("base", x)][0] for x in shared) / 2
    expected_se = math.sqrt(
        sum(ACC[("student", x)][1] ** 2 + ACC[("base", x)][1] ** 2 for x in shared)
    ) / 2
    assert float(student["sib200/acc:delta"]) == pytest.approx(expected)
    assert float(student["sib200/acc:delta_stderr"]) == pytest.approx(expected_se)
    assert float(student["flores/chrf_en_xx:delta"]) == pytest.approx(40.25 - 31.5)
    assert by_model["base"]["sib200/acc:delta"] == ""
    assert by_model["base"]["is_baseline"] == "true"
    assert "sib200/macro_f1" not in table[0]  # only the metrics asked for


def test_csv_per_language_columns(db: Path) -> None:
    text = render_store(db, "csv", metrics=["acc"], per_language=True, benchmarks=["sib200"])
    table = {r["model"]: r for r in csv.DictReader(io.StringIO(text))}
    assert float(table["student"]["sib200/acc/sun_Latn"]) == pytest.approx(0.66)
    assert table["student"]["sib200/acc/yor_Latn"] == ""


def test_json_follows_lm_eval_results_schema(db: Path) -> None:
    doc = json.loads(render_store(db, "json", baseline="base", metrics=["acc", "chrf_en_xx"]))
    assert doc["baseline"] == "base"
    assert list(doc["models"]) == ["base", "odd|<b>name</b>", "student"]
    student = doc["models"]["student"]
    assert {"results", "groups", "group_subtasks", "n-shot", "n-samples", "config"} <= set(student)
    assert student["config"] == {"model": "student", "model_revision": "main"}
    mean, se, n, _ = mean_and_se("student")
    assert student["results"]["sib200"]["acc,none"] == pytest.approx(mean)
    assert student["results"]["sib200"]["acc_stderr,none"] == pytest.approx(se)
    assert student["results"]["sib200_sun_Latn"]["acc,none"] == pytest.approx(0.66)
    assert student["results"]["flores_jav_Latn"]["chrf_en_xx_stderr,none"] == pytest.approx(0.9)
    assert student["groups"]["sib200"] == student["results"]["sib200"]
    assert student["group_subtasks"]["sib200"] == ["sib200_jav_Latn", "sib200_sun_Latn"]
    assert student["n-samples"]["sib200_jav_Latn"] == {"original": 204, "effective": 204}
    assert student["n-samples"]["sib200"]["effective"] == n
    assert student["n-shot"]["sib200_jav_Latn"] == 3
    assert student["higher_is_better"]["sib200"] == {"acc": True}
    assert student["higher_is_better"]["flores_jav_Latn"] == {"chrf_en_xx": True}
    delta = doc["deltas"]["student"]["sib200"]
    assert delta["acc,none"] == pytest.approx((0.62 - 0.50 + 0.66 - 0.60) / 2)
    assert delta["languages"] == ["jav_Latn", "sun_Latn"]
    assert "base" not in doc["deltas"]


def _md_cells(line: str) -> list[str]:
    assert line.startswith("| ") and line.endswith(" |"), line
    return [c.strip() for c in re.split(r"(?<!\\)\|", line[1:-1])]


def test_markdown_is_a_well_formed_github_table(db: Path) -> None:
    text = render_store(db, "markdown", baseline="base")
    lines = text.strip().splitlines()
    widths = {len(_md_cells(line)) for line in lines}
    assert len(widths) == 1, text
    header, rule, *body = lines
    assert all(re.fullmatch(r":?-{3,}:?", c) for c in _md_cells(rule))
    # n differs between models (2 or 3 languages of 204 items): shown per cell, not in the header
    assert _md_cells(header)[:3] == ["Model", "sib200 acc (%) (3 langs)", "Δ sib200 acc (%)"]
    assert len(body) == 3
    odd = [line for line in body if "odd" in line][0]
    # the pipe cannot break the table, the tag cannot become HTML
    assert _md_cells(odd)[0] == r"odd\|&lt;b&gt;name&lt;/b&gt;"
    mean, se, _, _ = mean_and_se("student")
    student = _md_cells([line for line in body if line.startswith("| student")][0])
    # fractions ×100, with the 95 % interval from each language's Wilson interval, and n
    ses = []
    for lang in ("jav_Latn", "sun_Latn"):
        p, n = ACC[("student", lang)][0], 204
        ses.append(math.sqrt(p * (1 - p) / n + 1.96**2 / (4 * n * n)) / (1 + 1.96**2 / n))
    half = 1.96 * math.hypot(*ses) / 2
    assert student[1] == (f"{100 * mean:.1f} [{100 * (mean - half):.1f}–"
                          f"{100 * (mean + half):.1f}] n=408 (2/3 langs)")
    delta = (0.62 - 0.50 + 0.66 - 0.60) / 2
    wilson_ses = []  # each side's standard error from its Wilson interval
    for model in ("student", "base"):
        for lang in ("jav_Latn", "sun_Latn"):
            p, n = ACC[(model, lang)][0], 204
            wilson_ses.append(math.sqrt(p * (1 - p) / n + 1.96**2 / (4 * n * n))
                              / (1 + 1.96**2 / n))
    delta_se = math.sqrt(sum(se * se for se in wilson_ses)) / 2
    assert student[2] == f"**{100 * delta:+.1f} ± {100 * delta_se:.1f}**"  # > 1.96 se: bold


def test_table_shows_values_and_baseline(db: Path) -> None:
    text = render_store(db, "table", baseline="base", metrics=["chrf_en_xx"])
    assert "\x1b[" not in text  # plain text, no colour codes
    assert "base (baseline)" in text
    # chrF++ is already on a 0-100 scale: shown as stored
    assert f"{40.25:.1f} ± 0.9" in text and f"+8.8 ± {math.hypot(0.8, 0.9):.1f}" in text
    assert "flores chrf_en_xx (%)" not in text


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.rows: list[list[str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            assert not (value or "").lower().startswith(("http:", "https:", "//")), (name, value)
        if tag == "tr":
            self.rows.append([])

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.rows and self.tags and self.tags[-1] in ("td", "th"):
            self.rows[-1].append(data)


def test_html_is_self_contained_and_escaped(db: Path) -> None:
    page = render_store(db, "html", baseline="base", title="Scores <for> Javanese & co")
    parser = _Collector()
    parser.feed(page)
    assert parser.tags.count("script") == 1 and "link" not in parser.tags  # inline only
    assert "img" not in parser.tags and "iframe" not in parser.tags
    assert "<b>name</b>" not in page and "odd|&lt;b&gt;name&lt;/b&gt;" in page
    assert "<for>" not in page and "Scores &lt;for&gt; Javanese &amp; co" in page
    assert "{{" not in page
    first_cells = [r[0] for r in parser.rows[1:]]
    assert first_cells == ["base (baseline)", "odd|<b>name</b>", "student"]


def test_unknown_filters_are_named(db: Path) -> None:
    with pytest.raises(KakugoError, match="no results for model nobody; stored: base, odd"):
        render_store(db, models=["nobody"])
    with pytest.raises(KakugoError, match="no results for benchmark mmlu; stored: flores, sib200"):
        render_store(db, benchmarks=["mmlu"])
    # languages are resolved by name through the registry
    text = render_store(db, "csv", languages=["Javanese"], metrics=["acc"])
    student = {r["model"]: r for r in csv.DictReader(io.StringIO(text))}["student"]
    assert float(student["sib200/acc"]) == pytest.approx(0.62)


def test_missing_store_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nope.sqlite"
    with pytest.raises(KakugoError, match="no results database there"):
        render_store(missing)
    assert not missing.exists()


def kakugo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from kakugo_core.cli import main; main()", *args],
        capture_output=True, text=True, timeout=120,
    )


def test_cli_errors_are_one_line(db: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite"
    ResultsStore(empty).models()  # a valid database without results
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_text("not a database, just text\n" * 100, "utf-8")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be", "utf-8")
    cases = {
        ("--db", str(tmp_path / "none.sqlite")): "no results database there",
        ("--db", str(empty)): "no results yet; run `kakugo bench` first",
        ("--db", str(db), "--baseline", "ghost"): "baseline 'ghost' has no results",
        ("--db", str(db), "--format", "xml"): "unknown leaderboard format 'xml'",
        ("--db", str(db), "--languages", "Klingon"): "no results for language Klingon",
        ("--db", str(garbage)): "not a Kakugo results database",
        ("--db", str(db), "-o", str(blocker / "x.md")): "cannot write",
    }
    for args, message in cases.items():
        done = kakugo("leaderboard", *args)
        assert done.returncode != 0, args
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("kakugo: error: "), done.stderr
        assert message in lines[0]


def test_cli_output_is_written_atomically(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "site" / "board.json"
    done = kakugo("leaderboard", "--db", str(db), "--format", "json", "-o", str(out),
                  "--baseline", "base", "-m", "student")
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text("utf-8"))
    assert list(doc["models"]) == ["base", "student"]
    before = out.read_bytes()
    failed = kakugo("leaderboard", "--db", str(db), "--format", "json", "-o", str(out),
                    "--baseline", "ghost")
    assert failed.returncode != 0
    assert out.read_bytes() == before  # the earlier file survives a failed run
    assert sorted(p.name for p in out.parent.iterdir()) == ["board.json"]  # no temp files left


def test_cli_prints_markdown_with_config_defaults(db: Path, tmp_path: Path) -> None:
    config = tmp_path / "kakugo.toml"
    config.write_text('[leaderboard]\nformat = "markdown"\nmetrics = ["macro_f1"]\n', "utf-8")
    done = kakugo("leaderboard", "--db", str(db), "--config", str(config))
    assert done.returncode == 0, done.stderr
    header = done.stdout.splitlines()[0]
    assert header == "| Model | sib200 macro_f1 (%) (3 langs) |"


def test_judge_rates_are_coloured_by_direction(tmp_path: Path) -> None:
    """A lower loss rate is better, a tie rate is neither; lm-eval's higher_is_better agrees."""
    db = tmp_path / "judge.sqlite"
    with ResultsStore(db) as store:
        rates = {"base": (0.3, 0.2, 0.5), "student": (0.5, 0.3, 0.2)}
        for model, (win, tie, loss) in rates.items():
            store.put(model, "", "judge", "jav_Latn", 0, "j",
                      [("win_rate", win, 0.03, 100), ("tie_rate", tie, 0.03, 100),
                       ("loss_rate", loss, 0.03, 100)])
    page = render_store(db, "html", baseline="base", metrics=["*_rate"])
    cells = re.findall(r'<td class="([^"]*)" data-value="([^"]*)"', page)
    by_value = {round(float(v), 6): cls for cls, v in cells if v}
    assert "better" in by_value[0.2]  # win rate up
    assert "better" in by_value[-0.3]  # loss rate down
    assert by_value[0.1] == "delta"  # tie rate: no colour
    doc = json.loads(render_store(db, "json", metrics=["*_rate"]))
    assert doc["models"]["student"]["higher_is_better"]["judge_jav_Latn"] == {
        "loss_rate": False, "win_rate": True,
    }


def test_render_store_takes_an_open_store_and_leaves_it_open(db: Path) -> None:
    """`kakugo bench` passes its own ResultsStore; the leaderboard must not close it."""
    store = ResultsStore(db)
    text = render_store(store, "csv", models=["student"], languages=["jav_Latn"], n_shot=3)
    assert [r["model"] for r in csv.DictReader(io.StringIO(text))] == ["student"]
    store.put("late", "", "sib200", "jav_Latn", 3, "h1", [("acc", 0.1, 0.01, 10)])  # still open
    assert "late" in store.models()
    store.close()


def test_gguf_quantization_is_shown_after_the_model_name(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    with ResultsStore(path) as store:
        store.put("gemma.gguf", "sha256:ab", "sib200", "jav_Latn", 3, "h1",
                  [("acc", 0.5, 0.03, 204)], versions={"gguf_quant": "Q4_K_M"})
        store.put("gemma", "sha256:cd", "sib200", "jav_Latn", 3, "h1", [("acc", 0.6, 0.03, 204)])
    markdown = render_store(path, "markdown", metrics=["acc"])
    assert "| gemma.gguf [Q4_K_M] |" in markdown and "| gemma |" in markdown
    rows = {r["model"]: r for r in csv.DictReader(io.StringIO(
        render_store(path, "csv", metrics=["acc"])))}
    assert rows["gemma.gguf"]["quantization"] == "Q4_K_M" and rows["gemma"]["quantization"] == ""
