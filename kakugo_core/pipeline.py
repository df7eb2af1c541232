"""Stage bookkeeping for ``kakugo run``: one sub-folder per stage, each with a manifest.

A manifest records the stage's inputs (a hash over its configuration and the manifests of the
stages it reads), the plugin versions, counts, cost, status and timings. A stage whose manifest
says ``done`` with the same input hash is skipped; any other state runs the stage again, and the
stage itself resumes from what it left on disk (teacher cache, JSONL rows, training checkpoints).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kakugo_core.errors import KakugoError
from kakugo_core.files import write_json_atomic

STAGES = ("generate", "dataset", "train", "bench", "release")
MANIFEST = "manifest.json"
#: the lock one ``kakugo run`` holds on its run folder for as long as it runs
LOCK_FILE = ".kakugo-run.lock"

try:  # POSIX; on Windows the lock file names its holder but does not exclude a second run
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

#: run folders this process holds (resolved path -> depth), so nested holders do not clash
_held: dict[str, int] = {}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def fingerprint(*parts: Any) -> str:
    """A stable hash of JSON-serialisable parts."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Manifest:
    """What one stage did, as stored in ``<run>/<stage>/manifest.json``."""

    stage: str
    status: str = "pending"  # pending | running | done | failed
    inputs_hash: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    plugins: dict[str, str] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    cost_usd: float = 0.0
    started: str = ""
    finished: str = ""
    seconds: float = 0.0
    attempts: int = 0
    error: str = ""

    @classmethod
    def load(cls, stage_dir: Path) -> Manifest:
        path = stage_dir / MANIFEST
        if not path.exists():
            return cls(stage=stage_dir.name)
        try:
            data = json.loads(path.read_text("utf-8"))
            manifest = cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
            kinds: dict[str, type | tuple[type, ...]] = {
                "status": str, "counts": dict, "config": dict, "plugins": dict,
                "seconds": (int, float), "cost_usd": (int, float), "attempts": int,
                "error": str, "inputs_hash": str}
            if any(not isinstance(getattr(manifest, k), t) for k, t in kinds.items()):
                raise TypeError("a field of the wrong type")
            return manifest
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError, AttributeError):
            return cls(stage=stage_dir.name, status="failed", error="unreadable manifest")
        except OSError as exc:
            return cls(stage=stage_dir.name, status="failed",
                       error=f"unreadable manifest ({exc.strerror})")

    def save(self, stage_dir: Path) -> None:
        stage_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(stage_dir / MANIFEST, self.__dict__)


@dataclass
class StageOutcome:
    """What a stage function reports back."""

    counts: dict[str, Any] = field(default_factory=dict)
    cost_usd: float = 0.0


StageFunction = Callable[[Path], StageOutcome]


class RunFolder:
    """A run folder for one language: ``<root>/<stage>/`` with manifests."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def stage_dir(self, stage: str) -> Path:
        return self.root / stage

    def manifest(self, stage: str) -> Manifest:
        return Manifest.load(self.stage_dir(stage))

    def is_current(self, stage: str, inputs_hash: str) -> bool:
        """Whether the stage finished before with exactly these inputs."""
        m = self.manifest(stage)
        return m.status == "done" and m.inputs_hash == inputs_hash

    def run_stage(
        self,
        stage: str,
        inputs_hash: str,
        function: StageFunction,
        config: Mapping[str, Any],
        plugins: Mapping[str, str],
        force: bool = False,
    ) -> tuple[Manifest, bool]:
        """Run ``function`` unless the stage is current; return its manifest and whether it ran."""
        stage_dir = self.stage_dir(stage)
        if not force and self.is_current(stage, inputs_hash):
            return self.manifest(stage), False
        previous = self.manifest(stage)
        manifest = Manifest(
            stage=stage, status="running", inputs_hash=inputs_hash, config=dict(config),
            plugins=dict(plugins), started=_now(), attempts=previous.attempts + 1,
        )
        manifest.save(stage_dir)
        start = time.monotonic()
        try:
            outcome = function(stage_dir)
        except BaseException as exc:
            manifest.status = "failed" if isinstance(exc, Exception) else "interrupted"
            manifest.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
            manifest.seconds = round(time.monotonic() - start, 2)
            manifest.finished = _now()
            manifest.save(stage_dir)
            raise
        manifest.status = "done"
        manifest.counts = outcome.counts
        manifest.cost_usd = outcome.cost_usd
        manifest.seconds = round(time.monotonic() - start, 2)
        manifest.finished = _now()
        manifest.save(stage_dir)
        return manifest, True

    def manifests(self) -> list[Manifest]:
        return [self.manifest(stage) for stage in STAGES]


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``<run_dir>/.kakugo-run.lock`` (an OS lock, released by the kernel when the process
    dies, so a killed run leaves nothing that blocks) across a whole run; the file names the
    holder (pid, host, start time). Another process is refused with a :class:`KakugoError`
    that names the holder; within one process the lock is re-entrant."""
    key = str(run_dir.resolve())
    if _held.get(key):
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        handle = open(run_dir / LOCK_FILE, "a+", encoding="utf-8",  # noqa: SIM115
                      errors="replace")
    except OSError as exc:
        raise KakugoError(f"cannot lock run folder {run_dir}: {exc.strerror or exc}") from None
    with handle:
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.seek(0)
                raise KakugoError(f"run folder {run_dir} is in use by another `kakugo run` "
                                  f"({_holder(handle.read())}); wait for it or stop it first"
                                  ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "since": _now()}) + "\n")
        handle.flush()
        _held[key] = 1
        try:
            yield
        finally:
            del _held[key]
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _holder(text: str) -> str:
    """``pid 123 on host since 2026-...`` from a lock file's content."""
    try:
        data = json.loads(text)
        return f"pid {int(data['pid'])} on {data['host']} since {data['since']}"
    except (ValueError, KeyError, TypeError):
        return "its process id not written yet"
