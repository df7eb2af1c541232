"""``kakugo leaderboard --format site``: the static site's files, numbers and links, and in
headless Chromium: navigate, sort, filter, follow links, take screenshots."""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kakugo_core.cli import cli
from kakugo_core.store import ResultsStore

LANGS = ["jav_Latn", "sun_Latn", "yor_Latn", "swh_Latn", "hau_Latn"]
#: model -> per-language sib200 accuracy; "gamma" has no hau_Latn (a missing cell)
SIB = {
    "base": [0.50, 0.52, 0.40, 0.61, 0.45],
    "alpha": [0.70, 0.72, 0.55, 0.66, 0.58],
    "gamma": [0.30, 0.36, 0.33, 0.35, None],
    "zeta<b>": [0.90, 0.80, 0.85, 0.88, 0.79],
}
CHRF = {"base": 20.0, "alpha": 31.5, "gamma": 9.5, "zeta<b>": 40.25}


def fill_store(db: Path) -> None:
    with ResultsStore(db) as store:
        for model, values in SIB.items():
            for lang, value in zip(LANGS, values, strict=True):
                if value is not None:
                    store.put(model, "r1", "sib200", lang, 3, "h1", [("acc", value, 0.03, 204)],
                              {"kakugo": "0.1.0", "backend": "transformers"})
            for i, lang in enumerate(LANGS[:3]):
                store.put(model, "r1", "flores", lang, 3, "h2",
                          [("chrf_en_xx", CHRF[model] + i, 0.8, 1012)])


def build(tmp_path: Path, *args: str, out_name: str = "site") -> Path:
    db = tmp_path / "results.sqlite"
    if not db.exists():
        fill_store(db)
    out = tmp_path / out_name
    result = CliRunner().invoke(cli, ["leaderboard", "--db", str(db), "--format", "site",
                                      "--out", str(out), "--baseline", "base", *args])
    assert result.exit_code == 0, result.output
    return out


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value:
                (self.external if re.match(r"[a-z]+:", value) else self.links).append(value)


def test_site_files_links_and_numbers(tmp_path: Path) -> None:
    out = build(tmp_path)
    pages = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html"))
    assert {"index.html", "heatmap.html", "coverage.html", "benchmarks/sib200.html",
            "benchmarks/flores.html", "languages/hau_Latn.html", "models/alpha.html"} <= set(pages)
    assert len([p for p in pages if p.startswith("languages/")]) == len(LANGS)
    assert len([p for p in pages if p.startswith("models/")]) == len(SIB)
    for page in out.rglob("*.html"):
        parser = Links()
        parser.feed(page.read_text("utf-8"))
        assert parser.external == [], page  # nothing leaves the site
        for link in parser.links:
            assert (page.parent / link).resolve().is_file(), (page, link)
    index = (out / "index.html").read_text("utf-8")
    assert "zeta&lt;b&gt;" in index and "zeta<b>" not in index
    # alpha's mean over 5 languages and its delta vs base, ×100 with one decimal
    mean = sum(SIB["alpha"]) / 5 * 100
    delta = mean - sum(SIB["base"]) / 5 * 100
    assert f"{mean:.1f} ± {(5 * 0.03 ** 2) ** 0.5 / 5 * 100:.1f}" in index
    assert f"+{delta:.1f} ± {(10 * 0.03 ** 2) ** 0.5 / 5 * 100:.1f}" in index
    coverage = (out / "coverage.html").read_text("utf-8")
    assert "Missing cells (1)" in coverage and "4/5" in coverage
    # an unchanged store rebuilds a byte-identical site (idempotent publishing relies on it)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    out2 = build(tmp_path, out_name="again")
    after = {out / p.relative_to(out2): p.read_bytes() for p in out2.rglob("*") if p.is_file()}
    assert after == before


