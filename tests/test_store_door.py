"""One door into the results store: every row written by bench (``put``), a shard merge
(``merge_rows``), ``kakugo store merge`` and ``kakugo leaderboard import`` passes one validator,
a bad row refuses the whole write in one line and leaves the store as it was, and a store that
already holds bad rows (written with raw sqlite3 here, as an older Kakugo or a hand could) gives
every reader its good rows and one warning that counts the others."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_runner import run_cli

from kakugo_core.distributed import merge_rows
from kakugo_core.errors import KakugoError
from kakugo_core.store import COLUMNS, BadRowError, ResultRow, ResultsStore

REPO = Path(__file__).resolve().parent.parent
GOOD = {"model": "alpha", "revision": "r1", "benchmark": "sib200", "language": "jav_Latn",
        "n_shot": 0, "prompt_hash": "h1", "metric": "acc", "value": 0.5, "stderr": 0.05,
        "n": 100, "created": "2026-12-01T10:00:00+00:00", "versions": '{"kakugo": "0.1.0"}',
        "engine": 1}

#: a bad cell as raw sqlite3 writes it, and the field the refusal must name. SQLite stores a NaN
#: as NULL (the NOT NULL value column refuses it), so a stored NaN can only be a text; a float
#: NaN is refused on the way in below (put, merge_rows).
BAD: dict[str, tuple[dict[str, Any], str]] = {
    "versions-list": ({"versions": "[1, 2]"}, "versions"),
    "versions-not-json": ({"versions": "{oops"}, "versions"),
    "versions-numbers": ({"versions": '{"kakugo": 1}'}, "versions"),
    "value-text": ({"value": "abc"}, "value"),
    "value-nan-text": ({"value": "nan"}, "value"),
    "value-inf": ({"value": float("inf")}, "value"),
    "value-acc-above-1": ({"value": 1.5}, "value"),
    "value-chrf-above-100": ({"metric": "chrf_en_xx", "value": 120.0}, "value"),
    "stderr-negative": ({"stderr": -0.1}, "stderr"),
    "n-zero": ({"n": 0}, "n"),
    "engine-zero": ({"engine": 0}, "engine"),
    "language-path": ({"language": "../../../x"}, "language"),
    "benchmark-script": ({"benchmark": "<script>alert(1)</script>"}, "benchmark"),
    "metric-empty": ({"metric": ""}, "metric"),
    "model-control": ({"model": "al\npha"}, "model"),
}


def _good_store(db: Path) -> Path:
    """A store with two models' real-looking results (sib200 and flores, two languages)."""
    with ResultsStore(db) as store:
        for model, acc in (("base", 0.2), ("alpha", 0.6)):
            for lang in ("jav_Latn", "yor_Latn"):
                store.put(model, "r1", "sib200", lang, 0, "h1",
                          [("acc", acc, 0.03, 204), ("macro_f1", acc / 2, 0.02, 204)],
                          {"kakugo": "0.1.0"})
                store.put(model, "r1", "flores", lang, 0, "h2",
                          [("chrf_en_xx", 30 * acc, 0.8, 1012)])
    return db


def _raw_insert(db: Path, **changes: Any) -> None:
    """One row written past the door, as an older Kakugo or a hand could."""
    row = {**GOOD, **changes}
    with sqlite3.connect(db) as conn:
        conn.execute(f"INSERT INTO results ({', '.join(COLUMNS)}) VALUES "
                     f"({', '.join('?' * len(COLUMNS))})", [row[c] for c in COLUMNS])
    conn.close()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rows(db: Path) -> list[tuple[Any, ...]]:
    with ResultsStore(db, readonly=True) as store:
        return [r.as_tuple() for r in store.rows()]


def _one_error_line(err: str, *words: str) -> str:
    line = err.strip()
    assert "\n" not in line and "Traceback" not in line, err
    assert line.startswith("kakugo: error:"), line
    for word in words:
        assert word in line, line
    return line


def _row(**changes: Any) -> ResultRow:
    fields = {**GOOD, "versions": {"kakugo": "0.1.0"}, **changes}
    return ResultRow(**fields)


