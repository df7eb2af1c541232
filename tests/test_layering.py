"""The layering contracts (pyproject's [tool.importlinter]) hold, can fail, and classify every
module of kakugo_core as public or internal."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

REPO = Path(__file__).resolve().parent.parent
PUBLIC = {"kakugo_core.config", "kakugo_core.errors", "kakugo_core.hookspecs",
          "kakugo_core.interfaces", "kakugo_core.languages", "kakugo_core.plugins",
          "kakugo_core.testing", "kakugo_core.toolkit"}
LINT_IMPORTS = [sys.executable, "-c", "import sys; from importlinter.cli import "
                "lint_imports_command; sys.exit(lint_imports_command())"]


def _contracts() -> list[dict]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LINT_IMPORTS, "--no-cache"], cwd=root, capture_output=True, text=True,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}, timeout=300)


def test_the_layering_contracts_are_kept() -> None:
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


def test_every_core_module_is_public_or_listed_as_internal() -> None:
    internal = set(next(c for c in _contracts() if "public API" in c["name"])["forbidden_modules"])
    modules = {f"kakugo_core.{p.stem}" for p in (REPO / "kakugo_core").glob("*.py")
               if p.stem != "__init__"} | {
               f"kakugo_core.{p.name}" for p in (REPO / "kakugo_core").iterdir()
               if (p / "__init__.py").is_file()}
    unclassified = modules - PUBLIC - internal
    assert not unclassified, f"classify these in pyproject's importlinter contract: {unclassified}"
    assert not PUBLIC & internal


def test_a_core_import_of_a_plugin_breaks_the_contract(tmp_path: Path) -> None:
    """The check can fail: the same contracts over a copy whose core reaches into plugins/."""
    for name in ("kakugo_core", "plugins", "benchmarks", "releases"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns(
            "__pycache__", "data", "templates"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "kakugo_core" / "sneaky.py").write_text(
        "def f():\n    from plugins.students import _sft\n    return _sft\n")
    (tmp_path / "benchmarks" / "sneaky.py").write_text("import kakugo_core.scoring\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "The core does not depend on its built-in plugins BROKEN" in result.stdout
    assert "kakugo_core.sneaky -> plugins.students._sft" in result.stdout
    assert "public API (what third parties get) BROKEN" in result.stdout
