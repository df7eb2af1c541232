"""What ``kakugo bench -b`` names: registered benchmarks, declarative benchmark files and folders,
and lm-evaluation-harness tasks.

Each ``-b`` entry is, in this order: a ``.toml`` file or a folder of them (declarative
benchmarks); a ``.yaml``/``.yml`` file or ``lm-eval:NAME`` (an lm-eval task); a registered
benchmark name; the ``name`` of a declarative benchmark in a ``--tasks-dir``; a task or group in
an ``--include-path`` folder (lm-eval YAML). A file's benchmark may not take a registered name:
results are stored under the benchmark's name, and must never be attributed to another plugin.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from kakugo_core.errors import KakugoError
from kakugo_core.interfaces import Benchmark


def _is_toml(entry: str) -> bool:
    if entry.endswith(".toml"):
        return True
    return ("/" in entry or entry in (".", "..")) and Path(entry).expanduser().is_dir()


def _tasks_dir_index(tasks_dirs: Sequence[str | Path]) -> dict[str, Path]:
    from kakugo_core.toolkit.declarative import load_spec, spec_files

    index: dict[str, Path] = {}
    for folder in tasks_dirs:
        if not Path(folder).expanduser().is_dir():
            raise KakugoError(f"--tasks-dir {folder}: no such folder")
        for file in spec_files(folder):
            name = load_spec(file).name
            if name in index:
                raise KakugoError(f"{file}: name: {name!r} is also the name of {index[name]}")
            index[name] = file
    return index


def resolve_benchmarks(
    entries: Sequence[str], *, tasks_dirs: Sequence[str | Path] = (),
    include_paths: Sequence[str | Path] = (), trust_code: bool = False,
) -> list[str | Benchmark]:
    """Each ``-b`` entry as a registered name (kept as a string) or benchmark objects; lm-eval
    task files that would run Python code are refused unless ``trust_code``."""
    from kakugo_core.plugins import registry

    registered = registry("benchmarks")
    out: list[str | Benchmark] = []
    files: dict[str, Path] | None = None
    for entry in entries:
        found: list[Benchmark] = []
        if _is_toml(entry):
            from kakugo_core.toolkit.declarative import load_benchmarks

            found = list(load_benchmarks(entry))
        elif entry.endswith((".yaml", ".yml")) or entry.startswith("lm-eval:"):
            from kakugo_core.lm_eval_yaml import load_tasks

            found = list(load_tasks(entry, include_paths, trust_code))
        elif entry in registered:
            out.append(entry)
            continue
        else:
            files = _tasks_dir_index(tasks_dirs) if files is None else files
            if entry in files:
                from kakugo_core.toolkit.declarative import load_benchmarks

                found = list(load_benchmarks(files[entry]))
            else:
                from kakugo_core.lm_eval_yaml import knows, load_tasks

                if not knows(entry, include_paths, trust_code):
                    out.append(entry)  # the registry's error names the close matches
                    continue
                found = list(load_tasks(entry, include_paths, trust_code))
        for bench in found:
            if bench.name in registered:
                owner = registered.get(bench.name)
                raise KakugoError(
                    f"{entry}: benchmark name {bench.name!r} is taken by {owner.distribution} "
                    f"({owner.plugin}); rename it so its results are not stored as that one's")
        out.extend(found)
    return out