# -- the way in ----------------------------------------------------------------------------------
def test_merge_rows_keeps_the_engine_version(tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    with ResultsStore(db) as store:
        store.put("alpha", "r1", "sib200", "jav_Latn", 0, "h1", [("acc", 0.5, 0.05, 100)],
                  engine=1)
        # the same cell scored by engine 2 with other numbers: another key, not a conflict
        report = merge_rows([_row(value=0.7, engine=2)], store, source="task-0000.sqlite")
        assert (report.added, report.same, report.conflicts) == (1, 0, [])
        stored = {r.engine: r.value for r in store.rows()}
    assert stored == {1: 0.5, 2: 0.7}
    with ResultsStore(db) as store:  # merging it again: the same result, nothing added
        again = merge_rows([_row(value=0.7, engine=2)], store)
    assert (again.added, again.same) == (0, 1)


@pytest.mark.parametrize("changes,field", [
    ({"value": float("nan")}, "value"), ({"value": float("-inf")}, "value"),
    ({"stderr": float("nan")}, "stderr"), ({"n": 0}, "n"), ({"engine": 0}, "engine"),
    ({"language": "../../../x"}, "language"), ({"benchmark": "<script>"}, "benchmark"),
    ({"versions": ["kakugo"]}, "versions"), ({"value": 1.01}, "value"),
], ids=["nan", "-inf", "stderr-nan", "n-zero", "engine-zero", "language-path",
        "benchmark-script", "versions-list", "acc-above-1"])
def test_merge_rows_is_all_or_nothing(tmp_path: Path, changes: dict[str, Any], field: str
                                      ) -> None:
    db = _good_store(tmp_path / "results.sqlite")
    before = _rows(db)
    good = _row(model="gamma")
    with ResultsStore(db) as store, pytest.raises(BadRowError) as caught:
        merge_rows([good, _row(model="delta", **changes)], store, source="task-0001.sqlite")
    message = str(caught.value)
    assert str(db) in message and "task-0001.sqlite" in message and "'delta'" in message
    assert f"): {field} " in message and "nothing was written" in message
    assert _rows(db) == before  # not even the good row


@pytest.mark.parametrize("case", ["nan", "inf", "n-zero", "language-path", "benchmark-script",
                                  "chrf-above-100", "versions-numbers"])
def test_put_goes_through_the_door(tmp_path: Path, case: str) -> None:
    db = _good_store(tmp_path / "results.sqlite")
    before = _digest(db)
    cases: dict[str, dict[str, Any]] = {
        "nan": {"scores": [("acc", 0.5, 0.1, 4), ("macro_f1", float("nan"), None, 4)]},
        "inf": {"scores": [("acc", float("inf"), 0.1, 4)]},
        "n-zero": {"scores": [("acc", 0.5, 0.1, 0)]},
        "language-path": {"language": "../../../x"},
        "benchmark-script": {"benchmark": "<script>"},
        "chrf-above-100": {"scores": [("chrf_xx_en", 100.5, 0.1, 4)]},
        "versions-numbers": {"versions": {"kakugo": 1}},
    }
    call: dict[str, Any] = {"model": "gamma", "revision": "", "benchmark": "sib200",
                            "language": "jav_Latn", "n_shot": 0, "prompt_hash": "h",
                            "scores": [("acc", 0.5, 0.1, 4)], **cases[case]}
    with ResultsStore(db) as store, pytest.raises(KakugoError) as caught:
        store.put(**call)
    assert str(db) in str(caught.value) and "nothing was written" in str(caught.value)
    assert _digest(db) == before


def test_an_imported_row_may_have_no_sample_count(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "results.sqlite") as store:
        merge_rows([_row(prompt_hash="imported", n=0, stderr=None)], store)
        assert [r.n for r in store.rows()] == [0]


# -- kakugo store merge ---------------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(BAD))
def test_store_merge_refuses_a_source_with_a_bad_row(
        tmp_path: Path, capfd: pytest.CaptureFixture[str], case: str) -> None:
    changes, field = BAD[case]
    out = _good_store(tmp_path / "out.sqlite")
    src = tmp_path / "node1.sqlite"
    with ResultsStore(src) as store:  # a good row first: it must not be merged either
        store.put("gamma", "r1", "sib200", "jav_Latn", 0, "h1", [("acc", 0.4, 0.03, 204)])
    _raw_insert(src, **{"model": "delta", **changes})
    before = _digest(out)
    files = sorted(os.listdir(tmp_path))
    capfd.readouterr()
    assert run_cli("store", "merge", str(out), str(src)) == 2
    err = capfd.readouterr().err
    _one_error_line(err, str(src), f"): {field} ", f"{out} left unchanged")
    assert _digest(out) == before
    assert [n for n in os.listdir(tmp_path)  # nothing new beside OUT but SQLite's -wal/-shm
            if n not in files and not n.endswith(("-wal", "-shm"))] == []

    new = tmp_path / "new.sqlite"  # a new OUT is not created
    assert run_cli("store", "merge", str(new), str(src)) == 2
    _one_error_line(capfd.readouterr().err, f"{new} not created")
    assert not new.exists() and not list(tmp_path.glob(".new.sqlite.*"))


# -- readers of a store that already holds bad rows ----------------------------------------------
@pytest.fixture(scope="module")
def spoiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Good rows, plus every kind of bad row written past the door."""
    db = _good_store(tmp_path_factory.mktemp("spoiled") / "results.sqlite")
    for i, (changes, _field) in enumerate(BAD.values()):
        _raw_insert(db, **{"model": f"bad-{i}", **changes})
    return db


def _kakugo(*args: str) -> subprocess.CompletedProcess[str]:
    """A real process: the reader's warning is said once per store and process."""
    return subprocess.run([sys.executable, "-m", "kakugo_core", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})


def _one_warning(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if not x.startswith("wrote ")]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("kakugo: warning: ") and "Traceback" not in proc.stderr
    assert f"skipped {len(BAD)} bad row(s)" in lines[0], lines[0]


@pytest.mark.parametrize("fmt", ["table", "markdown", "csv", "json", "html", "site"])
def test_every_leaderboard_format_reads_past_bad_rows(spoiled: Path, tmp_path: Path, fmt: str
                                                      ) -> None:
    before = _digest(spoiled)
    site = tmp_path / "deep" / "site"
    proc = _kakugo("leaderboard", "--db", str(spoiled), "--format", fmt, "--baseline", "base",
                   *(["--out", str(site)] if fmt == "site" else []))
    _one_warning(proc)
    if fmt == "site":
        written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")
                   if p.is_file()}
        assert written and all(p.startswith("deep/site/") for p in written), written
        assert "deep/site/languages/jav_Latn.html" in written
        text = "".join(p.read_text("utf-8") for p in site.rglob("*.html"))
    else:
        text = proc.stdout
    assert "alpha" in text and "base" in text
    assert "bad-" not in text and "alert(1)" not in text
    if fmt == "json":
        assert set(json.loads(text)["models"]) == {"base", "alpha"}
    assert _digest(spoiled) == before


