"""`kakugo release` on the command line (folder target, dry run without a token), cheap plugin
imports, and the CI recipe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import run_cli as _cli

REPO = Path(__file__).resolve().parent.parent


def test_folder_release_from_the_command_line(
    tiny_model: Path, db: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["release", "--model", str(tiny_model), "--base", "tiny/base", "-l",
            "Javanese", "--db", str(db), "--out", str(out), "--repo-id", "me/kakugo-tiny-jav"]
    assert _cli(*args) == 0
    assert "released me/kakugo-tiny-jav" in capfd.readouterr().out
    assert (out / "README.md").is_file() and (out / "model.safetensors").is_file()
    assert _cli(*args) == 0
    assert "is unchanged: nothing was committed" in capfd.readouterr().out


def test_default_repository_name_and_folder(
    tiny_model: Path, db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str]
) -> None:
    from kakugo_core.toolkit.release_files import parameter_count, size_label

    monkeypatch.chdir(tmp_path)
    assert _cli("release", "--model", str(tiny_model), "--base", "tiny/base", "-l",
                "jav", "--db", str(db)) == 0
    size = size_label(parameter_count(tiny_model))
    assert (tmp_path / "kakugo-release" / "kakugo" / f"kakugo-{size}-jav" / "README.md").is_file()
    capfd.readouterr()


def test_hub_dry_run_without_a_token_lists_every_file(
    tiny_model: Path, db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str]
) -> None:
    from huggingface_hub import constants

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    base = ["release", "--model", str(tiny_model), "--base", "tiny/base", "-l", "jav",
            "--db", str(db), "--target", "hub", "--dry-run"]
    assert _cli(*base, "--repo-id", "me/kakugo-tiny-jav") == 0
    out = capfd.readouterr().out
    assert "hub: model repository me/kakugo-tiny-jav" in out
    assert "upload     model.safetensors" in out and "upload     README.md" in out
    assert "remote not compared (no token)" in out
    assert _cli(*base) != 0
    assert "pass --repo-id" in capfd.readouterr().err
    assert not (tmp_path / "kakugo-release").exists()


def test_release_modules_are_cheap_to_import() -> None:
    code = ("import sys, releases.hub, releases.folder, kakugo_core.release, "
            "kakugo_core.commands.release\n"
            "heavy = [m for m in ('huggingface_hub', 'matplotlib', 'torch', 'transformers', "
            "'datasets') if m in sys.modules]\n"
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_ci_recipe_benches_and_releases_on_a_tag_with_the_token_as_a_secret() -> None:
    import yaml

    text = (REPO / ".github/workflows/release.yml").read_text()
    workflow = yaml.safe_load(text)
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert triggers["push"]["tags"] and "workflow_dispatch" in triggers
    job = workflow["jobs"]["release"]
    publish = next(step for step in job["steps"] if "--dry-run" not in step.get("run", "x")
                   and "--target hub" in step.get("run", ""))
    assert publish["env"]["HF_TOKEN"] == "${{ secrets.HF_TOKEN }}"  # that step's only
    runs = " ".join(step.get("run", "") for step in job["steps"])
    assert "kakugo bench" in runs and "--target hub" in runs and "--dry-run" in runs
    assert "echo $HF_TOKEN" not in runs and "echo \"$HF_TOKEN\"" not in runs
    assert text.count("secrets.") == text.count("secrets.HF_TOKEN")


def test_an_unknown_target_is_a_one_line_error(
    tiny_model: Path, db: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    code = _cli("release", "--model", str(tiny_model), "--base", "tiny/base", "-l",
                "jav", "--db", str(db), "--target", "hubb", "--out", str(tmp_path / "o"))
    err = capfd.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1
    assert "unknown release target 'hubb'" in err[0] and "Did you mean hub" in err[0]
    assert not (tmp_path / "o").exists()
