"""``kakugo teacher`` against the real test server."""

from __future__ import annotations

import json

import pytest

from kakugo_core.cli import main
from kakugo_core.teacher_server import Fault, FaultPlan, OpenAICompatServer, Reply


def responder(body: dict) -> Reply:
    return Reply("Sugeng enjing!", reasoning="Javanese greeting, polite form.",
                 reasoning_format="harmony")


def test_teacher_command_shows_answer_reasoning_tokens_and_cost(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with OpenAICompatServer(responder) as server:
        main(["teacher", "--set", f"teacher.base_url={server.base_url}",
              "--set", "teacher.price_output_per_mtok=1000000", "--set", "teacher.api_key_env=",
              "--system", "Be brief.", "--json"])
        (body,) = server.requests
    result = json.loads(capsys.readouterr().out)
    assert result["content"] == "Sugeng enjing!"
    assert result["reasoning"] == "Javanese greeting, polite form."
    assert result["completion_tokens"] == 6 and result["cost"] == pytest.approx(6.0)
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["model"] == "gpt-oss-120b"


def test_teacher_command_plain_output(capsys: pytest.CaptureFixture[str]) -> None:
    with OpenAICompatServer(responder) as server:
        main(["teacher", "--set", f"teacher.base_url={server.base_url}", "--prompt", "Hi"])
    out = capsys.readouterr().out
    assert "answer: Sugeng enjing!" in out and "reasoning: Javanese greeting" in out


def test_teacher_command_refusal_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    plan = FaultPlan(responder, [Fault(status=404, message="The model `gpt-oss-120b` does "
                                                           "not exist.")])
    with OpenAICompatServer(plan) as server, pytest.raises(SystemExit) as info:
        main(["teacher", "--set", f"teacher.base_url={server.base_url}"])
    assert info.value.code != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "HTTP 404" in err and "does not exist" in err and "teacher.base_url" in err
