"""The content-addressed teacher cache, over the real client and the real server."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from kakugo_core.config import load_config
from kakugo_core.interfaces import Teacher, TeacherReply, TeacherRequest
from kakugo_core.teacher_cache import CachedTeacher, paid_usage, request_key
from kakugo_core.teacher_server import OpenAICompatServer, Reply
from kakugo_core.teachers import cache_file_for, make_teacher


def config_for(server: OpenAICompatServer, **teacher: Any) -> dict[str, Any]:
    settings = {"base_url": server.base_url, "model": "test-model", "concurrency": 4,
                "retry_base_s": 0.01, "max_tokens": 64, "price_input_per_mtok": 1.0,
                "price_output_per_mtok": 3.0, **teacher}
    return load_config(extra={"teacher": settings})


def ask(text: str, **params: Any) -> TeacherRequest:
    return TeacherRequest.chat([{"role": "user", "content": text}], **params)


def answer(body: dict[str, Any]) -> Reply:
    text = body["messages"][-1]["content"]
    return Reply(f"answer to {text}", reasoning=f"thinking about {text}")


def asked(server: OpenAICompatServer) -> list[str]:
    return [body["messages"][-1]["content"] for body in server.requests]


def test_second_run_is_served_from_the_cache_with_zero_requests(tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "teacher.jsonl"
    questions = [ask(f"q{i}") for i in range(6)]
    with OpenAICompatServer(answer) as server:
        first = make_teacher(config_for(server), cache)
        assert isinstance(first, CachedTeacher)
        fresh = first.complete(questions)
        first.close()
        assert len(server.requests) == 6
        server.reset_counters()

        second = make_teacher(config_for(server), cache)
        again = second.complete(questions)
        assert server.requests == []
    assert [r.content for r in again] == [r.content for r in fresh]
    assert [r.reasoning for r in again] == [f"thinking about q{i}" for i in range(6)]
    assert all(r.cached and r.cost == 0 for r in again)
    assert not any(r.cached for r in fresh)
    assert second.hits == 6 and second.calls == 0 and second.cost == 0
    assert second.saved_cost == pytest.approx(first.cost) and first.cost > 0
    assert [r.prompt_tokens for r in again] == [r.prompt_tokens for r in fresh]
    assert second.summary() == f"0 asked, 6 cached, 0 tokens, $0.0000 (saved ${first.cost:.4f})"


def test_paid_usage_is_what_the_first_asking_cost_across_runs(tmp_path: Path) -> None:
    cache = tmp_path / "c.jsonl"
    assert paid_usage(cache) == {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0,
                                 "cost": 0.0}
    with OpenAICompatServer(answer) as server:
        first = make_teacher(config_for(server), cache)
        first.complete([ask("a"), ask("b"), ask("a")])
        first.close()
        second = make_teacher(config_for(server), cache)  # a rerun: two hits, one new call
        second.complete([ask("a"), ask("b"), ask("c")])
        second.close()
    paid = paid_usage(cache)
    assert paid["calls"] == 3 == first.calls + second.calls
    assert paid["cost"] == pytest.approx(first.cost + second.cost) and second.cost > 0
    assert paid["prompt_tokens"] == first.prompt_tokens + second.prompt_tokens > 0
    assert paid["completion_tokens"] == first.completion_tokens + second.completion_tokens
    # a torn last line and a repeated key (two writers) are not paid twice
    first_line = cache.read_text("utf-8").splitlines()[0]
    with cache.open("a", encoding="utf-8") as handle:
        handle.write(first_line + "\n" + first_line[:30])
    assert paid_usage(cache) == paid


def test_stopping_early_keeps_what_arrived_and_asks_no_more(tmp_path: Path) -> None:
    with OpenAICompatServer(answer, latency=0.05) as server:
        teacher = make_teacher(config_for(server, concurrency=2), tmp_path / "c.jsonl")
        stream = teacher.complete_iter([ask(f"q{i}") for i in range(30)])
        got = [next(stream) for _ in range(3)]
        stream.close()
        time.sleep(0.2)
        sent = len(server.requests)
    assert sent <= 6
    assert len(CachedTeacher(teacher.inner, tmp_path / "c.jsonl")) >= len(got)


def test_duplicates_in_a_batch_are_asked_once(tmp_path: Path) -> None:
    with OpenAICompatServer(answer) as server:
        teacher = make_teacher(config_for(server), tmp_path / "c.jsonl")
        replies = teacher.complete([ask("a"), ask("b"), ask("a"), ask("a")])
        assert sorted(asked(server)) == ["a", "b"]
    assert [r.content for r in replies] == ["answer to a", "answer to b", "answer to a",
                                            "answer to a"]
    assert [r.cached for r in replies] == [False, False, True, True]
    assert teacher.calls == 2 and teacher.hits == 2 and teacher.requests == 4
    assert sum(r.cost for r in replies) == pytest.approx(teacher.cost)


def test_key_depends_on_parameters_model_and_messages(tmp_path: Path) -> None:
    with OpenAICompatServer(answer) as server:
        config = config_for(server)
        teacher = make_teacher(config, tmp_path / "c.jsonl")
        teacher.complete([ask("x")])
        teacher.complete([ask("x", temperature=0.5), ask("x", seed=3), ask("x", max_tokens=5),
                          TeacherRequest.chat([{"role": "system", "content": "s"},
                                               {"role": "user", "content": "x"}])])
        assert len(server.requests) == 5
        other_model = make_teacher(config_for(server, model="other"), tmp_path / "c.jsonl")
        other_model.complete([ask("x")])
        assert len(server.requests) == 6
        same = make_teacher(config_for(server, concurrency=9), tmp_path / "c.jsonl")
        same.complete([ask("x")])  # concurrency does not change answers: still cached
        assert len(server.requests) == 6
    inner = teacher.inner
    assert request_key(inner, ask("x")) == request_key(inner, ask("x"))
    assert request_key(inner, ask("x")) != request_key(inner, ask("y"))


def test_corrupt_and_truncated_lines_are_skipped_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "c.jsonl"
    questions = [ask(f"q{i}") for i in range(4)]
    with OpenAICompatServer(answer) as server:
        make_teacher(config_for(server), cache).complete(questions)
        lines = {json.loads(line)["content"]: line
                 for line in cache.read_text("utf-8").splitlines()}
        # q1's line garbled; q3's cut short as if killed mid-write (no newline at the end)
        cache.write_text(
            "\n".join([lines["answer to q0"], "{this is not json", lines["answer to q2"],
                       lines["answer to q3"][:25]]), "utf-8")
        server.reset_counters()

        with caplog.at_level(logging.WARNING, logger="kakugo"):
            teacher = make_teacher(config_for(server), cache)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "skipped 2 unreadable line(s)" in warnings[0].getMessage()
        assert teacher.skipped_lines == 2 and len(teacher) == 2

        replies = teacher.complete(questions)
        assert sorted(asked(server)) == ["q1", "q3"]
    assert [r.content for r in replies] == [f"answer to q{i}" for i in range(4)]
    # the records written after the torn line start on lines of their own
    records = []
    for line in cache.read_text("utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    assert {r["content"] for r in records} == {f"answer to q{i}" for i in range(4)}


def test_cache_hits_skip_a_teacher_that_would_fail(tmp_path: Path) -> None:
    class Exploding(Teacher):
        name = "openai"
        model = "test-model"

        @property
        def cache_params(self) -> dict[str, Any]:
            return {"default_max_tokens": 64}

        def complete(self, requests: Any) -> list[TeacherReply]:
            raise AssertionError(f"asked {len(requests)} requests")

    with OpenAICompatServer(answer) as server:
        make_teacher(config_for(server), tmp_path / "c.jsonl").complete([ask("a")])
    cached = CachedTeacher(Exploding(), tmp_path / "c.jsonl")
    assert cached.complete([ask("a")])[0].content == "answer to a"
    with pytest.raises(AssertionError, match="asked 1 requests"):
        cached.complete([ask("a"), ask("new")])


def test_cache_file_location(tmp_path: Path) -> None:
    config = load_config()
    assert cache_file_for(config, tmp_path) == tmp_path / "cache" / "teacher-cache.jsonl"
    config["teacher"]["cache_dir"] = str(tmp_path / "shared")
    assert cache_file_for(config, tmp_path / "run") == tmp_path / "shared" / "teacher-cache.jsonl"


CHILD = """
import sys
from kakugo_core.config import load_config
from kakugo_core.interfaces import TeacherRequest
from kakugo_core.teachers import make_teacher

