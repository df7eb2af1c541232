"""Files: atomic writes (a crash never leaves half a file) and the content revision of a model
folder (what results are keyed by)."""

from __future__ import annotations

from kakugo_core.files import model_folder_revision, write_json_atomic, write_text_atomic

__all__ = ["model_folder_revision", "write_json_atomic", "write_text_atomic"]
