"""The one output rule (:func:`kakugo_core.files.prepare_output`): every command that writes a
file or folder refuses one of its own inputs, a folder holding what Kakugo did not make (unless
--overwrite), and the current folder, in one stderr line with nothing deleted."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from kakugo_core.errors import KakugoError
from kakugo_core.files import OUTPUT_MARKER, marked_files, prepare_output
from kakugo_core.store import ResultsStore
from tests.cli_runner import run_cli


def _fill(db: Path) -> None:
    with ResultsStore(db) as store:
        for model, value in (("base", 0.4), ("alpha", 0.6), ("gamma", 0.5)):
            store.put(model, "r1", "sib200", "jav_Latn", 0, "h1", [("acc", value, 0.03, 204)],
                      {"kakugo": "0.1.0", "backend": "transformers"})


def _sums(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder (the current one) with a results store, a git folder and a user's notes."""
    monkeypatch.chdir(tmp_path)
    _fill(tmp_path / "results.sqlite")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (tmp_path / "notes.md").write_text("my notes\n")
    return tmp_path


def _one_error(capfd: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("kakugo: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], err
    return lines[0]


def test_site_refuses_a_folder_it_did_not_make_and_deletes_nothing(work: Path, capfd) -> None:
    before = _sums(work)
    code = run_cli("leaderboard", "--db", "results.sqlite", "--format", "site", "-o", "mine")
    assert code == 0  # a new folder is fine
    (work / "mine").rename(work / "sub")  # now a folder of the user's, with a site in it
    (work / "sub" / OUTPUT_MARKER).unlink()
    capfd.readouterr()
    subtree = _sums(work / "sub")
    assert run_cli("leaderboard", "--db", "results.sqlite", "--format", "site",
                   "--out", str(work)) != 0  # the folder holding the store and .git
    _one_error(capfd, "results.sqlite", "reads")
    assert run_cli("leaderboard", "--db", "results.sqlite", "--format", "site",
                   "--out", "sub") != 0
    _one_error(capfd, "did not make", "--overwrite")
    assert _sums(work / "sub") == subtree
    assert {k: v for k, v in _sums(work).items() if not k.startswith("sub/")} == before


@pytest.mark.parametrize("where", [".", "..", "./"])
def test_site_out_dot_is_one_line_not_a_traceback(work: Path, capfd, where: str) -> None:
    before = _sums(work)
    assert run_cli("leaderboard", "--db", "results.sqlite", "--format", "site",
                   "--out", where) != 0
    _one_error(capfd, "holds results.sqlite")
    assert _sums(work) == before


def test_site_never_deletes_what_it_did_not_make(work: Path) -> None:
    assert run_cli("leaderboard", "--db", "results.sqlite", "--format", "site", "-o", "s") == 0
    site = work / "s"
    first = set(marked_files(site))
    assert first and {p for p in first if (site / p).is_file()} == first
    (site / "README-mine.txt").write_text("mine\n")  # the user adds a file to the site
    assert run_cli("leaderboard", "--db", "results.sqlite", "--format", "site", "-o", "s",
                   "-m", "alpha", "--baseline", "base") == 0
    second = set(marked_files(site))
    assert (site / "README-mine.txt").read_text() == "mine\n"
    on_disk = {str(p.relative_to(site)) for p in site.rglob("*") if p.is_file()}
    assert on_disk == second | {"README-mine.txt", OUTPUT_MARKER}  # stale pages it made: gone


def test_a_store_is_never_its_own_output(work: Path, capfd) -> None:
    before = _sums(work)
    for fmt in ("csv", "markdown", "json", "html"):
        assert run_cli("leaderboard", "--db", "results.sqlite", "--format", fmt,
                       "-o", "results.sqlite") != 0
        _one_error(capfd, "inputs")
        assert run_cli("leaderboard", "--db", "results.sqlite", "--format", fmt,
                       "-o", "./sub/../results.sqlite") != 0
        _one_error(capfd, "inputs")
    assert _sums(work) == before
    with ResultsStore(work / "results.sqlite") as store:
        assert len(store.models()) == 3


@pytest.mark.parametrize("fmt", ["html", "csv", "markdown", "json", "table"])
def test_every_format_with_out_writes_the_file(work: Path, fmt: str) -> None:
    assert run_cli("leaderboard", "--db", "results.sqlite", "--format", fmt,
                   "--out", f"board.{fmt}") == 0
    text = (work / f"board.{fmt}").read_text("utf-8")
    assert "alpha" in text and "gamma" in text


def test_prepare_output_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    (tmp_path / "store.sqlite").write_text("x")
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "a.txt").write_text("a")
    (tmp_path / "ours").mkdir()
    (tmp_path / "ours" / OUTPUT_MARKER).write_text("{}")
    (tmp_path / "ours" / "page.html").write_text("p")
    inputs = ["model", "store.sqlite", None, "org/hub-id"]
    cases = {
        ("model", "folder"): "one of this command's inputs",
        ("model/out", "folder"): "inside model",
        ("model/../store.sqlite", "file"): "one of this command's inputs",
        (".", "folder"): "holds model",
        ("theirs", "folder"): "did not make (a.txt)",
        ("theirs", "file"): "is a directory",
        ("store.sqlite/x", "file"): "cannot write store.sqlite/x: .* is a file",
        ("model/config.json", "folder"): "inside model",
        ("", "file"): "empty",
    }
    for (path, kind), message in cases.items():
        with pytest.raises(KakugoError, match=message.replace("(", r"\(").replace(")", r"\)")):
            prepare_output(path, kind=kind, inputs=inputs)  # type: ignore[arg-type]
    with pytest.raises(KakugoError, match="current folder"):
        prepare_output(".", kind="folder")
    with pytest.raises(KakugoError, match="is a file"):
        prepare_output("store.sqlite", kind="folder")
    with pytest.raises(KakugoError, match="not empty"):
        prepare_output("ours", kind="folder", empty=True)
    assert prepare_output("ours", kind="folder", inputs=inputs) == tmp_path / "ours"
    assert prepare_output("theirs", kind="folder", overwrite=True) == tmp_path / "theirs"
    assert prepare_output("theirs", kind="folder", marker="a.txt") == tmp_path / "theirs"
    assert prepare_output("new/board.md", kind="file", inputs=inputs) == \
        tmp_path / "new" / "board.md"
    with pytest.raises(KakugoError, match="inputs"):  # --overwrite never covers an input
        prepare_output("model", kind="folder", inputs=inputs, overwrite=True)
    assert _sums(tmp_path)  # nothing was created or deleted by the checks
    assert not (tmp_path / "new").exists()


def test_dataset_refuses_a_foreign_folder(tmp_path: Path, monkeypatch, capfd) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gen").mkdir()
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    assert run_cli("dataset", "jav", "--work-dir", "gen", "-o", "photos") != 0
    _one_error(capfd, "did not make (cat.jpg)")
    assert (tmp_path / "photos" / "cat.jpg").read_bytes() == b"\xff\xd8"
    assert run_cli("dataset", "-l", "jav", "--work-dir", "gen", "-o", "gen/ds") != 0
    _one_error(capfd, "inside gen")


def test_compare_export_refuses_before_generating(tmp_path: Path, monkeypatch, capfd) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "prompts.jsonl").write_text(json.dumps({"prompt": "Halo?"}) + "\n")
    (tmp_path / "review").mkdir()
    (tmp_path / "review" / "draft.txt").write_text("draft\n")
    args = ["compare", "export", "-m", "nowhere-a", "-m", "nowhere-b", "-p", "prompts.jsonl",
            "-l", "jav", "--no-progress"]
    assert run_cli(*args, "-o", "review") != 0
    _one_error(capfd, "did not make (draft.txt)")
    assert run_cli(*args, "-o", "prompts.jsonl") != 0
    _one_error(capfd, "inputs")
    assert sorted(os.listdir(tmp_path / "review")) == ["draft.txt"]