def test_site_needs_out(tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    fill_store(db)
    result = CliRunner().invoke(cli, ["leaderboard", "--db", str(db), "--format", "site"])
    assert result.exit_code != 0 and "--out" in result.output


def _rows(driver: Any, table: str) -> list[str]:
    from selenium.webdriver.common.by import By

    return [r.find_elements(By.CSS_SELECTOR, "th, td")[0].text
            for r in driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")
            if r.is_displayed()]


def _header(driver: Any, table: str, label: str) -> Any:
    from selenium.webdriver.common.by import By

    for th in driver.find_elements(By.CSS_SELECTOR, f"#{table} thead th"):
        if th.text.strip() == label:
            return th
    raise AssertionError(f"no header {label!r} in #{table}")


@pytest.mark.browser
def test_site_in_chromium(tmp_path: Path) -> None:
    from browser import headless_chromium, require_chromium

    require_chromium()
    from selenium.webdriver.common.by import By

    out = build(tmp_path)
    shots = Path(os.environ.get("KAKUGO_SCREENSHOTS", tmp_path / "shots"))
    shots.mkdir(parents=True, exist_ok=True)
    with headless_chromium(tmp_path / "profile", width=1400, height=900) as driver:
        driver.get((out / "index.html").as_uri())
        assert driver.title == "Overview · Kakugo leaderboard"
        assert _rows(driver, "overview") == ["base (baseline)", "alpha", "gamma", "zeta<b>"]
        acc = _header(driver, "overview", "sib200 acc (%)")
        acc.click()
        assert _rows(driver, "overview") == ["gamma", "base (baseline)", "alpha", "zeta<b>"]
        acc.click()
        assert acc.get_attribute("aria-sort") == "descending"
        assert _rows(driver, "overview")[0] == "zeta<b>"
        driver.save_screenshot(str(shots / "overview.png"))
        box = driver.find_element(By.CSS_SELECTOR, "input.filter[data-table=overview]")
        box.send_keys("ALPHA")
        assert _rows(driver, "overview") == ["alpha"]
        assert driver.find_element(By.ID, "overview-count").text == "1 of 4 rows"
        box.clear()
        box.send_keys(" ")  # clearing by script fires no input event: type to refilter
        assert len(_rows(driver, "overview")) == 4
        # the significant, better delta is bold and green; gamma's is red
        better = driver.find_element(By.CSS_SELECTOR, "#overview td.delta.better.significant")
        worse = driver.find_element(By.CSS_SELECTOR, "#overview td.delta.worse")
        assert better.value_of_css_property("font-weight") == "700"
        assert better.value_of_css_property("color") != worse.value_of_css_property("color")

        driver.find_element(By.LINK_TEXT, "alpha").click()
        assert driver.title.startswith("Model: alpha")
        assert len(_rows(driver, "model")) == len(LANGS) + 3
        driver.save_screenshot(str(shots / "model.png"))
        driver.find_element(By.LINK_TEXT, "hau_Latn").click()
        assert driver.title.startswith("Language: ")
        assert "hau_Latn" in driver.find_element(By.TAG_NAME, "h1").text
        gamma = [r for r in driver.find_elements(By.CSS_SELECTOR, "#language tbody tr")
                 if r.text.startswith("gamma")][0]
        assert gamma.find_element(By.CSS_SELECTOR, "td.missing").text == "–"

        driver.find_element(By.LINK_TEXT, "Heat map").click()
        cells = driver.find_elements(By.CSS_SELECTOR, "#heat-sib200-acc td[class^=h]")
        colours = {c.value_of_css_property("background-color") for c in cells}
        assert len(cells) == 19 and len(colours) >= 4
        driver.save_screenshot(str(shots / "heatmap.png"))

        driver.find_element(By.LINK_TEXT, "Coverage").click()
        assert _rows(driver, "missing") == ["gamma"]
        driver.save_screenshot(str(shots / "coverage.png"))

        driver.find_element(By.LINK_TEXT, "Benchmarks").click()
        driver.find_element(By.LINK_TEXT, "sib200").click()
        table = "t-acc"
        _header(driver, table, "yor_Latn").click()
        assert _rows(driver, table)[0] == "gamma"
        assert driver.find_elements(By.ID, "t-acc-delta")
        driver.save_screenshot(str(shots / "benchmark.png"))
        logs = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert logs == []  # no CSP violation, no script error
    for name in ("overview", "model", "heatmap", "coverage", "benchmark"):
        assert (shots / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
