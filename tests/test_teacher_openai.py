"""The ``openai`` teacher against the real OpenAI-compatible server over HTTP on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import json
import logging
import threading
import time
from typing import Any

import pytest

from kakugo_core.errors import ConfigError
from kakugo_core.interfaces import TeacherRequest
from kakugo_core.plugins import create
from kakugo_core.teacher_server import Fault, FaultPlan, OpenAICompatServer, Reply, echo_responder
from kakugo_core.teachers import TeacherRequestError, TeacherUnavailableError

HAS_AIOHTTP = importlib.util.find_spec("aiohttp") is not None
HTTP_CLIENT = {"name": "httpx"}


@pytest.fixture(autouse=True, params=[
    "httpx",
    pytest.param("aiohttp", marks=pytest.mark.skipif(not HAS_AIOHTTP, reason="no aiohttp")),
])
def http_client(request: pytest.FixtureRequest) -> Any:
    """Every test runs with each HTTP client the teacher offers."""
    HTTP_CLIENT["name"] = request.param
    yield request.param
    HTTP_CLIENT["name"] = "httpx"


def teacher(server: OpenAICompatServer, **options: Any) -> Any:
    """The registered ``openai`` teacher pointed at ``server``, with fast retries."""
    settings: dict[str, Any] = {
        "model": "test-model", "base_url": server.base_url, "api_key_env": "KAKUGO_TEST_KEY",
        "concurrency": 4, "max_retries": 4, "timeout_s": 5.0, "max_tokens": 64,
        "retry_base_s": 0.01, "retry_max_s": 5.0, "http_client": HTTP_CLIENT["name"],
    }
    settings.update(options)
    return create("teachers", "openai", **settings)


def ask(text: str, **params: Any) -> TeacherRequest:
    return TeacherRequest.chat([{"role": "user", "content": text}], **params)


def test_replies_in_order_with_usage_cost_and_the_request_body() -> None:
    with OpenAICompatServer(echo_responder) as server:
        client = teacher(server, price_input_per_mtok=2.0, price_output_per_mtok=10.0)
        requests = [
            TeacherRequest.chat(
                [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"q {i}"}],
                temperature=0.7, top_p=0.9, seed=i,
            )
            for i in range(10)
        ]
        replies = client.complete(requests)
        bodies = {b["messages"][-1]["content"]: b for b in server.requests}
    assert [r.content for r in replies] == [f"echo: q {i}" for i in range(10)]
    first = replies[0]
    assert (first.prompt_tokens, first.completion_tokens) == (4, 3)  # words: "Be brief." "q 0"
    assert first.cost == pytest.approx((4 * 2.0 + 3 * 10.0) / 1e6)
    assert client.cost == pytest.approx(10 * first.cost)
    assert client.calls == 10 and client.retries == 0
    body = bodies["q 3"]
    assert body["model"] == "test-model"
    assert body["temperature"] == 0.7 and body["top_p"] == 0.9 and body["seed"] == 3
    assert body["max_tokens"] == 64  # the teacher's default when the request sets none
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert all(h.get("Content-Type") == "application/json" for h in server.headers)


def test_unknown_http_client_is_a_clear_error() -> None:
    with OpenAICompatServer() as server, pytest.raises(ConfigError, match="http_client"):
        teacher(server, http_client="curl")


def test_request_max_tokens_wins_over_the_default() -> None:
    with OpenAICompatServer() as server:
        teacher(server).complete([ask("x", max_tokens=7)])
        assert server.requests[0]["max_tokens"] == 7


@pytest.mark.parametrize("form", ["reasoning_content", "reasoning", "think", "harmony",
                                  "harmony_plain"])
def test_reasoning_is_captured_in_every_form(form: str) -> None:
    def responder(body: dict[str, Any]) -> Reply:
        return Reply("Sugeng enjing!", reasoning="The user greets me.", reasoning_format=form)

    with OpenAICompatServer(responder) as server:
        (reply,) = teacher(server).complete([ask("Good morning")])
    assert reply.content == "Sugeng enjing!"
    assert reply.reasoning == "The user greets me."


def test_server_errors_are_retried_until_success() -> None:
    plan = FaultPlan(echo_responder, [Fault(status=500), Fault(status=502), Fault(status=503)])
    with OpenAICompatServer(plan) as server:
        client = teacher(server)
        (reply,) = client.complete([ask("hello")])
        assert len(server.requests) == 4
    assert reply.content == "echo: hello"
    assert client.retries == 3


def test_timeout_then_success() -> None:
    plan = FaultPlan(echo_responder, [Fault(delay=6.0)])
    with OpenAICompatServer(plan) as server:
        client = teacher(server, timeout_s=0.3)
        started = time.monotonic()
        (reply,) = client.complete([ask("slow")])
        elapsed = time.monotonic() - started
        assert len(server.requests) == 2
    assert reply.content == "echo: slow"
    assert 0.3 <= elapsed < 5.0  # gave up on the slow call instead of waiting it out (6 s)
    assert client.retries == 1


def test_retry_after_is_honoured() -> None:
    plan = FaultPlan(echo_responder, [Fault(status=429, retry_after=1)])
    with OpenAICompatServer(plan) as server:
        client = teacher(server)
        started = time.monotonic()
        (reply,) = client.complete([ask("busy?")])
        waited = time.monotonic() - started
    assert reply.content == "echo: busy?"
    assert 1.0 <= waited < 4.0, waited  # backoff alone would have waited ~0.01 s


def test_without_retry_after_backoff_is_short_and_grows() -> None:
    plan = FaultPlan(echo_responder, [Fault(status=429)] * 3)
    with OpenAICompatServer(plan) as server:
        client = teacher(server, retry_base_s=0.05)
        started = time.monotonic()
        client.complete([ask("busy?")])
        waited = time.monotonic() - started
    # 0.025-0.05, 0.05-0.1, 0.1-0.2 seconds: exponential with jitter
    assert 0.17 <= waited < 3.0, waited  # loose upper bound: CI machines are shared
    delays = [client.backoff(5, None) for _ in range(50)]
    assert all(0.8 <= d <= 1.6 for d in delays) and len(set(delays)) > 1
    assert client.backoff(0, retry_after=100.0) == 5.0  # capped at retry_max_s


def test_malformed_json_and_dropped_connections_are_retried_and_counted() -> None:
    plan = FaultPlan(echo_responder, [
        Fault(malformed=True),
        Fault(drop=True),
        Fault(body=b'{"object": "error", "detail": "no choices here"}'),
    ])
    with OpenAICompatServer(plan) as server:
        client = teacher(server)
        (reply,) = client.complete([ask("hi")])
        assert len(server.requests) == 4
    assert reply.content == "echo: hi"
    assert client.malformed == 2  # the broken JSON and the JSON without choices
    assert client.retries == 3


def test_a_refused_request_is_one_line_and_not_retried() -> None:
    plan = FaultPlan(echo_responder, [Fault(status=400, message="This model's maximum context\n"
                                                            "length is 8192 tokens.")])
    with OpenAICompatServer(plan) as server:
        client = teacher(server)
        with pytest.raises(TeacherRequestError) as info:
            client.complete([ask("a very long prompt")])
        assert len(server.requests) == 1
    message = str(info.value)
    assert "\n" not in message
    assert "HTTP 400" in message and "maximum context length is 8192 tokens" in message


def test_retries_run_out_with_one_line_error() -> None:
    plan = FaultPlan(echo_responder, [Fault(status=503, message="overloaded")] * 10)
    with OpenAICompatServer(plan) as server:
        client = teacher(server, max_retries=2)
        with pytest.raises(TeacherUnavailableError) as info:
            client.complete([ask("x")])
        assert len(server.requests) == 3
    assert "failed 3 times" in str(info.value) and "overloaded" in str(info.value)
    assert "\n" not in str(info.value)


def test_an_unreachable_server_is_retried_then_reported() -> None:
    with OpenAICompatServer() as server:
        closed = teacher(server, max_retries=1)
    started = time.monotonic()
    with pytest.raises(TeacherUnavailableError, match="connection failed"):
        closed.complete([ask("anyone?")])
    assert closed.retries == 1 and time.monotonic() - started < 5


def test_api_key_goes_in_the_header_and_nowhere_else(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = "sk-kakugo-SECRET-0123456789"
    monkeypatch.setenv("KAKUGO_TEST_KEY", secret)
    caplog.set_level(logging.DEBUG)  # every logger, httpx's and httpcore's included
    plan = FaultPlan(echo_responder, [Fault(status=500), Fault(status=429, retry_after=0)])
    with OpenAICompatServer(plan, api_key=secret) as server:
        client = teacher(server)
        replies = client.complete([ask("hello"), ask("again")])
        assert [h.get("Authorization") for h in server.headers] == [f"Bearer {secret}"] * 4
        monkeypatch.setenv("KAKUGO_TEST_KEY", "sk-wrong")
        with pytest.raises(TeacherRequestError) as info:
            teacher(server).complete([ask("x")])
    assert [r.content for r in replies] == ["echo: hello", "echo: again"]
    assert "HTTP 401" in str(info.value) and "KAKUGO_TEST_KEY" in str(info.value)
    assert caplog.records, "expected retry warnings and httpx debug logs to be captured"
    captured = capsys.readouterr()
    for text in (caplog.text, captured.out, captured.err, repr(client), str(info.value),
                 json.dumps(vars(client), default=str)):
        assert secret not in text
        assert "sk-wrong" not in text


def test_no_key_set_sends_no_authorization_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAKUGO_TEST_KEY", raising=False)
    with OpenAICompatServer() as server:
        teacher(server).complete([ask("x")])
        assert "Authorization" not in server.headers[0]


def test_concurrency_bound_is_respected() -> None:
    with OpenAICompatServer(latency=0.1) as server:
        client = teacher(server, concurrency=3)
        started = time.monotonic()
        replies = client.complete([ask(f"q{i}") for i in range(12)])
        elapsed = time.monotonic() - started
        assert server.max_in_flight == 3
    assert [r.content for r in replies] == [f"echo: q{i}" for i in range(12)]
    assert elapsed >= 0.4  # 12 calls of 0.1 s, 3 at a time


def test_complete_iter_streams_replies_as_they_finish() -> None:
    release = threading.Event()

    def responder(body: dict[str, Any]) -> str:
        text = body["messages"][-1]["content"]
        if text == "slow":
            release.wait(5)
        return text.upper()

    with OpenAICompatServer(responder) as server:
        stream = teacher(server).complete_iter([ask("slow"), ask("fast")])
        first = next(stream)  # arrives while "slow" is still held by the server
        assert first[0] == 1 and first[1].content == "FAST"
        release.set()
        rest = list(stream)
    assert [(i, r.content) for i, r in rest] == [(0, "SLOW")]


def test_a_slow_caller_holds_back_new_calls() -> None:
    """A reply takes its call's slot until the caller has handled it, so a caller killed while
    busy leaves at most ``concurrency`` answered-but-unhandled calls to repeat."""
    with OpenAICompatServer() as server:
        handled = 0
        for _index, _reply in teacher(server, concurrency=2).complete_iter(
            [ask(f"q{i}") for i in range(10)]
        ):
            time.sleep(0.05)  # a caller busy writing, e.g. an fsync on a slow disk
            assert len(server.requests) <= handled + 2
            handled += 1
    assert handled == 10 and len(server.requests) == 10


def test_closing_the_iterator_early_stops_asking() -> None:
    with OpenAICompatServer(latency=0.05) as server:
        stream = teacher(server, concurrency=2).complete_iter([ask(f"q{i}") for i in range(40)])
        next(stream)
        stream.close()
        time.sleep(0.2)
        assert len(server.requests) <= 4


def test_fault_plan_can_target_some_requests() -> None:
    plan = FaultPlan(echo_responder, [Fault(status=500)] * 2,
                     when=lambda body: body["messages"][-1]["content"] == "b")
    with OpenAICompatServer(plan) as server:
        client = teacher(server)
        replies = client.complete([ask("a"), ask("b"), ask("c")])
        assert sorted(b["messages"][-1]["content"] for b in server.requests) == [
            "a", "b", "b", "b", "c"]
    assert [r.content for r in replies] == ["echo: a", "echo: b", "echo: c"]
    assert len(plan.used) == 2 and plan.pending == []


def test_a_broken_responder_is_a_500_that_the_client_retries() -> None:
    calls = []

    def flaky(body: dict[str, Any]) -> str:
        calls.append(body)
        if len(calls) == 1:
            raise RuntimeError("responder bug")
        return "fine"

    with OpenAICompatServer(flaky) as server:
        (reply,) = teacher(server).complete([ask("x")])
        assert [str(e) for e in server.errors] == ["responder bug"]
    assert reply.content == "fine"


def test_server_runs_as_a_module_for_demos() -> None:
    import subprocess
    import sys
    import urllib.request

    process = subprocess.Popen(
        [sys.executable, "-m", "kakugo_core.teacher_server", "--port", "0"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        assert line.startswith("serving http://127.0.0.1:"), line
        base_url = line.split()[1]
        with urllib.request.urlopen(f"{base_url}/models", timeout=10) as response:
            assert json.load(response)["object"] == "list"
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout:
            process.stdout.close()


def test_server_lists_its_model_and_counts_words() -> None:
    import urllib.request

    with OpenAICompatServer(model="tiny-teacher") as server:
        with urllib.request.urlopen(f"{server.base_url}/models") as response:
            models = json.load(response)
        data = json.dumps({"messages": [{"role": "user", "content": "one two three"}]}).encode()
        request = urllib.request.Request(f"{server.base_url}/chat/completions", data=data,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request) as response:
            completion = json.load(response)
    assert models["data"][0]["id"] == "tiny-teacher"
    assert completion["model"] == "tiny-teacher"
    assert completion["choices"][0]["message"]["content"] == "echo: one two three"
    assert completion["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
