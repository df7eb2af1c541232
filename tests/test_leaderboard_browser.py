"""The HTML leaderboard in headless Chromium: clicking a header sorts rows ascending, clicking
again sorts them descending, missing values stay last, and deltas are coloured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from browser import headless_chromium, require_chromium

from kakugo_core.leaderboard import render_store
from kakugo_core.store import ResultsStore

pytestmark = pytest.mark.browser

#: model -> sib200 acc on (jav_Latn, sun_Latn); chosen so that name order and score order differ
SCORES = {
    "alpha": (0.70, 0.72),
    "base": (0.50, 0.52),
    "delta<script>": (0.90, 0.88),
    "gamma": (0.30, 0.36),
}


def write_page(tmp_path: Path) -> Path:
    db = tmp_path / "results.sqlite"
    with ResultsStore(db) as store:
        for model, values in SCORES.items():
            for lang, value in zip(("jav_Latn", "sun_Latn"), values, strict=True):
                store.put(model, "", "sib200", lang, 3, "h", [("acc", value, 0.02, 204)])
        # a model without sib200 results: its sib200 cells are empty and must sort last
        store.put("zeta", "", "flores", "jav_Latn", 3, "h", [("chrf_en_xx", 35.0, 0.9, 1012)])
        store.put("base", "", "flores", "jav_Latn", 3, "h", [("chrf_en_xx", 9.5, 0.9, 1012)])
    page = tmp_path / "leaderboard.html"
    page.write_text(render_store(db, "html", baseline="base"), "utf-8")
    return page


def row_models(driver: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    return [
        row.find_element(By.CSS_SELECTOR, "th").get_attribute("data-value")
        for row in driver.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")
    ]


def header(driver: Any, label: str) -> Any:
    from selenium.webdriver.common.by import By

    for th in driver.find_elements(By.CSS_SELECTOR, "#leaderboard thead th"):
        if th.text.strip().startswith(label):  # headers go on with n and languages
            return th
    raise AssertionError(f"no header {label!r}")


def test_clicking_headers_sorts_rows(tmp_path: Path) -> None:
    require_chromium()
    page = write_page(tmp_path)
    mean = {m: sum(v) / 2 for m, v in SCORES.items()}
    with headless_chromium(tmp_path / "profile") as driver:
        driver.get(page.as_uri())
        assert driver.title == "Kakugo leaderboard"
        initial = row_models(driver)
        assert initial == ["base", "alpha", "delta<script>", "gamma", "zeta"]

        acc = header(driver, "sib200 acc (%)")
        acc.click()
        assert acc.get_attribute("aria-sort") == "ascending"
        assert row_models(driver) == sorted(mean, key=mean.__getitem__) + ["zeta"]
        acc.click()
        assert acc.get_attribute("aria-sort") == "descending"
        assert row_models(driver) == sorted(mean, key=mean.__getitem__, reverse=True) + ["zeta"]

        name = header(driver, "Model")
        name.click()
        assert row_models(driver) == ["alpha", "base", "delta<script>", "gamma", "zeta"]
        assert acc.get_attribute("aria-sort") is None
        name.click()
        assert row_models(driver) == ["zeta", "gamma", "delta<script>", "base", "alpha"]

        # numeric, not textual: 35.0 sorts above 9.5, the models without FLORES stay last
        chrf = header(driver, "flores chrf_en_xx")
        chrf.click()
        chrf.click()
        assert row_models(driver)[:2] == ["zeta", "base"]

        # escaped text reached the page as text, not as a script element
        from selenium.webdriver.common.by import By

        assert len(driver.find_elements(By.TAG_NAME, "script")) == 1
        better = driver.find_element(By.CSS_SELECTOR, "td.delta.better")
        worse = driver.find_element(By.CSS_SELECTOR, "td.delta.worse")
        assert better.value_of_css_property("color") != worse.value_of_css_property("color")
        assert better.text.startswith("+") and worse.text.startswith("-")
        assert driver.get_screenshot_as_png()[:8] == b"\x89PNG\r\n\x1a\n"
