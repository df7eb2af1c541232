"""The in-process vLLM teacher: batch chat generation with ``vllm.LLM.chat``.

Private module: imported only when a ``vllm`` teacher is created. Replies follow the contract
of every Kakugo teacher: the reasoning is split out of the text (``<think>…</think>`` or
gpt-oss's ``analysis…assistantfinal``) by :func:`kakugo_core.reasoning.split_reasoning`, token
counts come from vLLM's outputs, and the cost is the configured price per million tokens
(zero by default: the GPU is yours).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kakugo_core.errors import KakugoError
from kakugo_core.interfaces import Teacher, TeacherReply, TeacherRequest
from kakugo_core.toolkit.teachers import TeacherRequestError, split_reasoning
from plugins.backends._vllm_backend_impl import (
    ENGINE_DEFAULTS,
    build_engine,
    import_vllm,
    shutdown_engine,
)

#: ``TeacherRequest.extra`` keys that go to the chat template rather than to SamplingParams
CHAT_TEMPLATE_KEYS = ("reasoning_effort", "enable_thinking", "thinking")
#: ``TeacherRequest.extra`` keys that are OpenAI-API plumbing with no meaning in-process
IGNORED_EXTRA_KEYS = ("stream", "user", "response_format", "n")


def sampling_kwargs(request: TeacherRequest, default_max_tokens: int | None) -> dict[str, Any]:
    """Keyword arguments of ``vllm.SamplingParams`` for one request."""
    kwargs: dict[str, Any] = {"temperature": request.temperature, "top_p": request.top_p}
    max_tokens = request.max_tokens if request.max_tokens is not None else default_max_tokens
    kwargs["max_tokens"] = max_tokens or None  # None: up to the model's window
    for key, value in request.extra:
        if key in CHAT_TEMPLATE_KEYS or key in IGNORED_EXTRA_KEYS:
            continue
        kwargs["stop" if key == "stop_sequences" else key] = value
    return kwargs


def template_kwargs(request: TeacherRequest) -> dict[str, Any]:
    """The request's chat-template arguments (e.g. gpt-oss's ``reasoning_effort``)."""
    return {k: v for k, v in request.extra if k in CHAT_TEMPLATE_KEYS}


def request_error_types() -> tuple[type[BaseException], ...]:
    """The exceptions vLLM raises for a bad request (a prompt longer than the window, a sampling
    parameter out of range): ``ValueError`` in older versions, ``VLLMClientError`` since."""
    import importlib

    try:
        exceptions: Any = importlib.import_module("vllm.exceptions")
    except ImportError:
        exceptions = None
    client_error = getattr(exceptions, "VLLMClientError", None)
    return (TypeError, ValueError) + ((client_error,) if isinstance(client_error, type) else ())


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def reply_from_output(
    output: Any, price_input_per_mtok: float = 0.0, price_output_per_mtok: float = 0.0
) -> TeacherReply:
    """A :class:`TeacherReply` from one ``vllm.RequestOutput``."""
    completion = output.outputs[0]
    reasoning, content = split_reasoning(completion.text)
    prompt_tokens = len(output.prompt_token_ids or ())
    completion_tokens = len(completion.token_ids or ())
    cost = (prompt_tokens * price_input_per_mtok + completion_tokens * price_output_per_mtok) / 1e6
    return TeacherReply(
        content=content,
        reasoning=reasoning,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost=cost,
        finish_reason=str(getattr(completion, "finish_reason", "") or ""),
    )


class VllmTeacher(Teacher):
    """A teacher that runs the model itself with vLLM (no server, no network).

    Options: ``model``, ``revision``, ``max_tokens`` (default per reply), prices per million
    tokens, and
    the engine options of the ``vllm`` backend (``dtype``, ``max_model_len``,
    ``gpu_memory_utilization``, ``tensor_parallel_size``, ``enable_prefix_caching``, ``seed``,
    ``enforce_eager``, ``kv_cache_gb``, ``engine_options``). A batch goes to vLLM whole (vLLM
    schedules it within its memory). Other ``[teacher]`` keys (``base_url``, ``concurrency``,
    ``batch_size``, ``device``, ...) belong to other teachers and are ignored.
    """

    name = "vllm"

    def __init__(
        self,
        model: str,
        revision: str | None = None,
        *,
        max_tokens: int | None = None,
        price_input_per_mtok: float = 0.0,
        price_output_per_mtok: float = 0.0,
        kv_cache_gb: float | None = None,
        engine_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        if not model:
            raise KakugoError("the vllm teacher needs a model: set teacher.model")
        self.model = str(model)
        self.max_tokens = int(max_tokens) if max_tokens else None
        self.price_input_per_mtok = float(price_input_per_mtok)
        self.price_output_per_mtok = float(price_output_per_mtok)
        engine = {k: v for k, v in options.items() if k in ENGINE_DEFAULTS}
        if engine.get("dtype") in ("", None):
            engine.pop("dtype", None)
        self.llm = build_engine(self.model, revision, kv_cache_gb, engine_options, **engine)

    def __repr__(self) -> str:
        return f"VllmTeacher(model={self.model!r})"

    @property
    def cache_params(self) -> dict[str, Any]:
        """Settings that change answers, mixed into the teacher cache's keys."""
        return {"default_max_tokens": self.max_tokens, "in_process": "vllm"}

    def complete(self, requests: Sequence[TeacherRequest]) -> list[TeacherReply]:
        """Answer the batch in order; requests with the same chat-template arguments are sent
        to vLLM together."""
        if not requests:
            return []
        vllm = import_vllm()
        groups: dict[tuple[tuple[str, Any], ...], list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(tuple(sorted(template_kwargs(request).items())), []).append(index)
        replies: list[TeacherReply | None] = [None] * len(requests)
        bad_request = request_error_types()
        for key, batch in groups.items():
            try:
                params = [
                    vllm.SamplingParams(**sampling_kwargs(requests[i], self.max_tokens))
                    for i in batch
                ]
                outputs = self.llm.chat(
                    [requests[i].as_messages() for i in batch],
                    params,
                    use_tqdm=False,
                    chat_template_kwargs=dict(key) or None,
                )
            except bad_request as exc:
                raise TeacherRequestError(
                    f"the vllm teacher refused a request: {first_line(exc)}"
                ) from exc
            for i, output in zip(batch, outputs, strict=True):
                replies[i] = reply_from_output(
                    output, self.price_input_per_mtok, self.price_output_per_mtok
                )
        return replies  # type: ignore[return-value]

    def close(self) -> None:
        """Stop the engine and free its memory."""
        llm = self.__dict__.pop("llm", None)
        if llm is not None:
            shutdown_engine(llm)
