"""Issue 25 item 3: secrets put in the wrong place are refused or masked, never printed or written.

A key given as ``teacher.api_key_env`` (the *name* of a variable) is refused in one line that
does not show it; credentials inside the teacher URL (``user:pass@``, ``?api-key=``) are masked
in every message and every file of a run, checked against a real OpenAI-compatible server on
127.0.0.1 through the real ``kakugo`` command.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kakugo_core.config import load_config
from kakugo_core.errors import ConfigError
from kakugo_core.secrets import looks_like_key, mask_url, redact
from kakugo_core.teacher_server import Fault, OpenAICompatServer

REPO = Path(__file__).resolve().parent.parent
#: no well-known key shape: only URL masking can hide it
URL_SECRET = "Zq9x-url-secret-Pw77"
KEYS = ["sk-proj-AbCdEf0123456789abcdef", "hf_AbCdEfGhIjKlMnOpQrStUvWx12",
        "Xk2Lm9Qp4Rt7Vw1Zb8Nc5Hd3", "secret with spaces", "abc.def-ghi"]


def kakugo(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``kakugo ARGS`` in a fresh process, with no secret-looking variable in its environment."""
    env = {k: v for k, v in os.environ.items() if not any(
        word in k.upper() for word in ("KEY", "TOKEN", "SECRET", "PASSWORD"))}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "kakugo_core", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=600)


def assert_nowhere(secret: str, root: Path, *outputs: str) -> None:
    for text in outputs:
        assert secret not in text, text
    for path in (p for p in root.rglob("*") if p.is_file()):
        assert secret.encode() not in path.read_bytes(), f"the secret is in {path}"


# -- a key where the name of its variable belongs ----------------------------------------------
def test_looks_like_key_tells_names_from_keys() -> None:
    assert all(looks_like_key(key) for key in KEYS)
    names = ["OPENAI_API_KEY", "TOGETHER_API_KEY", "MY_TEACHER_VAR", "my_key", "KEY2",
             "AZURE_OPENAI_API_KEY_WESTEUROPE_2"]
    assert not any(looks_like_key(name) for name in names)


