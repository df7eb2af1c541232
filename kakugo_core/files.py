"""Writing files so that a crash never leaves half of one: a temporary file beside the target,
then a rename. Plugins use these too."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from kakugo_core.errors import KakugoError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Write inside this: an operating-system error (a full disk, a permission) becomes one
    :class:`KakugoError` line naming ``path``."""
    try:
        yield
    except OSError as exc:
        hint = "; free some space and run again to resume" if exc.errno == errno.ENOSPC else ""
        raise KakugoError(f"cannot write {path}: {exc.strerror or exc}{hint}") from None


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path``; the old file survives a failure.
    An operating-system error becomes a one-line :class:`KakugoError`."""
    from kakugo_core.secrets import redact

    path = Path(path)
    text = redact(text)  # whatever a server echoed back, no secret reaches a file
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual mode
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        with writing(path):
            raise exc
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return path


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON (non-ASCII kept, unknown types as strings)."""
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
    return write_text_atomic(path, text)


#: files whose content makes a local model what it is: weights, config, tokenizer, chat template
MODEL_FILE_SUFFIXES = (".safetensors", ".bin", ".pt", ".json", ".model", ".txt", ".jinja")


def model_folder_revision(folder: str | Path) -> str:
    """``sha256:<16 hex>`` over a local model folder's weight, config and tokenizer files, so
    results of a folder whose contents change never share a store key; "" when ``folder`` is
    not a local folder (a Hub id). Every scoring backend uses this, so their results agree."""
    import hashlib

    root = Path(folder)
    if not root.is_dir():
        return ""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in MODEL_FILE_SUFFIXES:
            digest.update(str(path.relative_to(root)).encode())
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return "sha256:" + digest.hexdigest()[:16]


# -- the one output rule ---------------------------------------------------------------------
#: the file Kakugo leaves in an output folder it made; a folder holding it (or a command's own
#: recognised layout, see ``marker``) may be replaced without --overwrite
OUTPUT_MARKER = ".kakugo-output"


def _shown(given: Path, resolved: Path) -> str:
    """The path as the user gave it, or resolved when it was ``.``/``..``-relative."""
    return str(resolved) if ".." in given.parts or given.name in ("", ".") else str(given)


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def inside(folder: str | Path, *parts: str) -> Path:
    """``folder`` joined with ``parts`` (names from task files, model ids, ...), refusing in one
    line a path that would leave ``folder`` (``..``, an absolute part, a link pointing out)."""
    root = Path(folder).expanduser().resolve()
    path = root.joinpath(*parts).resolve()
    if not _is_within(path, root) or path == root:
        raise KakugoError(f"{'/'.join(parts)!r} would be written outside {folder}: "
                          "names used in paths must stay inside their folder")
    return path


def made_by_kakugo(folder: Path, marker: str | Callable[[Path], bool] = OUTPUT_MARKER) -> bool:
    """Whether ``folder`` is absent, empty, or holds Kakugo's marker (or passes ``marker``)."""
    if not folder.is_dir() or not any(folder.iterdir()):
        return True
    if (folder / OUTPUT_MARKER).is_file():
        return True
    if callable(marker):
        return marker(folder)
    return (folder / marker).exists()


def prepare_output(
    path: str | Path,
    *,
    kind: Literal["file", "folder"],
    inputs: Iterable[str | Path | None] = (),
    overwrite: bool = False,
    marker: str | Callable[[Path], bool] = OUTPUT_MARKER,
    option: str = "-o/--out",
    empty: bool = False,
) -> Path:
    """Check an output path before anything is written, and return it resolved.

    One rule for every command: the path is resolved first (``.``, ``..``, ``~``); it may not
    be, hold or lie inside one of the command's ``inputs`` (the store it reads, the model it
    reads; not even with ``overwrite``); a ``file`` may not be a folder, and a ``folder`` not
    a file, nor the current folder or one holding it; a folder that holds anything Kakugo did
    not make (no :data:`OUTPUT_MARKER`, and not recognised by ``marker``: a file name or a
    predicate) is refused unless ``overwrite``, and with ``empty`` (a command that cannot
    replace a folder) any non-empty folder is. Each refusal is one :class:`KakugoError` line;
    nothing is created or deleted here.
    """
    given = Path(path)
    if not str(path).strip():
        raise KakugoError(f"{option} is empty; name a {kind}")
    out = given.expanduser().resolve()
    shown = _shown(given, out)
    for item in inputs:
        if item is None or not str(item).strip():
            continue
        source = Path(item).expanduser().resolve()
        if not source.exists():
            continue  # a Hub id, or an input created later: nothing here to protect
        if out == source:
            raise KakugoError(f"{shown} is one of this command's inputs; write the output "
                              f"somewhere else ({option})")
        if _is_within(source, out):
            raise KakugoError(f"{shown} holds {item}, which this command reads; write the "
                              f"output somewhere else ({option})")
        if source.is_dir() and _is_within(out, source):
            raise KakugoError(f"{shown} is inside {item}, which this command reads; write the "
                              f"output somewhere else ({option})")
    if kind == "file":
        if out.is_dir():
            raise KakugoError(f"{shown} is a directory; give a file path ({option})")
        parent = next((p for p in out.parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise KakugoError(f"cannot write {shown}: {parent} is a file")
        return out
    if out.exists() and not out.is_dir():
        raise KakugoError(f"{shown} is a file; give a folder ({option})")
    if _is_within(Path.cwd().resolve(), out):
        raise KakugoError(f"{shown} is the current folder or holds it; name a sub-folder "
                          f"({option})")
    if empty and out.is_dir() and any(out.iterdir()):
        raise KakugoError(f"{shown} already exists and is not empty; choose another {option}")
    if not overwrite and not made_by_kakugo(out, marker):
        names = sorted(p.name for p in out.iterdir())
        listed = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        raise KakugoError(f"{shown} holds files Kakugo did not make ({listed}); choose another "
                          f"{option}, or pass --overwrite to replace them")
    return out


def mark_output(folder: str | Path, command: str, files: Iterable[str] = ()) -> Path:
    """Leave :data:`OUTPUT_MARKER` in ``folder``: made by ``command``, with the ``files`` it
    wrote (relative paths) when the command removes its own stale files on the next run."""
    return write_json_atomic(Path(folder) / OUTPUT_MARKER,
                             {"made_by": f"kakugo {command}", "files": sorted(files)})


def marked_files(folder: str | Path) -> list[str]:
    """The files ``folder``'s marker lists (none when it has no readable marker)."""
    try:
        data = json.loads((Path(folder) / OUTPUT_MARKER).read_text("utf-8"))
        return [str(f) for f in data.get("files", []) if isinstance(f, str)]
    except (OSError, ValueError, AttributeError):
        return []
