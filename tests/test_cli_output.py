"""What the command line prints: one-line usage errors in the same style as every other error,
and `kakugo bench` showing each language's cell beside the mean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def _kakugo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kakugo_core", *args], capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("args,names", [
    (["bench", "-b", "sib200", "-l", "jav_Latn"], "-m/--model"),
    (["bench"], "--languages"),
    (["leaderboard", "--no-such-option"], "--no-such-option"),
    (["no-such-command"], "no-such-command"),
])
def test_usage_errors_are_one_kakugo_error_line(args: list[str], names: str) -> None:
    result = _kakugo(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # not Click's usage block
    assert lines[0].startswith("kakugo: error: ") and names in lines[0]
    assert "--help" in lines[0] and "Usage:" not in result.stderr


def test_bench_shows_every_language_beside_the_mean(tiny_model: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from kakugo_core.cli import cli

    result = CliRunner().invoke(cli, [
        "bench", "-m", str(tiny_model), "-b", "sib200", "-l", "jav_Latn,sun_Latn",
        "--limit", "4", "--n-shot", "0", "--db", str(tmp_path / "r.sqlite"), "--no-progress"],
        env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for header in ("sib200 acc (%) n=8 (2 langs)", "sib200 acc jav_Latn (%) n=4",
                   "sib200 acc sun_Latn (%) n=4"):
        assert header in result.output, result.output