@pytest.mark.parametrize("key", KEYS)
def test_a_key_as_api_key_env_is_refused_without_showing_it(key: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(overrides=[f"teacher.api_key_env={key}"])
    assert key not in str(caught.value) and "teacher.api_key_env" in str(caught.value)
    config = tmp_path / "run.toml"
    config.write_text(f'[teacher]\napi_key_env = "{key}"\n', "utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert key not in str(caught.value)


def test_a_run_with_a_key_as_api_key_env_stops_before_writing_it(tmp_path: Path) -> None:
    key = KEYS[0]
    with OpenAICompatServer(lambda body: Fault(status=401, message="bad key")) as server:
        done = kakugo("run", "jav", "--stages", "generate", "--run-dir", "r", "--no-progress",
                      "--set", f"teacher.base_url={server.base_url}", "--set",
                      f"teacher.api_key_env={key}", "--set", "teacher.max_retries=0",
                      cwd=tmp_path)
        teacher = kakugo("teacher", "--set", f"teacher.base_url={server.base_url}", "--set",
                         f"teacher.api_key_env={key}", cwd=tmp_path)
        assert not server.requests  # refused before anything was sent
    for result in (done, teacher):
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, result.stderr
        assert "teacher.api_key_env" in lines[0] and "OPENAI_API_KEY" in lines[0]
    assert_nowhere(key, tmp_path, done.stdout, done.stderr, teacher.stdout, teacher.stderr)


# -- credentials inside the teacher URL ---------------------------------------------------------
def test_mask_url_hides_user_information_and_key_like_parameters() -> None:
    s = URL_SECRET
    cases = {
        f"http://user:{s}@host:8000/v1": "http://***@host:8000/v1",
        f"https://{s}@host/v1 and more": "https://***@host/v1 and more",
        f"http://h/v1?api-key={s}&model=m": "http://h/v1?api-key=***&model=m",
        f"http://h/v1?model=m&api_key={s}": "http://h/v1?model=m&api_key=***",
        f"http://h/v1?key={s}#x": "http://h/v1?key=***#x",
        f"http://h/?token={s}&access_token={s}&sig={s}&password={s}":
            "http://h/?token=***&access_token=***&sig=***&password=***",
        f"at http://h/v1?subscription-key={s}; check": "at http://h/v1?subscription-key=***; check",
    }
    for text, masked in cases.items():
        assert mask_url(text) == masked and redact(text) == masked
    for plain in ("http://127.0.0.1:8000/v1", "http://h/v1?model=m&n=2", "monkey=business",
                  "a = b", "mailto:someone@example.org", ""):
        assert mask_url(plain) == plain


def test_redact_masks_well_known_key_shapes() -> None:
    plain = ("ordinary words stay: sk-short, sk-learn-compatible-tokenizers, hf_x, "
             "disk-0123456789abcdefghij")
    text = "keys: " + ", ".join(KEYS[:2]) + "; " + plain
    assert redact(text) == "keys: ***, ***; " + plain


@pytest.fixture(params=["user-info", "query", "retries"])
def leaky_teacher(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """A teacher URL with a credential in it, and the status a run against it fails with: the
    server refuses (401), has no such route (404, echoing the path and its query back), or
    fails twice (500, retried then given up)."""
    responders = {"user-info": lambda body: Fault(status=401, message="bad credentials"),
                  "query": lambda body: Fault(status=500, message="not used"),
                  "retries": lambda body: Fault(status=500, message="overloaded")}
    with OpenAICompatServer(responders[request.param]) as server:
        host = server.base_url.removeprefix("http://")
        url, status = {
            "user-info": (f"http://teacher:{URL_SECRET}@{host}", "HTTP 401"),
            "query": (f"http://{host}?api-key={URL_SECRET}", "HTTP 404"),
            "retries": (f"http://{URL_SECRET}@{host}", "failed 2 times"),
        }[request.param]
        yield url, status


def test_url_credentials_reach_no_message_and_no_file(
    tmp_path: Path, leaky_teacher: tuple[str, str]
) -> None:
    url, status = leaky_teacher
    sets = ["--set", f"teacher.base_url={url}", "--set", "teacher.max_retries=1",
            "--set", "teacher.retry_base_s=0.01", "--set", "teacher.api_key_env=NO_SUCH_VAR"]
    done = kakugo("run", "jav", "--stages", "generate", "--run-dir", "r", "--no-progress",
                  *sets, cwd=tmp_path)
    assert done.returncode == 2 and status in done.stderr, done.stderr
    assert "***" in done.stderr and "127.0.0.1" in done.stderr  # masked, the host still shown
    status_run = kakugo("status", "r", "--json", cwd=tmp_path)
    assert status_run.returncode == 0 and status in status_run.stdout
    teacher = kakugo("teacher", *sets, "--prompt", "Halo", cwd=tmp_path)
    assert teacher.returncode == 2 and status in teacher.stderr
    written = {p.name for p in tmp_path.rglob("*") if p.is_file()}
    assert {"manifest.json", "summary.json"} <= written
    assert_nowhere(URL_SECRET, tmp_path, done.stdout, done.stderr, status_run.stdout,
                   teacher.stdout, teacher.stderr)


def test_the_teacher_shows_its_url_masked() -> None:
    from kakugo_core.plugins import create

    teacher = create("teachers", "openai", model="m",
                     base_url=f"http://u:{URL_SECRET}@127.0.0.1:9/v1?key={URL_SECRET}")
    assert URL_SECRET not in repr(teacher) and "127.0.0.1:9" in repr(teacher)
    assert URL_SECRET in teacher.base_url  # the real URL is still what it calls


def test_kakugo_config_masks_url_credentials(tmp_path: Path) -> None:
    done = kakugo("config", "--set", f"teacher.base_url=http://u:{URL_SECRET}@h/v1",
                  cwd=tmp_path)
    assert done.returncode == 0 and "http://***@h/v1" in done.stdout
    assert URL_SECRET not in done.stdout
