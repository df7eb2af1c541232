"""Progress of long work that ``kakugo status`` can show: a student writes ``progress.json``
(``title``, ``step``, ``max_steps``, ``loss``, ``tokens_per_second``, ``eta_seconds``) beside its
checkpoints, and everyone formats it with :func:`progress_line`."""

from __future__ import annotations

PROGRESS_FILE = "progress.json"  # beside the Trainer's checkpoints, for `kakugo status`


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def progress_line(title: str, step: int, total: int, loss: float | None,
                  tokens_per_s: float | None, eta_s: float | None) -> str:
    """``fine-tuning (full): step 40/200 · loss 2.3100 · 1,234 tok/s · ETA 3m12s``."""
    parts = [f"{title}: step {step}/{total}"]
    if loss is not None:
        parts.append(f"loss {loss:.4f}")
    if tokens_per_s is not None:
        parts.append(f"{tokens_per_s:,.0f} tok/s")
    if eta_s is not None:
        parts.append(f"ETA {_duration(eta_s)}")
    return " · ".join(parts)
