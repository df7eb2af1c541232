"""Secrets never leave the process: every message Kakugo prints or logs and every file it writes
through :mod:`kakugo_core.files` passes :func:`redact`, whatever a server echoed back.

A secret is a value registered with :func:`register_secret` (the teacher's API key, a Hub token)
or the value of an environment variable whose name says it holds one (``*KEY*``, ``*TOKEN*``,
``*SECRET*``, ``*PASSWORD*``). Whatever the value, ``Bearer <token>``, the user information of a
URL (``http://user:pass@host``), key-like query parameters (``?api-key=...``, ``&token=...``,
``&sig=...``) and strings shaped like well-known API keys (``sk-...``, ``hf_...``, ``ghp_...``)
are masked too.
"""

from __future__ import annotations

import os
import re
from typing import Any

MASK = "***"
#: environment variable names whose values are treated as secrets
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',;}]+")
#: ``scheme://user:password@``: everything between ``//`` and ``@`` is a credential
_URL_USERINFO = re.compile(r"://[^\s/?#@\"'<>]+@")
#: a query parameter whose name says it carries a credential (api-key, access_token, sig, ...)
_URL_SECRET_PARAM = re.compile(
    r"(?i)([?&;][a-z0-9_.-]*(?:key|token|secret|password|passwd|pwd|sig|signature|credential)"
    r"s?=)[^&#\s\"'<>;,)\]}]+")
#: well-known API key shapes: OpenAI/Anthropic ``sk-`` (with a digit: not a hyphenated word),
#: Stripe ``sk_live_``, Hugging Face ``hf_``, GitHub ``ghp_``/``github_pat_``, Slack ``xox?-``,
#: Google ``AIza``, AWS ``AKIA``
_KEY_PREFIXES = ("sk-", "sk_", "rk_", "pk_", "hf_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_",
                 "github_pat_", "xox", "AIza", "AKIA")
_KEY_SHAPE = re.compile(
    r"(?<![A-Za-z0-9])(?:sk-(?=[A-Za-z_-]*[0-9])[A-Za-z0-9_-]{20,}|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|hf_[A-Za-z0-9]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{30,}|AKIA[0-9A-Z]{16})")
#: what the name of an environment variable looks like
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
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


def looks_like_key(value: str) -> bool:
    """Whether ``value`` looks like a credential itself rather than the name of an environment
    variable: not a valid variable name, a well-known key shape (``sk-...``, ``hf_...``), or a
    long random-looking string (letters of both cases and digits, no word separators)."""
    if not _ENV_NAME.fullmatch(value) or _KEY_SHAPE.match(value):
        return True
    classes = sum(any(test(c) for c in value) for test in (str.islower, str.isupper, str.isdigit))
    return len(value) >= 20 and classes == 3 and "_" not in value.strip("_")


def mask_url(text: str) -> str:
    """``text`` with the credentials of every URL in it (``user:pass@``, key-like query
    parameters) replaced by ``***``; the host, path and other parameters are kept."""
    if not text or ("://" not in text and "=" not in text):
        return text
    text = _URL_USERINFO.sub("://" + MASK + "@", text)
    return _URL_SECRET_PARAM.sub(lambda m: m.group(1) + MASK, text)


def redact(text: str) -> str:
    """``text`` with every known secret, bearer token, URL credential and key-shaped string
    replaced by ``***``."""
    if not text:
        return text
    for secret in known_secrets():
        if secret in text:
            text = text.replace(secret, MASK)
    text = mask_url(_BEARER.sub(lambda m: m.group(1) + MASK, text))
    if any(prefix in text for prefix in _KEY_PREFIXES):  # a cheap test before the regex
        text = _KEY_SHAPE.sub(MASK, text)
    return text


def redact_data(data: Any) -> Any:
    """``data`` (JSON-like) with :func:`redact` applied to every string in it."""
    if isinstance(data, str):
        return redact(data)
    if isinstance(data, dict):
        return {redact_data(k): redact_data(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [redact_data(v) for v in data]
    return data
