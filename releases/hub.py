"""The ``hub`` release target: publish to the Hugging Face Hub (or the Hub-compatible server at
``HF_ENDPOINT``) in one atomic commit per release, with a tag per release.

Cheap to import: huggingface_hub is imported only when a release runs (see ``releases._hub``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kakugo_core import hookimpl
from kakugo_core.interfaces import ReleaseResult, ReleaseTarget


@dataclass
class Published(ReleaseResult):
    """A :class:`ReleaseResult` that also says which tag, deletions and pull request it made."""

    tag: str | None = None
    deleted: list[str] = field(default_factory=list)
    pr_url: str | None = None


class HubTarget(ReleaseTarget):
    """Options: ``token`` (default: HF_TOKEN or the login), ``repo_type``, ``private``,
    ``revision``, ``create_pr``, ``tag``, ``commit_message``."""

    name = "hub"
    needs_token = True

    def default_user(self, options: Mapping[str, Any]) -> str:
        """The token owner's name, for ``{user}`` in repository names."""
        from kakugo_core.toolkit.hub import get_token
        from releases._hub import whoami

        return whoami(options.get("token") or get_token())

    def publish(self, folder: Path, repo_id: str, options: Mapping[str, Any]) -> ReleaseResult:
        from releases._hub import publish

        out = publish(Path(folder), repo_id, options)
        return Published(out["location"], out["revision"], out["changed"], out["files"],
                         tag=out["tag"], deleted=out["deleted"], pr_url=out["pr_url"])

    def describe(self, folder: Path, repo_id: str, options: Mapping[str, Any]) -> list[str]:
        """Lines saying what ``publish`` would do, from read-only requests (no token: every
        file, unchecked)."""
        from releases._hub import Plan, plan

        folder = Path(folder)
        if options.get("token"):
            changes = plan(folder, repo_id, options)
        else:
            changes = Plan(False, None, upload=list(self.plan(folder)), checked_remote=False)
        return describe_plan(folder, changes.upload, changes.unchanged, changes.delete,
                             None if changes.checked_remote else
                             "remote not compared (no token): every file is listed")


def describe_plan(
    folder: Path, upload: Iterable[str], unchanged: Iterable[str], delete: Iterable[str],
    note: str | None = None,
) -> list[str]:
    """``upload  PATH  (SIZE bytes)`` / ``same  PATH`` / ``delete  PATH`` lines."""
    lines = [f"upload     {rel}  ({(folder / rel).stat().st_size} bytes)" for rel in upload]
    lines += [f"unchanged  {rel}" for rel in unchanged]
    lines += [f"delete     {rel}" for rel in delete]
    if note:
        lines.append(f"note: {note}")
    return lines


@hookimpl
def register_release_targets(register: Any) -> None:
    register("hub", HubTarget, aliases=("huggingface",))
