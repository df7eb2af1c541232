"""Secrets never leave the process: every message Kakugo prints or logs and every file it writes
through :mod:`kakugo_core.files` passes :func:`redact`, whatever a server echoed back.

A secret is a value registered with :func:`register_secret` (the teacher's API key, a Hub token)
or the value of an environment variable whose name says it holds one (``*KEY*``, ``*TOKEN*``,
``*SECRET*``, ``*PASSWORD*``); ``Bearer <token>`` is masked whatever the token.
"""

from __future__ import annotations

import os
import re
from typing import Any

MASK = "***"
#: environment variable names whose values are treated as secrets
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',;}]+")
#: values too short to mask without garbling ordinary text
_MIN_LENGTH = 6
_registered: set[str] = set()


def register_secret(value: str | None) -> None:
    """Treat ``value`` as a secret from now on (in this process)."""
    if value and len(value) >= _MIN_LENGTH:
        _registered.add(value)


def _looks_secret(value: str) -> bool:
    """Long enough, and not a path, a number or a yes/no setting."""
    return (len(value) >= _MIN_LENGTH and not value.startswith(("/", "~", "."))
            and not value.isdigit() and value.lower() not in ("true", "false", "none", "null"))


def known_secrets() -> list[str]:
    """Registered secrets and secret-looking environment values, longest first."""
    found = set(_registered)
    for name, value in os.environ.items():
        if _SECRET_NAME.search(name) and not name.startswith("TOKENIZERS_") \
                and _looks_secret(value):
            found.add(value)
    return sorted(found, key=len, reverse=True)


def redact(text: str) -> str:
    """``text`` with every known secret and bearer token replaced by ``***``."""
    if not text:
        return text
    for secret in known_secrets():
        if secret in text:
            text = text.replace(secret, MASK)
    return _BEARER.sub(lambda m: m.group(1) + MASK, text)


def redact_data(data: Any) -> Any:
    """``data`` (JSON-like) with :func:`redact` applied to every string in it."""
    if isinstance(data, str):
        return redact(data)
    if isinstance(data, dict):
        return {redact_data(k): redact_data(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [redact_data(v) for v in data]
    return data
