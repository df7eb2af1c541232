"""The exported page in headless Chromium: votes are clicked, 'Download votes' saves a real
file, and that file imports into the store with the expected rates."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from browser import headless_chromium, require_chromium

from kakugo_core.compare import HTML_FILE, KEY_FILE, export_comparison, import_votes
from kakugo_core.judging import PromptItem
from kakugo_core.languages import resolve
from kakugo_core.store import ResultsStore

pytestmark = pytest.mark.browser

ITEMS = [PromptItem(f"q{i}", f"Pitakon nomer {i}: kepiye kabare?") for i in range(6)]
CANDIDATE = [f"Kabarku apik, matur nuwun ({i})." for i in range(6)]
OPPONENT = [f"kabar kabar kabar {i} <img src=x onerror=alert(1)>" for i in range(6)]


def wait_for_file(folder: Path, pattern: str, timeout: float = 20.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.glob(pattern) if not p.name.endswith(".crdownload")]
        if done:
            return done[0]
        time.sleep(0.1)
    raise AssertionError(f"no {pattern} downloaded into {folder}")


def test_votes_clicked_in_chromium_round_trip_into_the_store(tmp_path: Path) -> None:
    require_chromium()
    from selenium.webdriver.common.by import By

    out = tmp_path / "review"
    paths = export_comparison(ITEMS, CANDIDATE, OPPONENT, models=("org/student", "org/base"),
                              language=resolve("Javanese"), out_dir=out, seed=5)
    key = json.loads((out / KEY_FILE).read_text())
    candidate_side = {i: ("A" if m["A"] == "candidate" else "B") for i, m in key["items"].items()}
    flip = {"A": "B", "B": "A"}
    # intended votes: candidate better on q0-q2, tie on q3, opponent better on q4, q5 skipped
    intended = {"q0": candidate_side["q0"], "q1": candidate_side["q1"],
                "q2": candidate_side["q2"], "q3": "tie", "q4": flip[candidate_side["q4"]]}
    downloads = tmp_path / "downloads"
    downloads.mkdir()

    with headless_chromium(tmp_path / "profile") as driver:
        driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                               {"behavior": "allow", "downloadPath": str(downloads)})
        driver.get(paths.html.as_uri())
        sections = driver.find_elements(By.CSS_SELECTOR, "section.item")
        assert len(sections) == len(ITEMS)
        page_text = driver.find_element(By.TAG_NAME, "body").text
        assert "org/student" not in page_text and "org/base" not in page_text
        assert "<img src=x onerror=alert(1)>" in page_text  # shown as text, not markup
        assert not driver.find_elements(By.CSS_SELECTOR, "main img")
        assert driver.find_element(By.ID, "progress").text == "0 of 6 voted"

        # a change of mind first: q0 gets the opposite vote, then the intended one
        first_click = flip[intended["q0"]]
        driver.find_element(
            By.CSS_SELECTOR, f'button[data-item="q0"][data-vote="{first_click}"]').click()
        for item, vote in intended.items():
            button = driver.find_element(
                By.CSS_SELECTOR, f'button[data-item="{item}"][data-vote="{vote}"]')
            button.click()
            assert button.get_attribute("aria-pressed") == "true"
        pressed = driver.find_elements(By.CSS_SELECTOR, 'button[aria-pressed="true"]')
        assert len(pressed) == len(intended)
        assert driver.find_element(By.ID, "progress").text == "5 of 6 voted"
        driver.find_element(By.ID, "voter").send_keys("Sari")
        driver.find_element(By.ID, "download").click()
        downloaded = wait_for_file(downloads, "votes-*.json")

        # votes survive a reload (kept in the browser)
        driver.refresh()
        assert driver.find_element(By.ID, "progress").text == "5 of 6 voted"

    assert downloaded.name == f"votes-{paths.export_id}.json"
    sheet = json.loads(downloaded.read_text())
    assert sheet["voter"] == "Sari" and sheet["export_id"] == key["export_id"]
    assert {v["item"]: v["vote"] for v in sheet["votes"]} == intended

    preference = import_votes([downloaded], paths.key)
    assert (preference.wins, preference.ties, preference.losses) == (3, 1, 1)
    from kakugo_core.compare import store_preference

    with ResultsStore(tmp_path / "results.sqlite") as store:
        store_preference(store, preference)
        rows = {r.metric: r for r in store.rows(benchmarks=["human_preference"])}
    assert rows["win_rate"].value == pytest.approx(3 / 5) and rows["win_rate"].n == 5
    assert rows["tie_rate"].value == pytest.approx(1 / 5)
    assert rows["loss_rate"].value == pytest.approx(1 / 5)
    assert rows["win_rate"].model == "org/student"
    assert rows["win_rate"].versions["opponent"] == "org/base"
    assert HTML_FILE == paths.html.name
