"""The CLI as a person sees it: run in a real terminal of 80 and 120 columns (tmux), captured
with capture-pane. Every id must be whole on one screen line and no table line may wrap."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from kakugo_core.store import ResultsStore

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
REPO = Path(__file__).resolve().parent.parent
DONE = "__kakugo_done__"


def screen(args: list[str], width: int, tmp_path: Path, height: int = 400) -> tuple[str, str]:
    """(screen lines as shown, logical lines with wrapped ones joined) of ``kakugo ARGS``."""
    sock = str(tmp_path / f"tmux-{width}-{uuid.uuid4().hex[:8]}.sock")  # a server per call
    command = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "kakugo_core", *args])
    env = f"env -u COLUMNS -u LINES PYTHONPATH={shlex.quote(str(REPO))} TERM=xterm-256color"
    script = f"cd {shlex.quote(str(REPO))}; {env} {command}; echo {DONE}; sleep 600"
    tmux = ["tmux", "-S", sock, "-f", "/dev/null"]
    subprocess.run([*tmux, "new-session", "-d", "-x", str(width), "-y", str(height),
                    "sh", "-c", script], check=True)
    try:
        deadline = time.monotonic() + 300  # a hang guard; the commands take seconds
        while True:
            shown = subprocess.run([*tmux, "capture-pane", "-p", "-S", "-"], check=True,
                                   capture_output=True, text=True).stdout
            if DONE in shown or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        joined = subprocess.run([*tmux, "capture-pane", "-p", "-J", "-S", "-"], check=True,
                                capture_output=True, text=True).stdout
    finally:
        subprocess.run([*tmux, "kill-server"], check=False, capture_output=True)
    assert DONE in shown, shown
    return shown, joined


def assert_fits(shown: str, joined: str, width: int, ids: list[str]) -> None:
    lines = shown.splitlines()
    for ident in ids:
        assert any(ident in line for line in lines), f"{ident!r} is not whole:\n{shown}"
    too_long = [line for line in joined.splitlines() if len(line.rstrip()) > width]
    assert not too_long, f"lines wrap at {width} columns:\n" + "\n".join(too_long)
    assert "…" not in shown, shown  # nothing cut with an ellipsis
    # nothing cropped at the edge: a table line that starts with a border ends with one
    borders = set("┃│┏┓┗┛┡┩└┘┌┐┣┫├┤╇╈┳┻┿")
    cropped = [line for line in lines if line.strip() and line.strip()[0] in borders
               and line.rstrip()[-1] not in borders]
    assert not cropped, "cropped table lines:\n" + "\n".join(cropped)


@pytest.mark.parametrize("width", [80, 120])
def test_languages_show_every_id_whole(width: int, tmp_path: Path) -> None:
    from kakugo_core.languages import registry

    shown, joined = screen(["languages", "Javanese"], width, tmp_path)
    assert_fits(shown, joined, width, ["jav_Latn", "Javanese"])
    shown, joined = screen(["languages", "--paper"], width, tmp_path)
    paper = [lang for lang in registry() if lang.kakugo_paper]
    assert_fits(shown, joined, width, [lang.id for lang in paper] + [lang.name for lang in paper])


@pytest.mark.parametrize("width", [80, 120])
def test_plugins_show_every_name_whole(width: int, tmp_path: Path) -> None:
    from kakugo_core.plugins import get_host

    shown, joined = screen(["plugins"], width, tmp_path)
    infos = get_host().infos.values()
    names = [info.name for info in infos]
    registered = [n for info in infos for values in info.registered.values() for n in values]
    assert_fits(shown, joined, width, names + registered)


STUDENT = "runs/demo-jav_Latn/train/model"
BASE = "runs/demo-jav_Latn/demo-inputs/base-model"
LANGS = ["jav_Latn", "sun_Latn", "swh_Latn", "yor_Latn", "eng_Latn", "ace_Latn", "bug_Latn",
         "min_Latn"]


@pytest.fixture
def wide_store(tmp_path: Path) -> Path:
    """What a demo run leaves: SIB-200 in eight languages, FLORES both ways, the judge."""
    path = tmp_path / "results.sqlite"
    with ResultsStore(path) as store:
        for model, acc in ((BASE, 0.0), (STUDENT, 0.3)):
            for i, lang in enumerate(LANGS):
                n = 204 if i == 0 else 40
                store.put(model, "", "sib200", lang, 0, "p", [("acc", acc, 0.0, n),
                                                              ("macro_f1", acc / 2, None, n)])
            store.put(model, "", "flores", "jav_Latn", 3, "f",
                      [("chrf_xx_en", 6.9 + 10 * acc, 0.5, 40),
                       ("chrf_en_xx", 3.4 + 10 * acc, 0.4, 40)])
        store.put(STUDENT, "", "judge", "jav_Latn", 0, "j",
                  [("win_rate", 0.6, 0.07, 40), ("tie_rate", 0.1, 0.04, 40),
                   ("loss_rate", 0.3, 0.07, 40)])
    return path


@pytest.mark.parametrize("width", [80, 120])
def test_the_leaderboard_fits_and_says_n(width: int, tmp_path: Path, wide_store: Path) -> None:
    shown, joined = screen(["leaderboard", "--db", str(wide_store), "--baseline", BASE,
                            "--per-language"], width, tmp_path)
    assert_fits(shown, joined, width, [STUDENT, BASE, "0.0 [0.0–8.8]", "30.0 [25.4–34.6]",
                                       "+30.0 ± 2.5", "60.0 [44.6–73.7]"])
    assert "0.0 ± 0.0" not in shown  # 0/40 has a Wilson interval, not a zero error
    assert "Δ judge" not in shown  # the judge has no base value: no always-empty Δ column
    assert "n=204" in shown and "(8 langs)" in shown


def test_the_run_summary_leaderboard_fits_a_log(wide_store: Path) -> None:
    """Written to a file (a log), the table folds to 100 columns instead of 265."""
    from kakugo_core.leaderboard import render_store

    env_columns = os.environ.pop("COLUMNS", None)
    try:
        text = render_store(wide_store, fmt="table", baseline=BASE, per_language=True)
    finally:
        if env_columns is not None:
            os.environ["COLUMNS"] = env_columns
    assert max(len(line) for line in text.splitlines()) <= 100
    assert STUDENT in text and BASE in text
