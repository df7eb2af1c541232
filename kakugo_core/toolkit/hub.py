"""Hugging Face Hub helpers for release targets and commands: the token and one-line errors for
failed Hub requests (never containing the token)."""

from __future__ import annotations

from kakugo_core.errors import KakugoError


def get_token() -> str:
    """The token from ``HF_TOKEN`` or the huggingface_hub login, or a clear error."""
    from huggingface_hub import get_token as hf_get_token

    token = hf_get_token()
    if not token:
        raise KakugoError(
            "no Hugging Face token: set HF_TOKEN (a write token) or run `hf auth login`; "
            "or release to a folder with --target folder"
        )
    return token


def hub_error(exc: Exception, doing: str) -> KakugoError:
    """A one-line error for a failed Hub request (never containing the token)."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    hint = {401: " (is HF_TOKEN a valid write token?)",
            403: " (does the token have write access to this namespace?)",
            412: " (the repository changed meanwhile; run the release again)"}.get(status or 0, "")
    return KakugoError(f"Hub request failed while {doing}: {first}{hint}")
