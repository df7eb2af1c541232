"""A real OpenAI-compatible chat server on 127.0.0.1, for tests, benchmarks and demos.

``OpenAICompatServer(responder)`` serves ``POST /v1/chat/completions`` and ``GET /v1/models``
from a thread (one more thread per connection, so concurrent requests are served concurrently).
The *responder* is a plain callable that gets the parsed JSON body of each chat request and
returns what to send back:

- a ``str``: the answer;
- a :class:`Reply`: answer, optional reasoning (sent in the ``reasoning_content`` or
  ``reasoning`` field, or inline as ``<think>`` tags or gpt-oss channel text) and optional usage;
- a :class:`Fault`: an HTTP error status (with ``Retry-After``), a delay longer than the
  client's timeout, a malformed JSON body or a dropped connection.

Usage is counted in words when the reply does not give it. :class:`FaultPlan` wraps a responder
so that the first requests (optionally only those matching a predicate) get scripted faults;
:func:`teacher_responder` serves any Teacher (e.g. a tiny local model) over HTTP.

Example::

    with OpenAICompatServer(lambda body: "Halo!") as server:
        teacher = OpenAITeacher(base_url=server.base_url, model="test")
        ...
        assert len(server.requests) == 1

Run ``python -m kakugo_core.teacher_server --port 8000`` for an echo server to point a teacher at.
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "Fault",
    "FaultPlan",
    "OpenAICompatServer",
    "Reply",
    "echo_responder",
    "teacher_responder",
    "word_count",
]


@dataclass(frozen=True)
class Reply:
    """A chat answer. ``reasoning_format`` says how the reasoning travels: ``"reasoning_content"``
    or ``"reasoning"`` (message fields), ``"think"`` (``<think>…</think>`` before the answer),
    ``"harmony"`` (gpt-oss channel tokens) or ``"harmony_plain"`` (the same, tokens stripped)."""

    content: str
    reasoning: str = ""
    reasoning_format: str = "reasoning_content"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str = "stop"


@dataclass(frozen=True)
class Fault:
    """Something going wrong. Exactly one kind applies, checked in this order: ``drop`` closes the
    connection without an answer; ``status`` sends that HTTP status (with ``Retry-After`` when
    given) and an OpenAI-style error body; ``malformed`` sends 200 with a body that is not JSON;
    ``body`` sends 200 with exactly those bytes (e.g. JSON that is no chat completion);
    otherwise the server sleeps ``delay`` seconds and then answers ``reply`` (or the wrapped
    responder's answer when used in a :class:`FaultPlan`)."""

    status: int | None = None
    message: str = ""
    retry_after: float | str | None = None
    delay: float = 0.0
    malformed: bool = False
    body: bytes | None = None
    drop: bool = False
    reply: Reply | str | None = None


Answer = Reply | Fault | str
Responder = Callable[[dict[str, Any]], Answer]


def word_count(text: str) -> int:
    """The server's stand-in for a token count."""
    return len(text.split())


def echo_responder(body: Mapping[str, Any]) -> Reply:
    """Answer with the last user message, prefixed by ``echo:``."""
    messages = body.get("messages") or []
    last = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
    return Reply(content=f"echo: {last}")


def teacher_responder(teacher: Any) -> Responder:
    """A responder that answers with any :class:`~kakugo_core.interfaces.Teacher` (e.g. the
    ``transformers`` teacher on a tiny model), one request at a time, with its token counts."""
    from kakugo_core.interfaces import TeacherRequest

    lock = threading.Lock()
    sampling = ("temperature", "top_p", "max_tokens")

    def respond(body: dict[str, Any]) -> Reply:
        params = {k: body[k] for k in sampling if body.get(k) is not None}
        if "seed" in body:
            params["seed"] = body["seed"]
        request = TeacherRequest.chat(
            [{"role": m["role"], "content": m.get("content") or ""} for m in body["messages"]],
            **params,
        )
        with lock:
            (reply,) = teacher.complete([request])
        return Reply(reply.content, reasoning=reply.reasoning,
                     prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens)

    return respond


class FaultPlan:
    """A responder that sends scripted faults before handing over to ``responder``.

    ``faults`` are used one per request, in order, for requests where ``when(body)`` is true
    (every request by default); after they run out every request goes to ``responder``. A
    ``Fault`` with only ``delay`` set delays the responder's own answer. Thread-safe."""

    def __init__(
        self,
        responder: Responder,
        faults: Iterable[Fault],
        when: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        self.responder = responder
        self.pending = list(faults)
        self.when = when
        self.used: list[Fault] = []
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Answer:
        fault = None
        if self.when is None or self.when(body):
            with self._lock:
                if self.pending:
                    fault = self.pending.pop(0)
                    self.used.append(fault)
        if fault is None:
            return self.responder(body)
        if fault.drop or fault.status is not None or fault.malformed or fault.body is not None \
                or fault.reply is not None:
            return fault
        answer = self.responder(body)
        return Fault(delay=fault.delay, reply=answer if not isinstance(answer, Fault) else None)


def _message_for(reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if not reply.reasoning:
        return message
    fmt = reply.reasoning_format
    if fmt in ("reasoning_content", "reasoning"):
        message[fmt] = reply.reasoning
    elif fmt == "think":
        message["content"] = f"<think>{reply.reasoning}</think>\n\n{reply.content}"
    elif fmt == "harmony":
        message["content"] = (
            f"<|channel|>analysis<|message|>{reply.reasoning}<|end|>"
            f"<|start|>assistant<|channel|>final<|message|>{reply.content}<|return|>"
        )
    elif fmt == "harmony_plain":
        message["content"] = f"analysis{reply.reasoning}assistantfinal{reply.content}"
    else:
        raise ValueError(f"unknown reasoning_format {fmt!r}")
    return message


def _completion_body(body: Mapping[str, Any], reply: Reply, model: str) -> dict[str, Any]:
    prompt_words = sum(
        word_count(m.get("content") or "") for m in body.get("messages") or []
        if isinstance(m.get("content"), str)
    )
    prompt_tokens = reply.prompt_tokens if reply.prompt_tokens is not None else prompt_words
    completion_tokens = (
        reply.completion_tokens
        if reply.completion_tokens is not None
        else word_count(reply.content) + word_count(reply.reasoning)
    )
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:16]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or model,
        "choices": [
            {"index": 0, "message": _message_for(reply), "finish_reason": reply.finish_reason}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like real inference servers
    disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Stay quiet: tests and benchmarks read the request log instead."""

    # -- helpers ---------------------------------------------------------------------------
    def _send_json(
        self, status: int, payload: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode("utf-8")
        self._send_bytes(status, data, headers)

    def _send_bytes(
        self, status: int, data: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _error(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        self._send_json(
            status, {"error": {"message": message, "type": "error", "code": status}}, headers
        )

    def _authorised(self) -> bool:
        owner = self.server.owner
        if owner.api_key is None:
            return True
        if self.headers.get("Authorization") == f"Bearer {owner.api_key}":
            return True
        self._error(401, "Incorrect API key provided.")
        return False

    # -- routes ----------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        if self.path.rstrip("/") not in ("/v1/models", "/models"):
            self._error(404, f"no route GET {self.path}")
            return
        if not self._authorised():
            return
        model = self.server.owner.model
        entry = {"id": model, "object": "model", "owned_by": "kakugo"}
        self._send_json(200, {"object": "list", "data": [entry]})

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._error(404, f"no route POST {self.path}")
            return
        owner = self.server.owner
        owner._enter()
        try:
            if not self._authorised():
                return
            try:
                body = json.loads(raw or b"null")
            except json.JSONDecodeError:
                self._error(400, "request body is not valid JSON")
                return
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                self._error(400, "'messages' is a required property")
                return
            owner._record(body, dict(self.headers))
            if owner.latency:
                time.sleep(owner.latency)
            try:
                answer = owner.responder(body)
            except Exception as exc:  # a broken responder is a 500, visible to the test
                owner.errors.append(exc)
                self._error(500, f"responder failed: {type(exc).__name__}: {exc}")
                return
            self._answer(body, answer)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout) or dropped the connection
        finally:
            owner._leave()

    def _answer(self, body: dict[str, Any], answer: Answer) -> None:
        model = self.server.owner.model
        if isinstance(answer, str):
            answer = Reply(content=answer)
        if isinstance(answer, Reply):
            self._send_json(200, _completion_body(body, answer, model))
            return
        fault = answer
        if fault.drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if fault.status is not None:
            headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
            self._error(fault.status, fault.message or f"injected fault {fault.status}", headers)
            return
        if fault.malformed:
            self._send_bytes(200, b'{"id": "chatcmpl-broken", "choices": [{"mess')
            return
        if fault.body is not None:
            self._send_bytes(200, fault.body)
            return
        if fault.delay:
            time.sleep(fault.delay)
        reply = fault.reply if fault.reply is not None else Reply(content="")
        self._answer(body, reply)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a burst of 64+ concurrent connections must not be refused
    owner: OpenAICompatServer


class OpenAICompatServer:
    """An OpenAI-compatible chat server in a background thread; see the module docstring.

    ``requests`` holds every chat request body received (in arrival order), ``headers`` the
    matching request headers, ``max_in_flight`` the most chat requests being handled at once,
    ``errors`` what the responder raised (each also answered as an HTTP 500).
    ``latency`` adds a fixed delay to every chat request; ``api_key`` makes the server demand
    ``Authorization: Bearer <api_key>``."""

    def __init__(
        self,
        responder: Responder = echo_responder,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        model: str = "kakugo-test-teacher",
        api_key: str | None = None,
    ) -> None:
        self.responder = responder
        self.host = host
        self.port = port
        self.latency = latency
        self.model = model
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.errors: list[Exception] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- bookkeeping (called from handler threads) ------------------------------------------
    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _record(self, body: dict[str, Any], headers: dict[str, str]) -> None:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def reset_counters(self) -> None:
        """Forget the request log and the in-flight maximum."""
        with self._lock:
            self.requests.clear()
            self.headers.clear()
            self.max_in_flight = self.in_flight

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``, what an OpenAI client takes as its base URL."""
        if self._httpd is None:
            raise RuntimeError("server not started; use it as a context manager or call start()")
        return f"http://{self.host}:{self._httpd.server_address[1]}/v1"

    def start(self) -> OpenAICompatServer:
        """Bind (port 0: an ephemeral port) and serve in a daemon thread."""
        httpd = _HTTPServer((self.host, self.port), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
            name="kakugo-teacher-server", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None

    def __enter__(self) -> OpenAICompatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Serve the echo responder until interrupted."""
    parser = argparse.ArgumentParser(description="An OpenAI-compatible echo server for demos.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per request")
    args = parser.parse_args(argv)
    server = OpenAICompatServer(echo_responder, args.host, args.port, latency=args.latency)
    with server:
        print(f"serving {server.base_url} (Ctrl-C stops)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
