"""Issue 25 item 10: the release workflow, which holds the Hub write token, passes a workflow
security audit: zizmor finds nothing high, no expression is expanded inside a shell script,
every action is pinned to a commit, no dependency cache, no persisted checkout credentials,
and the token reaches only the steps that need it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
TOKEN = "${{ secrets.HF_TOKEN }}"


def zizmor() -> str | None:
    """The zizmor executable: on PATH or beside this Python (``.ci/run`` installs it)."""
    beside = Path(sys.executable).parent / "zizmor"
    return str(beside) if beside.is_file() else shutil.which("zizmor")


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


@pytest.fixture(params=WORKFLOWS, ids=lambda path: path.name)
def workflow(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    text = request.param.read_text("utf-8")
    return text, yaml.safe_load(text)


def test_there_is_a_release_workflow() -> None:
    assert REPO / ".github" / "workflows" / "release.yml" in WORKFLOWS


def test_no_expression_is_expanded_inside_a_shell_script(
    workflow: tuple[str, dict[str, Any]]
) -> None:
    for step in steps(workflow[1]):
        script = step.get("run", "")
        assert "${{" not in script, f"pass it through env: instead: {step.get('name', script)}"


def test_every_action_is_pinned_to_a_commit_with_its_version(
    workflow: tuple[str, dict[str, Any]]
) -> None:
    text, data = workflow
    uses = [step["uses"] for step in steps(data) if "uses" in step]
    uses += [job["uses"] for job in data["jobs"].values() if "uses" in job]
    remote = [u for u in uses if not u.startswith(("./", "docker://"))]
    assert remote, "no action at all: the check would pass on nothing"
    for ref in remote:
        assert PINNED.match(ref), f"{ref}: pin it to a full commit hash"
        line = next(line for line in text.splitlines() if ref in line)
        assert re.search(r"#\s*v\d+\.\d+\.\d+\s*$", line), f"{ref}: say its version (# vX.Y.Z)"


def test_no_cache_and_no_persisted_credentials(workflow: tuple[str, dict[str, Any]]) -> None:
    for step in steps(workflow[1]):
        uses, options = step.get("uses", ""), step.get("with") or {}
        assert "cache" not in options, f"{uses}: no dependency cache in a publishing workflow"
        if uses.startswith("actions/checkout@"):
            assert options.get("persist-credentials") is False, uses


def test_the_hub_token_reaches_only_the_steps_that_use_it(
    workflow: tuple[str, dict[str, Any]]
) -> None:
    text, data = workflow
    assert "HF_TOKEN" not in (data.get("env") or {})
    assert all("HF_TOKEN" not in (job.get("env") or {}) for job in data["jobs"].values())
    given = [step for step in steps(data) if (step.get("env") or {}).get("HF_TOKEN") == TOKEN]
    for step in steps(data):
        if step in given:
            assert "uses" not in step and re.search(r"\b(hf|kakugo)\b", step["run"]), step
            assert "pip install" not in step["run"] and "--dry-run" not in step["run"], step
    assert text.count("${{ secrets.") == len(given)  # no other secret, nowhere else


def run_settings(tmp_path: Path, event: str, **env: str) -> tuple[int, dict[str, str]]:
    """Run the release workflow's "settings" script as GitHub would (``bash -eo pipefail``),
    ``kakugo`` a stand-in that accepts any language; its exit code and step outputs."""
    workflow = yaml.safe_load((REPO / ".github/workflows/release.yml").read_text("utf-8"))
    script = next(s for s in steps(workflow) if s.get("id") == "settings")["run"]
    (tmp_path / "bin").mkdir(exist_ok=True)
    (tmp_path / "bin" / "kakugo").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "bin" / "kakugo").chmod(0o755)
    outputs = tmp_path / "outputs"
    outputs.write_text("")
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=tmp_path,
        env={"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "GITHUB_OUTPUT": str(outputs),
             "EVENT": event, **env}, capture_output=True, text=True, timeout=60)
    pairs = (line.split("=", 1) for line in outputs.read_text().splitlines())
    return done.returncode, dict(pairs)


def test_the_settings_script_checks_what_it_is_given(tmp_path: Path) -> None:
    good = {"INPUT_LANGUAGE": "Haitian Creole", "INPUT_LIMIT": "70", "INPUT_DRY_RUN": "true"}
    assert run_settings(tmp_path, "workflow_dispatch", **good) == (0, {
        "language": "Haitian Creole", "limit": "70", "dry_run": "true", "tag": ""})
    assert run_settings(tmp_path, "push", GITHUB_REF_NAME="jav-v2") == (0, {
        "language": "jav", "limit": "0", "dry_run": "false", "tag": "jav-v2"})
    hostile = [{"INPUT_LANGUAGE": 'x"; touch pwned; echo "'},
               {"INPUT_LANGUAGE": "$(touch pwned)"},
               {"INPUT_LANGUAGE": "jav\ntag=evil"},
               {"INPUT_LIMIT": "1; touch pwned"},
               {"INPUT_DRY_RUN": "false\nlanguage=evil"}]
    for change in hostile:
        code, outputs = run_settings(tmp_path, "workflow_dispatch", **{**good, **change})
        assert code != 0 and outputs == {}, change
    code, outputs = run_settings(tmp_path, "push", GITHUB_REF_NAME="jav-v1$(touch pwned)")
    assert code != 0 and outputs == {}
    assert not (tmp_path / "pwned").exists()


def test_zizmor_finds_nothing_high() -> None:
    exe = zizmor()
    if exe is None:
        pytest.skip("zizmor is not installed (.ci/run installs it: pip install zizmor)")
    done = subprocess.run([exe, "--offline", "--strict-collection", "--min-severity", "high",
                           "--no-progress", "--color", "never", ".github/workflows/"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
