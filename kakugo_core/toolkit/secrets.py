"""Secrets: register a value (an API key a plugin sends) so that Kakugo masks it in every
message, log line and file it writes, whatever a server echoes back. :func:`redact` also masks
credentials inside URLs (``user:pass@``, ``?api-key=...``), ``Bearer`` tokens and well-known key
shapes: pass a URL through it before showing it."""

from __future__ import annotations

from kakugo_core.secrets import redact, redact_data, register_secret

__all__ = ["redact", "redact_data", "register_secret"]
