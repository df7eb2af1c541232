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


def test_zizmor_finds_nothing_high() -> None:
    exe = zizmor()
    if exe is None:
        pytest.skip("zizmor is not installed (.ci/run installs it: pip install zizmor)")
    done = subprocess.run([exe, "--offline", "--strict-collection", "--min-severity", "high",
                           "--no-progress", "--color", "never", ".github/workflows/"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