def test_tiny_model_refuses_a_foreign_folder_by_the_same_rule(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "weights.bin").write_bytes(b"theirs")
    assert run_cli("tiny-model", "-o", "m") != 0
    _one_error(capfd, "did not make (weights.bin)", "--overwrite")
    assert run_cli("tiny-model", "m", "-o", "m") != 0
    _one_error(capfd, "once")
    assert (tmp_path / "m" / "weights.bin").read_bytes() == b"theirs"


def test_release_refuses_hub_options_the_folder_target_would_ignore(tmp_path, monkeypatch,
                                                                    capfd) -> None:
    monkeypatch.chdir(tmp_path)
    base = ["release", "-m", "model", "--base", "b", "-l", "jav", "--target", "folder"]
    for extra, named in ((["--create-pr"], "--create-pr"), (["--revision", "dev"], "--revision"),
                         (["--tag", "v1"], "--tag"), (["--private"], "--private/--public"),
                         (["--create-pr", "--revision", "dev", "--tag", "v1", "--private"],
                          "--private/--public, --revision, --create-pr, --tag")):
        assert run_cli(*base, *extra) == 2
        _one_error(capfd, named, "hub target")


def test_training_request_names_one_base_model() -> None:
    """``--student ./base`` once recorded ./base at the top of training_summary.json and the
    configuration's default under options.base_model."""
    from kakugo_core.config import load_config
    from kakugo_core.training import TrainRequest

    request = TrainRequest.from_config(load_config(), "ds", "out", "./base")
    assert request.base_model == request.options["base_model"] == "./base"
    default = TrainRequest.from_config(load_config(), "ds", "out")
    assert default.base_model == default.options["base_model"] == \
        load_config()["train"]["base_model"]
