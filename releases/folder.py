"""The ``folder`` release target (the offline default): the same tree a Hub release would have,
written to a folder on disk. The folder is replaced as a whole, through a staging folder and a
rename, and left untouched when nothing differs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kakugo_core import hookimpl
from kakugo_core.errors import KakugoError
from kakugo_core.interfaces import ReleaseResult, ReleaseTarget
from releases.hub import Published


class FolderTarget(ReleaseTarget):
    """Options: ``out_dir`` (required: the destination folder)."""

    name = "folder"
    needs_token = False

    def default_user(self, options: Mapping[str, Any]) -> str:
        return "kakugo"

    def check(self, options: Mapping[str, Any]) -> None:
        """Before anything is assembled: the destination may be replaced and written."""
        check_destination(self._destination(options), overwrite=bool(options.get("overwrite")))

    @staticmethod
    def _destination(options: Mapping[str, Any]) -> Path:
        out = options.get("out_dir")
        if not out:
            raise KakugoError("the folder target needs a destination: pass --out DIR")
        return Path(out)

    def _changes(self, folder: Path, dest: Path) -> tuple[list[str], list[str], list[str]]:
        from kakugo_core.toolkit.release_files import tree_digest

        new = tree_digest(folder)
        old = tree_digest(dest) if dest.is_dir() else {}
        upload = [p for p in new if old.get(p) != new[p]]
        unchanged = [p for p in new if old.get(p) == new[p]]
        return upload, unchanged, sorted(set(old) - set(new))

    def publish(self, folder: Path, repo_id: str, options: Mapping[str, Any]) -> ReleaseResult:
        from kakugo_core.toolkit.release_files import (
            iter_files,
            link_or_copy,
            replace_dir,
            staging_dir,
        )

        folder, dest = Path(folder), self._destination(options)
        if dest.exists() and not dest.is_dir():
            raise KakugoError(f"{dest} exists and is not a folder; pass another --out")
        if not options.get("overwrite") and not _made_by_kakugo(dest):
            raise KakugoError(f"{dest} holds files that are not a Kakugo release; pass another "
                              "--out, or --overwrite to replace them")
        upload, _unchanged, delete = self._changes(folder, dest)
        if not upload and not delete:
            return Published(str(dest), None, False, [])
        staged = staging_dir(dest)
        try:
            for path in iter_files(folder):
                link_or_copy(path, staged / path.relative_to(folder))
            replace_dir(staged, dest)
        except BaseException:
            import shutil

            shutil.rmtree(staged, ignore_errors=True)
            raise
        return Published(str(dest), None, True, upload, deleted=delete)

    def describe(self, folder: Path, repo_id: str, options: Mapping[str, Any]) -> list[str]:
        from releases.hub import describe_plan

        upload, unchanged, delete = self._changes(Path(folder), self._destination(options))
        return describe_plan(Path(folder), upload, unchanged, delete)


def check_destination(dest: Path, overwrite: bool = False) -> None:
    """Before anything is assembled: ``dest`` must be a folder Kakugo may replace (absent,
    empty, an earlier release, or ``overwrite``) and its parent (and ``dest``) writable."""
    import tempfile

    if dest.exists() and not dest.is_dir():
        raise KakugoError(f"{dest} exists and is not a folder; pass another --out")
    if not overwrite and not _made_by_kakugo(dest):
        raise KakugoError(f"{dest} holds files that are not a Kakugo release; pass another "
                          "--out, or --overwrite to replace them")
    probes = [p for p in (dest.parent, dest) if p.is_dir()]
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        for folder in probes or [dest.parent]:
            os.rmdir(tempfile.mkdtemp(dir=folder, prefix=".kakugo-probe-"))
    except OSError as exc:
        raise KakugoError(f"cannot write the release to {dest}: "
                          f"{exc.strerror or exc}") from None


def _made_by_kakugo(dest: Path) -> bool:
    """Whether ``dest`` is absent, empty, or an earlier release (its card is tagged kakugo)."""
    if not dest.is_dir() or not any(dest.iterdir()):
        return True
    card = dest / "README.md"
    try:
        head = card.read_text("utf-8", errors="replace")[:4000] if card.is_file() else ""
    except OSError:
        return False
    return head.startswith("---") and "kakugo" in head


@hookimpl
def register_release_targets(register: Any) -> None:
    register("folder", FolderTarget, aliases=("local",))
