"""Publishing a release folder to the Hugging Face Hub (or any Hub-compatible server named by
``HF_ENDPOINT``) with the ordinary ``huggingface_hub`` client.

One release is one atomic commit made against the revision's current head (``parent_commit``),
so a concurrent push makes it fail instead of silently mixing trees. Files are compared with the
remote by content hash first (git blob SHA-1, or SHA-256 for LFS files): when nothing differs no
commit and no tag are made. The repository mirrors the folder: remote files the release no longer
has are deleted in the same commit (``.gitattributes`` is kept).

The token comes only from ``HF_TOKEN`` or the huggingface_hub login; it is never printed, logged
or written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kakugo_core.errors import KakugoError
from kakugo_core.toolkit.hub import get_token, hub_error
from kakugo_core.toolkit.release_files import git_blob_sha1, iter_files, sha256_file

KEEP_REMOTE = frozenset({".gitattributes"})


@dataclass
class Plan:
    """What publishing a folder would change in the repository."""

    repo_exists: bool
    head: str | None
    upload: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    checked_remote: bool = True

    @property
    def changed(self) -> bool:
        return bool(self.upload or self.delete)


def _api(token: str | None) -> Any:
    from huggingface_hub import HfApi

    return HfApi(token=token if token else False)


def whoami(token: str) -> str:
    """The user name the token belongs to."""
    try:
        return str(_api(token).whoami()["name"])
    except Exception as exc:
        raise hub_error(exc, "asking who the token belongs to") from None


def plan(folder: Path, repo_id: str, options: Mapping[str, Any]) -> Plan:
    """Compare ``folder`` with the repository's revision (read-only requests only)."""
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    repo_type = options.get("repo_type", "model")
    revision = options.get("revision") or "main"
    local = [p.relative_to(folder).as_posix() for p in iter_files(folder)]
    token = options.get("token")
    api = _api(token)
    try:
        head = api.repo_info(repo_id, repo_type=repo_type, revision=revision).sha
    except RepositoryNotFoundError:
        return Plan(False, None, upload=local)
    except RevisionNotFoundError:
        try:
            head = api.repo_info(repo_id, repo_type=repo_type).sha  # the branch starts at main
        except Exception as exc:
            raise hub_error(exc, f"reading {repo_id}") from None
    except Exception as exc:
        raise hub_error(exc, f"reading {repo_id}") from None
    from huggingface_hub.hf_api import RepoFile

    try:
        remote = {f.path: f for f in api.list_repo_tree(
            repo_id, recursive=True, revision=head, repo_type=repo_type) if isinstance(f, RepoFile)}
    except Exception as exc:
        raise hub_error(exc, f"listing the files of {repo_id}") from None
    result = Plan(True, head)
    for rel in local:
        path = folder / rel
        found = remote.get(rel)
        same = found is not None and (
            (found.lfs is not None and found.lfs.sha256 == sha256_file(path))
            or (found.lfs is None and found.blob_id == git_blob_sha1(path))
        )
        (result.unchanged if same else result.upload).append(rel)
    result.delete = sorted(set(remote) - set(local) - KEEP_REMOTE)
    return result


def _tag_name(template: str, commit: str) -> str:
    date = datetime.now(timezone.utc).strftime("%Y%m%d")
    return template.format(date=date, short_sha=commit[:7], sha=commit)


def publish(folder: Path, repo_id: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Create the repository if needed and commit what changed; tag the new commit.

    Options: ``token`` (required), ``repo_type`` ("model"/"dataset"/"space"), ``space_sdk``
    (a Space's, default "static"), ``private``,
    ``revision`` (a branch, created from main when missing), ``create_pr``, ``tag`` (a name, or
    a template with ``{date}``/``{short_sha}``), ``commit_message``.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    token = options.get("token") or get_token()
    repo_type = options.get("repo_type", "model")
    revision = options.get("revision") or "main"
    create_pr = bool(options.get("create_pr"))
    api = _api(token)
    try:
        extra = {"space_sdk": options.get("space_sdk") or "static"} if repo_type == "space" else {}
        url = api.create_repo(repo_id, repo_type=repo_type, private=bool(options.get("private")),
                              exist_ok=True, **extra)
    except Exception as exc:
        raise hub_error(exc, f"creating {repo_id}") from None
    if revision != "main" and not create_pr:
        try:
            api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True)
        except Exception as exc:
            raise hub_error(exc, f"creating branch {revision!r}") from None

    changes = plan(folder, repo_id, {**options, "token": token})
    tag_template = options.get("tag") or ""
    explicit_tag = bool(tag_template) and "{" not in tag_template
    existing_tags: dict[str, str] = {}
    if tag_template and not create_pr:
        try:
            refs = api.list_repo_refs(repo_id, repo_type=repo_type)
        except Exception as exc:
            raise hub_error(exc, f"listing the tags of {repo_id}") from None
        existing_tags = {t.name: t.target_commit for t in refs.tags}
        if explicit_tag and tag_template in existing_tags and (
            changes.changed or existing_tags[tag_template] != changes.head
        ):
            raise KakugoError(f"tag {tag_template!r} already exists in {repo_id} on another "
                              "commit; choose a new --tag")

    result: dict[str, Any] = {"location": str(url), "revision": changes.head, "changed": False,
                              "files": [], "deleted": [], "tag": None, "pr_url": None}
    if changes.changed:
        operations: list[Any] = [CommitOperationAdd(path_in_repo=rel,
                                                    path_or_fileobj=str(folder / rel))
                                 for rel in changes.upload]
        operations += [CommitOperationDelete(path_in_repo=rel) for rel in changes.delete]
        message = options.get("commit_message") or f"Kakugo release of {repo_id}"
        description = "\n".join([*(f"- update {p}" for p in changes.upload),
                                 *(f"- delete {p}" for p in changes.delete)])
        try:
            info = api.create_commit(
                repo_id, operations, commit_message=message, commit_description=description,
                repo_type=repo_type, revision=revision, create_pr=create_pr,
                parent_commit=changes.head,
            )
        except Exception as exc:
            raise hub_error(exc, f"committing to {repo_id}") from None
        result.update(revision=info.oid, changed=True, files=list(changes.upload),
                      deleted=list(changes.delete), pr_url=info.pr_url)
    if tag_template and not create_pr and result["revision"]:
        tag = tag_template if explicit_tag else _tag_name(tag_template, result["revision"])
        if tag not in existing_tags and (changes.changed or explicit_tag):
            try:
                api.create_tag(repo_id, tag=tag, revision=result["revision"],
                               tag_message=f"Kakugo release {tag}", repo_type=repo_type)
            except Exception as exc:
                raise hub_error(exc, f"tagging {repo_id} as {tag!r}") from None
            result["tag"] = tag
    return result
