"""Secrets: register a value (an API key a plugin sends) so that Kakugo masks it in every
message, log line and file it writes, whatever a server echoes back."""

from __future__ import annotations

from kakugo_core.secrets import redact, redact_data, register_secret

__all__ = ["redact", "redact_data", "register_secret"]