base_url, cache, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
config = load_config(extra={"teacher": {"base_url": base_url, "model": "test-model",
                                        "concurrency": 3, "retry_base_s": 0.01,
                                        "max_tokens": 64}})
teacher = make_teacher(config, cache)
requests = [TeacherRequest.chat([{"role": "user", "content": f"q{i}"}]) for i in range(n)]
for index, reply in teacher.complete_iter(requests):
    print(index, flush=True)
"""


def test_a_killed_run_resumes_asking_only_what_was_not_answered(tmp_path: Path) -> None:
    n = 40
    cache = tmp_path / "cache.jsonl"
    script = tmp_path / "child.py"
    script.write_text(CHILD, "utf-8")
    gate = threading.Event()  # holds every call after the first n/2 until the child is dead
    lock = threading.Lock()
    served = [0]

    def gated(body: dict[str, Any]) -> Reply:
        with lock:
            served[0] += 1
            mine = served[0]
        if mine > n // 2:
            gate.wait(60)
        return answer(body)

    with OpenAICompatServer(gated, latency=0.01) as server:
        child = subprocess.Popen(
            [sys.executable, str(script), server.base_url, str(cache), str(n)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy(),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and child.poll() is None:
            if cache.exists() and cache.read_bytes().count(b"\n") >= n // 2:
                break
            time.sleep(0.01)
        while time.monotonic() < deadline and len(server.requests) < n // 2 + 3:
            time.sleep(0.01)  # the three workers' next calls arrive and are held
        assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        if child.stderr:
            child.stderr.close()
        gate.set()
        first_run = asked(server)
        answered = set()
        for line in cache.read_text("utf-8").splitlines():
            answered.add(json.loads(line)["content"].removeprefix("answer to "))
        assert len(answered) == n // 2
        assert len(first_run) == n // 2 + 3  # three calls were in flight when it died
        server.reset_counters()

        teacher = make_teacher(config_for(server), cache)
        replies = teacher.complete([ask(f"q{i}") for i in range(n)])
        second_run = asked(server)
    everything = {f"q{i}" for i in range(n)}
    assert sorted(second_run) == sorted(everything - answered)  # each exactly once
    assert set(first_run) - answered <= set(second_run)  # the lost in-flight calls, asked again
    assert [r.content for r in replies] == [f"answer to q{i}" for i in range(n)]
    assert teacher.hits == len(answered) and teacher.calls == n - len(answered)
    assert len(CachedTeacher(teacher.inner, cache)) == n  # nothing lost