def test_store_info_and_the_python_api_skip_bad_rows(spoiled: Path) -> None:
    proc = _kakugo("store", "info", str(spoiled), "--json")
    _one_warning(proc)
    facts = json.loads(proc.stdout)
    assert (facts["rows"], facts["bad_rows"], facts["models"]) == (12, len(BAD), 2)
    assert facts["benchmarks"] == ["flores", "sib200"]
    with ResultsStore(spoiled, readonly=True) as store:
        assert len(store.rows()) == 12 and store.models() == ["alpha", "base"]
        # a cell whose only row is bad is not done: bench scores it again (and replaces it)
        assert not store.has("bad-5", "r1", "sib200", "jav_Latn", 0, "h1", engine=1)
        assert store.has("alpha", "r1", "sib200", "jav_Latn", 0, "h1", engine=1)
        with pytest.raises(BadRowError) as caught:
            store.rows(strict=True)
    assert str(spoiled) in str(caught.value)


# -- kakugo leaderboard import --------------------------------------------------------------------
CARD = """---
model-index:
- name: handmade
  results:
  - task:
      type: text-classification
    dataset:
      name: SIB-200 (Javanese)
      type: Davlan/sib200
      config: jav_Latn
    metrics:
    - type: accuracy
      value: 61.3
  - task:
      type: question-answering
    dataset:
      name: GSM8K
      type: openai/gsm8k
      config: {config}
    metrics:
    - type: exact_match
      value: {value}
---

# handmade
"""


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from hub_server import HubServer, point_client_at

    token = "hf_KakugoFakeToken_door_5e1a"
    with HubServer(tokens={token: "alice"}) as server:
        point_client_at(server, token, tmp_path, monkeypatch)
        yield server


def _card_repo(name: str, config: str, value: str) -> str:
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(f"alice/{name}")
    api.upload_file(path_or_fileobj=CARD.format(config=config, value=value).encode(),
                    path_in_repo="README.md", repo_id=f"alice/{name}")
    return f"alice/{name}"


def test_leaderboard_import_is_all_or_nothing(
        hub: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    db = _good_store(tmp_path / "results.sqlite")
    good = _card_repo("good", "jav_Latn", "0.25")
    nan = _card_repo("nan", "jav_Latn", ".nan")
    escape = _card_repo("escape", "../../../x", "0.25")
    above = _card_repo("above", "jav_Latn", "250")  # 2.5 after the percent rule: no share
    before = _digest(db)
    capfd.readouterr()
    for repo, field in ((nan, "value"), (escape, "language"), (above, "value")):
        assert run_cli("leaderboard", "import", good, repo, "--db", str(db)) == 2
        _one_error_line(capfd.readouterr().err, str(db), repr(repo), f"): {field} ",
                        "nothing was written")
        assert _digest(db) == before  # not even the good card's rows

    assert run_cli("leaderboard", "import", good, "--db", str(db)) == 0
    with ResultsStore(db, readonly=True) as store:
        rows = {(r.benchmark, r.metric): r for r in store.rows([good])}
    assert rows[("sib200", "acc")].value == pytest.approx(0.613)
    gsm = rows[("openai__gsm8k", "exact_match")]  # a dataset id is no path on the site
    assert gsm.value == 0.25 and gsm.versions["source_dataset"] == "openai/gsm8k"
