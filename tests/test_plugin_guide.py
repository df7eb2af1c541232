"""The plugin author's guide (docs/plugins.md), run as a new plugin author would: every package
file is extracted from the page, installed with pip as shown, and driven through `kakugo`."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
GUIDE = (REPO / "docs" / "plugins.md").read_text("utf-8")
FILE_BLOCK = re.compile(r"^`(kakugo-[a-z]+/[^`]+)`:\n\n```[a-z]*\n(.*?)^```", re.M | re.S)


def guide_files() -> dict[str, str]:
    """``{relative path: content}`` of every package file shown in the guide."""
    return {path: body for path, body in FILE_BLOCK.findall(GUIDE)}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The guide's four packages, written from the page and pip-installed into one folder."""
    root = tmp_path_factory.mktemp("guide")
    files = guide_files()
    for rel, body in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(body, "utf-8")
    projects = sorted({rel.split("/")[0] for rel in files})
    assert projects == ["kakugo-canned", "kakugo-hello", "kakugo-sports", "kakugo-zipdrop"]
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(root / "site"), *(str(root / p) for p in projects)],
        check=True, capture_output=True, timeout=600)
    return root / "site"


def kakugo(site: Path, *args: str, plugins: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAKUGO_")}
    env.update(PYTHONPATH=os.pathsep.join([str(site), str(REPO)]), KAKUGO_LOAD_PLUGINS=plugins,
               KAKUGO_DB=str(cwd / "default.sqlite"))
    return subprocess.run([sys.executable, "-m", "kakugo_core", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=900)


def test_the_sports_module_is_at_most_about_thirty_lines() -> None:
    code = [line for line in guide_files()["kakugo-sports/kakugo_sports/__init__.py"].splitlines()
            if line.strip()]
    assert len(code) <= 33, len(code)


def test_hello_benchmark_covers_its_languages_and_benches(site: Path, tmp_path: Path,
                                                          tiny_model: Path) -> None:
    listed = kakugo(site, "plugins", "--json", plugins="kakugo-hello", cwd=tmp_path)
    hello = {p["name"]: p for p in json.loads(listed.stdout)["plugins"]}["hello"]
    assert hello["aliases"] == {"greeting": ["hello"]}
    assert hello["problems"] == []
    assert kakugo(site, "hello", plugins="kakugo-hello", cwd=tmp_path).stdout.strip() == \
        "hello from kakugo-hello"
    db = tmp_path / "r.sqlite"
    run = kakugo(site, "bench", "-m", str(tiny_model), "-b", "greeting", "-l", "Javanese",
                 "--db", str(db), "--no-progress", plugins="kakugo-hello", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT benchmark, language FROM results").fetchall() == [
            ("greeting", "jav_Latn")]
    refused = kakugo(site, "bench", "-m", str(tiny_model), "-b", "greeting", "-l", "sun_Latn",
                     "--db", str(db), plugins="kakugo-hello", cwd=tmp_path)
    assert refused.returncode != 0 and "greeting does not cover Sundanese" in refused.stderr


@pytest.mark.slow
def test_sports_benchmark_benches_stores_ranks_and_reaches_the_card(
        site: Path, tmp_path: Path, tiny_model: Path, sib200_dir: Path) -> None:
    data = tmp_path / "data" / "sports" / "jav_Latn"
    data.mkdir(parents=True)
    for split in ("test", "train"):
        shutil.copy(sib200_dir / "jav_Latn" / f"{split}.tsv", data / f"{split}.tsv")
    db = tmp_path / "r.sqlite"
    student = tmp_path / "student"
    shutil.copytree(tiny_model, student)
    for model in (str(tiny_model), str(student)):
        run = kakugo(site, "bench", "-m", model, "-b", "sports", "-l", "jav_Latn", "--data-dir",
                     str(tmp_path / "data"), "--limit", "30", "--n-shot", "1", "--db", str(db),
                     "--no-progress", plugins="kakugo-sports", cwd=tmp_path)
        assert run.returncode == 0, run.stderr
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT metric, n, versions FROM results WHERE benchmark='sports'"
                            ).fetchall()
    assert {(m, n) for m, n, _ in rows} == {("acc", 30)}
    versions = json.loads(rows[0][2])
    assert versions["benchmark_plugin"] == "kakugo-sports"
    assert versions["benchmark_plugin_version"] == "1.2.0"
    board = kakugo(site, "leaderboard", "--db", str(db), "--format", "json",
                   plugins="kakugo-sports", cwd=tmp_path)
    assert board.returncode == 0, board.stderr
    assert "sports" in board.stdout
    out = tmp_path / "release"
    release = kakugo(site, "release", "--model", str(student), "--base", str(tiny_model),
                     "-l", "jav_Latn", "--db", str(db), "--repo-id", "me/sports-demo",
                     "--out", str(out), plugins="kakugo-sports", cwd=tmp_path)
    assert release.returncode == 0, release.stderr
    card = (out / "README.md").read_text("utf-8")
    assert "Sports detection" in card and "Sports or not" in card
    assert "Davlan/sib200" in card


def test_canned_teacher_gets_its_settings(site: Path, tmp_path: Path) -> None:
    replies = tmp_path / "replies.jsonl"
    replies.write_text('{"content": "Sugeng enjing!"}\n', "utf-8")
    asked = kakugo(site, "teacher", "--set", "teacher.plugin=canned", "--set",
                   f"teacher.canned.replies_file={replies}", "--json", plugins="kakugo-canned",
                   cwd=tmp_path)
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)["content"] == "Sugeng enjing!"

    shown = json.loads(kakugo(site, "config", plugins="kakugo-canned", cwd=tmp_path).stdout)
    assert shown["teacher"]["canned"] == {"replies_file": "", "repeat": 1}
    listed = json.loads(kakugo(site, "plugins", "--json", plugins="kakugo-canned",
                               cwd=tmp_path).stdout)
    canned = {p["name"]: p for p in listed["plugins"]}["canned"]
    assert canned["settings"]["teachers"]["canned"][1]["min"] == 1

    for args, message in [
        (["--set", "teacher.canned.repeat=0"], "'teacher.canned.repeat' must be at least 1"),
        (["--set", "teacher.canned.repeat=two"], "'teacher.canned.repeat' must be int"),
        (["--set", "teacher.canned.colour=red"], "unknown key 'teacher.canned.colour'"),
    ]:
        bad = kakugo(site, "config", *args, plugins="kakugo-canned", cwd=tmp_path)
        assert bad.returncode != 0
        lines = bad.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], bad.stderr
    missing = kakugo(site, "teacher", "--set", "teacher.plugin=canned", plugins="kakugo-canned",
                     cwd=tmp_path)
    assert missing.returncode != 0
    assert "'teacher.canned.replies_file' is required" in missing.stderr
    assert "Traceback" not in missing.stderr


@pytest.mark.slow
def test_zip_target_releases_and_dry_runs_without_describe(
        site: Path, tmp_path: Path, tiny_model: Path) -> None:
    db = tmp_path / "r.sqlite"
    run = kakugo(site, "bench", "-m", str(tiny_model), "-b", "sib200", "-l", "jav_Latn",
                 "--limit", "14", "--n-shot", "0", "--db", str(db), "--no-progress",
                 plugins="kakugo-zipdrop", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    common = ["release", "--model", str(tiny_model), "--base", str(tiny_model), "-l",
              "jav_Latn", "--db", str(db), "--target", "zipdrop", "--repo-id", "me/zipped",
              "--set", f"release.zipdrop.archive_dir={tmp_path / 'zips'}"]
    dry = kakugo(site, *common, "--dry-run", plugins="kakugo-zipdrop", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert re.search(r"upload README\.md \(\d+ bytes\)", dry.stdout)
    assert not (tmp_path / "zips").exists()
    done = kakugo(site, *common, plugins="kakugo-zipdrop", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(tmp_path / "zips" / "me--zipped.zip") as archive:
        names = archive.namelist()
    assert "README.md" in names and "model.safetensors" in names
