"""Training runner: picks the student plugin, passes it the ``[train]`` options, and (for more
than one GPU) re-launches itself under ``accelerate launch``.

``python -m kakugo_core.training --request FILE`` is the per-process entry point that
``accelerate launch`` starts; ``FILE`` is a JSON :class:`TrainRequest`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kakugo_core.config import Config
from kakugo_core.errors import KakugoError


@dataclass
class TrainRequest:
    """Everything one training run needs, serialisable for the launched processes."""

    base_model: str
    dataset_dir: str
    out_dir: str
    student: str = "hf"
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Config, dataset_dir: str | Path, out_dir: str | Path,
                    base_model: str | None = None) -> TrainRequest:
        """A request from a merged configuration (``load_config``); ``base_model`` overrides
        ``train.base_model``, in the options too, so the record names one base model."""
        options = dict(config["train"])
        options["base_model"] = base_model or options["base_model"]
        return cls(
            base_model=options["base_model"],
            dataset_dir=str(dataset_dir),
            out_dir=str(out_dir),
            student=options.get("student", "hf"),
            options=options,
        )


def train(request: TrainRequest) -> Path:
    """Run the request in this process with the registered student plugin."""
    from kakugo_core.plugins import create, plugin_call

    student = create("students", request.student)
    with plugin_call("students", request.student, "train"):
        return Path(student.train(request.base_model, Path(request.dataset_dir),
                                  Path(request.out_dir), request.options))


def launch_command(request_file: Path, accelerate_config: str, num_processes: int = 0,
                   extra: Sequence[str] = ()) -> list[str]:
    """The ``accelerate launch`` command line that runs ``request_file`` on every process."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", accelerate_config]
    if num_processes:
        cmd += ["--num_processes", str(num_processes)]
    cmd += [*extra, "-m", "kakugo_core.training", "--request", str(request_file)]
    return cmd


def launch(request: TrainRequest, accelerate_config: str, num_processes: int = 0,
           extra: Sequence[str] = (), env: Mapping[str, str] | None = None) -> Path:
    """Run the request under ``accelerate launch`` and wait for it."""
    if not Path(accelerate_config).is_file():
        raise KakugoError(f"accelerate config {accelerate_config} does not exist; see "
                          "configs/accelerate/ for examples")
    # the launched processes must not re-launch themselves
    request.options = {**request.options, "accelerate_config": ""}
    fd, name = tempfile.mkstemp(prefix="kakugo-train-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(asdict(request), handle)
        cmd = launch_command(Path(name), accelerate_config, num_processes, extra)
        done = subprocess.run(cmd, env={**os.environ, **(env or {})}, check=False)
    finally:
        os.unlink(name)
    if done.returncode != 0:
        raise KakugoError(f"accelerate launch exited with status {done.returncode}; "
                          "the lines above say why")
    return Path(request.out_dir)


def run(request: TrainRequest) -> Path:
    """Train in this process, or under ``accelerate launch`` when ``accelerate_config`` is
    set."""
    config_file = request.options.get("accelerate_config", "")
    if config_file:
        return launch(request, config_file, int(request.options.get("num_processes", 0) or 0))
    return train(request)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of each launched process."""
    parser = argparse.ArgumentParser(prog="python -m kakugo_core.training")
    parser.add_argument("--request", required=True, help="JSON file with a TrainRequest")
    args = parser.parse_args(argv)
    request = TrainRequest(**json.loads(Path(args.request).read_text("utf-8")))
    try:
        train(request)
    except KakugoError as exc:
        print(f"kakugo: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
