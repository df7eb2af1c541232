"""Throughput of the ``openai`` teacher against a local server with a fixed per-request latency.

For each concurrency level the client sends ``rounds x concurrency`` requests to
:class:`kakugo_core.teacher_server.OpenAICompatServer`, which sleeps ``--latency`` seconds per
request and runs in its own process (as a real inference server would, so its threads do not
compete with the client for the GIL). It prints achieved requests/s over the ideal
``concurrency / latency``. A named competitor runs the same load: a ``ThreadPoolExecutor`` of
stdlib ``urllib`` workers (what one writes without an async client); the teacher also runs
behind the on-disk cache (which fsyncs every group of replies) and with its optional aiohttp
client. Target: ratio >= 0.9 at concurrency 64.

    python scripts/bench_teacher_throughput.py [--latency 0.2] [--rounds 10] [--max 64]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from kakugo_core.interfaces import TeacherRequest
from kakugo_core.teacher_cache import CachedTeacher


@contextmanager
def server_process(latency: float) -> Iterator[str]:
    """Start ``python -m kakugo_core.teacher_server`` on a free port; yield its base URL."""
    command = [sys.executable, "-m", "kakugo_core.teacher_server", "--port", "0",
               "--latency", str(latency)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline() if process.stdout else ""
        if not line.startswith("serving "):
            raise SystemExit(f"the server did not start: {line!r}")
        yield line.split()[1]
    finally:
        process.terminate()
        process.wait(10)


def requests_for(level: int, rounds: int, tag: str) -> list[TeacherRequest]:
    return [
        TeacherRequest.chat([{"role": "user", "content": f"{tag} request {i} at {level}"}])
        for i in range(level * rounds)
    ]


def run_teacher(
    base_url: str, level: int, rounds: int, cache_dir: Path | None, http_client: str = "httpx"
) -> float:
    from plugins.teachers._openai_client import OpenAITeacher

    teacher = OpenAITeacher(model="bench", base_url=base_url, concurrency=level, max_tokens=16,
                            http_client=http_client)
    batch = requests_for(level, rounds, f"{http_client} {'cache' if cache_dir else 'plain'}")
    client = CachedTeacher(teacher, cache_dir / f"c{level}.jsonl") if cache_dir else teacher
    client.complete(requests_for(level, 1, f"warm-up {cache_dir}"))  # imports, TLS context
    started = time.perf_counter()
    replies = client.complete(batch)
    elapsed = time.perf_counter() - started
    assert len(replies) == len(batch) and all(r.content for r in replies)
    return len(batch) / elapsed


def run_threads(base_url: str, level: int, rounds: int) -> float:
    batch = requests_for(level, rounds, "threads")
    url = f"{base_url}/chat/completions"

    def one(request: TeacherRequest) -> str:
        data = json.dumps({"model": "bench", "messages": request.as_messages()}).encode()
        call = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(call, timeout=60) as response:
            return str(json.load(response)["choices"][0]["message"]["content"])

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=level) as pool:
        answers = list(pool.map(one, batch))
    elapsed = time.perf_counter() - started
    assert len(answers) == len(batch)
    return len(batch) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="server seconds per request")
    parser.add_argument("--rounds", type=int, default=10, help="requests per worker per level")
    parser.add_argument("--max", type=int, default=64, help="highest concurrency level")
    args = parser.parse_args()

    levels = [1]
    while levels[-1] * 2 <= args.max:
        levels.append(levels[-1] * 2)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average {load:.1f}, "
          f"python {platform.python_version()}; latency {args.latency * 1000:.0f} ms, "
          f"{args.rounds} rounds per level")
    runs: dict[str, Callable[[str, int], float]] = {
        "teacher": lambda url, c: run_teacher(url, c, args.rounds, None),
        "teacher+cache": lambda url, c: run_teacher(url, c, args.rounds, Path(tmp)),
        "teacher/aiohttp": lambda url, c: run_teacher(url, c, args.rounds, None, "aiohttp"),
        "urllib-threads": lambda url, c: run_threads(url, c, args.rounds),
    }
    if importlib.util.find_spec("aiohttp") is None:
        del runs["teacher/aiohttp"]
    print(f"{'conc':>5} {'ideal r/s':>10}" + "".join(f" {name:>16} {'ratio':>6}" for name in runs))
    with server_process(args.latency) as base_url, tempfile.TemporaryDirectory() as tmp:
        for level in levels:
            ideal = level / args.latency
            rates = {name: run(base_url, level) for name, run in runs.items()}
            print(f"{level:>5} {ideal:>10.1f}" + "".join(
                f" {rate:>16.1f} {rate / ideal:>6.3f}" for rate in rates.values()), flush=True)
    last = levels[-1]
    for name in runs:
        if name.startswith("teacher"):
            ratio = rates[name] / (last / args.latency)
            verdict = "meets" if ratio >= 0.9 else "MISSES"
            print(f"{name} at concurrency {last}: {ratio:.3f} of ideal ({verdict} the 0.9 target);"
                  f" {rates[name] / rates['urllib-threads']:.2f}x urllib-threads")


if __name__ == "__main__":
    main()
