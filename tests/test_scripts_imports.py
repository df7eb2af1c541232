"""The benchmark scripts in scripts/ import Kakugo names inside their functions (so `--help` is
cheap); a moved or renamed name would break them only when someone reproduces a README number.
Every `from kakugo_core|plugins|benchmarks|releases... import name` in them must resolve."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).resolve().parent.parent / "scripts").glob("*.py"))
OURS = ("kakugo_core", "plugins", "benchmarks", "releases")


def _imports(path: Path) -> list[tuple[str, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and \
                node.module.split(".")[0] in OURS:
            found.extend((node.module, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend((alias.name, "") for alias in node.names
                         if alias.name.split(".")[0] in OURS)
    return found


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_kakugo_name_a_script_imports_exists(script: Path) -> None:
    missing = []
    for module_name, name in _imports(script):
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            missing.append(f"{module_name} ({exc})")
            continue
        if name and not hasattr(module, name):
            try:
                importlib.import_module(f"{module_name}.{name}")
            except ImportError:
                missing.append(f"{module_name}.{name}")
    assert not missing, f"{script.name} imports names that do not exist: {missing}"


def test_the_check_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def main():\n    from kakugo_core.toolkit.data import NoSuchName\n")
    assert _imports(bad) == [("kakugo_core.toolkit.data", "NoSuchName")]
    assert not hasattr(importlib.import_module("kakugo_core.toolkit.data"), "NoSuchName")
