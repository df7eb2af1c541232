"""The ``openai`` teacher: any OpenAI-compatible chat endpoint, asked concurrently.

An asyncio loop in a worker thread runs ``concurrency`` workers that share one connection pool
(httpx by default, which comes with huggingface_hub; aiohttp on request, for less CPU per call);
replies are handed to the caller's thread as they finish, so ``complete_iter`` streams and
``complete`` just collects. Failures that may pass (HTTP 429 and 5xx, timeouts, connection
errors, a reply that is not the expected JSON) are retried with exponential backoff and jitter,
waiting at least what ``Retry-After`` says (capped at ``retry_max_s``); any other 4xx stops the
run with one line naming the status and the server's message. The API key is read from the
environment variable named by ``api_key_env`` and only ever put in the Authorization header;
messages show ``base_url`` with its credentials (``user:pass@``, ``?api-key=``) masked.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import queue
import random
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from contextlib import closing
from typing import Any

try:  # huggingface_hub >= 1.x depends on httpx2, older ones on httpx: same API
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx  # type: ignore[no-redef]

from kakugo_core.errors import ConfigError
from kakugo_core.interfaces import TeacherReply, TeacherRequest
from kakugo_core.toolkit.secrets import redact, register_secret
from kakugo_core.toolkit.teachers import (
    StreamingTeacher,
    TeacherError,
    TeacherRequestError,
    TeacherUnavailableError,
    reasoning_from_message,
)

log = logging.getLogger("kakugo")

_DONE = object()


class _Malformed(Exception):
    """A 200 reply whose body is not a chat completion."""


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _server_message(content: bytes) -> str:
    """The ``error.message`` of an error body (or the body itself), on one line."""
    try:
        data = json.loads(content)
        error = data.get("error", data) if isinstance(data, dict) else data
        message = error.get("message") if isinstance(error, dict) else error
        text = str(message if message is not None else data)
    except ValueError:
        text = content.decode("utf-8", "replace")
    text = " ".join(text.split())
    return text[:300] + ("..." if len(text) > 300 else "") if text else "(no message)"


class _TransportFailure(Exception):
    """A call that got no HTTP answer: a timeout or a connection error (retried)."""


class _HttpxTransport:
    """POSTs over one httpx connection pool (the default: httpx comes with huggingface_hub)."""

    def __init__(
        self, headers: dict[str, str], timeout_s: float, concurrency: int, ssl_context: Any
    ) -> None:
        self.timeout_s = timeout_s
        self.client = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 30.0)),
            limits=httpx.Limits(max_connections=concurrency,
                                max_keepalive_connections=concurrency),
            verify=ssl_context,
        )

    async def post(self, url: str, body: bytes) -> tuple[int, Any, bytes]:
        try:
            response = await self.client.post(url, content=body)
        except httpx.TimeoutException:
            raise _TransportFailure(f"no reply within {self.timeout_s:g}s") from None
        except httpx.TransportError as exc:
            raise _TransportFailure(f"connection failed ({type(exc).__name__})") from None
        return response.status_code, response.headers, response.content

    async def aclose(self) -> None:
        await self.client.aclose()


class _AiohttpTransport:
    """POSTs over an aiohttp session: about a fifth of httpx's CPU per request, for very high
    request rates (``teacher.http_client = "aiohttp"``; needs ``pip install aiohttp``)."""

    def __init__(
        self, headers: dict[str, str], timeout_s: float, concurrency: int, ssl_context: Any
    ) -> None:
        import aiohttp

        self.aiohttp = aiohttp
        self.timeout_s = timeout_s
        self.session = aiohttp.ClientSession(
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout_s, connect=min(timeout_s, 30.0)),
            connector=aiohttp.TCPConnector(limit=concurrency, ssl=ssl_context),
        )

    async def post(self, url: str, body: bytes) -> tuple[int, Any, bytes]:
        try:
            async with self.session.post(url, data=body) as response:
                return response.status, response.headers, await response.read()
        except asyncio.TimeoutError:
            raise _TransportFailure(f"no reply within {self.timeout_s:g}s") from None
        except self.aiohttp.ClientError as exc:
            raise _TransportFailure(f"connection failed ({type(exc).__name__})") from None

    async def aclose(self) -> None:
        await self.session.close()


TRANSPORTS: dict[str, type[_HttpxTransport] | type[_AiohttpTransport]] = {
    "httpx": _HttpxTransport,
    "aiohttp": _AiohttpTransport,
}


class OpenAITeacher(StreamingTeacher):
    """A teacher behind an OpenAI-compatible ``/chat/completions`` endpoint."""

    name = "openai"

    def __init__(
        self,
        model: str,
        base_url: str = "http://127.0.0.1:8000/v1",
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 32,
        max_retries: int = 6,
        timeout_s: float = 600.0,
        max_tokens: int | None = None,
        price_input_per_mtok: float = 0.0,
        price_output_per_mtok: float = 0.0,
        retry_base_s: float = 1.0,
        retry_max_s: float = 60.0,
        http_client: str = "httpx",
        **_other_teachers_options: Any,
    ) -> None:
        if concurrency < 1:
            raise ConfigError(f"teacher.concurrency must be at least 1, got {concurrency}")
        if int(max_retries) < 0:
            raise ConfigError(f"teacher.max_retries must be at least 0, got {max_retries}")
        if float(timeout_s) <= 0:
            raise ConfigError(f"teacher.timeout_s must be more than 0, got {timeout_s}")
        if http_client not in TRANSPORTS:
            raise ConfigError(
                f"teacher.http_client {http_client!r} unknown: use {' or '.join(TRANSPORTS)}"
            )
        if http_client == "aiohttp":
            try:
                import aiohttp  # noqa: F401
            except ImportError:
                raise ConfigError(
                    "teacher.http_client = 'aiohttp' needs aiohttp: pip install aiohttp"
                ) from None
        self.http_client = http_client
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.concurrency = int(concurrency)
        self.max_retries = int(max_retries)
        self.timeout_s = float(timeout_s)
        self.max_tokens = int(max_tokens) if max_tokens else None
        self.price_input_per_mtok = float(price_input_per_mtok)
        self.price_output_per_mtok = float(price_output_per_mtok)
        self.retry_base_s = float(retry_base_s)
        self.retry_max_s = float(retry_max_s)
        # running totals (updated from the worker thread; plain reads are fine for progress)
        self.calls = 0
        self.retries = 0
        self.failures = 0  # requests given up on (refused, or out of retries)
        self.malformed = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost = 0.0
        self._ssl_context: Any = None  # made once: building one costs tens of milliseconds

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAITeacher(model={self.model!r}, base_url={self.shown_url!r})"

    @property
    def shown_url(self) -> str:
        """``base_url`` as messages show it: credentials in it masked."""
        return redact(self.base_url)

    @property
    def cache_params(self) -> dict[str, Any]:
        return {"default_max_tokens": self.max_tokens}

    # -- request and reply -------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": "kakugo"}
        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        if key:
            register_secret(key)  # redacted from every message and file from now on
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def request_body(self, request: TeacherRequest) -> dict[str, Any]:
        """The JSON body sent for ``request``."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": request.as_messages(),
            "temperature": request.temperature,
            "top_p": request.top_p,
        }
        max_tokens = request.max_tokens if request.max_tokens is not None else self.max_tokens
        if max_tokens:
            body["max_tokens"] = max_tokens
        body.update(dict(request.extra))
        return body

    def parse_reply(self, data: Any) -> TeacherReply:
        """A :class:`TeacherReply` from a chat completion body; :class:`_Malformed` if it is
        not one."""
        try:
            message = data["choices"][0]["message"]
            if not isinstance(message, dict):
                raise TypeError("message is not an object")
            reasoning, content = reasoning_from_message(message)
            finish_reason = str(data["choices"][0].get("finish_reason") or "")
            usage = data.get("usage") or {}
            prompt_tokens = int(usage.get("prompt_tokens") or 0)
            completion_tokens = int(usage.get("completion_tokens") or 0)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise _Malformed(f"unexpected reply shape ({type(exc).__name__}: {exc})") from None
        cost = (
            prompt_tokens * self.price_input_per_mtok
            + completion_tokens * self.price_output_per_mtok
        ) / 1e6
        return TeacherReply(
            content=content,
            reasoning=reasoning,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost=cost,
            finish_reason=finish_reason,
        )

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``attempt + 1``: exponential with jitter, at
        least ``Retry-After`` (both capped at ``retry_max_s``)."""
        ceiling = min(self.retry_max_s, self.retry_base_s * (2**attempt))
        delay = ceiling / 2 + random.uniform(0, ceiling / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.retry_max_s))
        return delay

    async def _ask(self, transport: Any, request: TeacherRequest) -> TeacherReply:
        body = json.dumps(self.request_body(request), ensure_ascii=False).encode("utf-8")
        url = f"{self.base_url}/chat/completions"
        problem = ""
        for attempt in range(self.max_retries + 1):
            retry_after = None
            try:
                status, headers, content = await transport.post(url, body)
            except _TransportFailure as exc:
                problem = str(exc)
            else:
                if status == 200:
                    try:
                        reply = self.parse_reply(json.loads(content))
                    except (ValueError, _Malformed) as exc:
                        self.malformed += 1
                        problem = f"malformed reply: {exc}".splitlines()[0][:200]
                    else:
                        self._count(reply)
                        return reply
                elif status == 429 or status >= 500:
                    retry_after = parse_retry_after(headers.get("retry-after"))
                    problem = f"HTTP {status}: {_server_message(content)}"
                else:
                    self.failures += 1
                    raise TeacherRequestError(self._refusal(status, _server_message(content)))
            if attempt == self.max_retries:
                break
            delay = self.backoff(attempt, retry_after)
            self.retries += 1
            log.warning(
                "teacher %s: %s; retry %d/%d in %.1fs",
                self.model, redact(problem), attempt + 1, self.max_retries, delay,
            )
            await asyncio.sleep(delay)
        self.failures += 1
        raise TeacherUnavailableError(redact(
            f"teacher {self.model} at {self.shown_url} failed {self.max_retries + 1} times "
            f"(last: {problem}); answers so far are cached, run again to resume"
        ))

    def _refusal(self, status: int, message: str) -> str:
        hint = ""
        if status in (401, 403):
            hint = (
                f"; check the API key in the environment variable {redact(self.api_key_env)}"
                if self.api_key_env
                else "; set teacher.api_key_env to the variable holding your API key"
            )
        elif status == 404:
            hint = "; check teacher.base_url and teacher.model"
        return redact(f"teacher {self.model} at {self.shown_url} refused the request: "
                      f"HTTP {status}: {message}{hint}")

    def _count(self, reply: TeacherReply) -> None:
        self.calls += 1
        self.prompt_tokens += reply.prompt_tokens
        self.completion_tokens += reply.completion_tokens
        self.cost += reply.cost

    # -- the loop ----------------------------------------------------------------------------
    async def _drive(
        self,
        requests: Sequence[TeacherRequest],
        out: queue.Queue[Any],
        stop: threading.Event,
        slots: asyncio.Semaphore,
    ) -> None:
        pending = iter(range(len(requests)))
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        transport = TRANSPORTS[self.http_client](
            self._headers(), self.timeout_s, self.concurrency, self._ssl_context
        )
        try:
            failures: list[TeacherError] = []

            async def worker() -> None:
                for index in pending:
                    await slots.acquire()  # given back once the caller has taken a reply
                    if stop.is_set():
                        return
                    try:
                        reply = await self._ask(transport, requests[index])
                    except TeacherError as exc:  # let the other calls in flight finish
                        failures.append(exc)
                        stop.set()
                        return
                    out.put((index, reply))

            workers = [
                asyncio.create_task(worker())
                for _ in range(min(self.concurrency, len(requests)))
            ]
            try:
                await asyncio.gather(*workers)
            finally:
                for task in workers:
                    task.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
            if failures:
                raise failures[0]
        finally:
            await transport.aclose()

    def _run(
        self,
        requests: Sequence[TeacherRequest],
        out: queue.Queue[Any],
        stop: threading.Event,
        handle: dict[str, Any],
    ) -> None:
        loop = asyncio.new_event_loop()
        handle["loop"] = loop
        try:
            slots = asyncio.Semaphore(self.concurrency)
            handle["slots"] = slots
            task = loop.create_task(self._drive(requests, out, stop, slots))
            handle["task"] = task
            loop.run_until_complete(task)
        except BaseException as exc:  # delivered to the caller's thread
            out.put(exc)
        finally:
            out.put(_DONE)
            loop.close()

    def complete_groups(
        self, requests: Sequence[TeacherRequest]
    ) -> Generator[list[tuple[int, TeacherReply]], None, None]:
        """Yield lists of ``(index, reply)``: each list holds every reply that had arrived by
        then (one, unless replies come faster than the caller takes them), so a cache can
        fsync once per list. At most ``concurrency`` calls are asked and not yet handled by the
        caller: a call's slot is given back only when the caller asks for the next list, so a
        killed caller repeats at most ``concurrency`` calls. Closing the iterator early cancels
        the calls still in flight."""
        requests = list(requests)
        if not requests:
            return
        out: queue.Queue[Any] = queue.Queue()
        stop = threading.Event()
        handle: dict[str, Any] = {}
        thread = threading.Thread(
            target=self._run, args=(requests, out, stop, handle), name="kakugo-openai-teacher",
            daemon=True,
        )
        thread.start()
        try:
            finished = False
            while not finished:
                items = [out.get()]
                while True:  # whatever else is ready, without waiting
                    try:
                        items.append(out.get_nowait())
                    except queue.Empty:
                        break
                group: list[tuple[int, TeacherReply]] = []
                for item in items:
                    if item is _DONE:
                        finished = True
                    elif isinstance(item, asyncio.CancelledError):
                        continue
                    elif isinstance(item, BaseException):
                        if group:
                            yield group  # replies that arrived before the failure are kept
                        raise item
                    else:
                        group.append(item)
                if group:
                    yield group
                    self._give_back(handle, len(group))
        finally:
            stop.set()
            loop, task = handle.get("loop"), handle.get("task")
            if loop is not None and task is not None and not loop.is_closed():
                try:
                    loop.call_soon_threadsafe(task.cancel)
                except RuntimeError:  # the loop closed in between
                    pass
            thread.join()

    @staticmethod
    def _give_back(handle: dict[str, Any], count: int) -> None:
        """Free ``count`` call slots in the worker thread's loop."""
        loop, slots = handle.get("loop"), handle.get("slots")
        if loop is None or slots is None or loop.is_closed():
            return
        for _ in range(count):
            try:
                loop.call_soon_threadsafe(slots.release)
            except RuntimeError:  # the loop closed in between
                return

    def complete_iter(
        self, requests: Sequence[TeacherRequest]
    ) -> Iterator[tuple[int, TeacherReply]]:
        """Yield ``(index, reply)`` as each reply arrives."""
        with closing(self.complete_groups(requests)) as groups:
            for group in groups:
                yield from group
