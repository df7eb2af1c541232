"""Run the ``kakugo`` command in-process and return its exit code (output goes to the real
stdout/stderr, so ``capfd`` sees it as a user would)."""

from __future__ import annotations

from kakugo_core.cli import main


def run_cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
