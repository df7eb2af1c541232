"""A Hugging Face Hub-compatible HTTP server on 127.0.0.1, for tests.

It speaks the subset of the Hub's API that ``huggingface_hub.HfApi`` uses to publish and download
a repository: ``whoami-v2``, ``repos/create``, model/dataset info, ``preupload``, NDJSON
``commit`` (regular files inline as base64, LFS files by sha256), the Git LFS ``batch`` API with
the "basic" transfer (files whose names end in one of ``lfs_suffixes`` are declared LFS, as the
Hub does for weights; the client uses it when Xet is unavailable, which tests arrange), ``tag``,
``branch``, ``refs``, ``tree`` (with ``lfs`` entries), ``commits``, ``validate-yaml`` and file
downloads through ``resolve/`` with ``ETag``, ``X-Linked-Etag`` and ``X-Repo-Commit`` headers.
State lives in memory: repositories, commits (each a full snapshot of the tree), branches, tags,
pull requests and LFS objects. Every request is recorded in :attr:`HubServer.requests` (method,
path, lower-cased headers) with its body in :attr:`HubServer.bodies`, so tests can prove what
was, or was not, sent.

Usage::

    with HubServer(tokens={"hf_secret": "alice"}) as hub:
        os.environ["HF_ENDPOINT"] = hub.url
        ...
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

ZERO_SHA = "0" * 40
GITATTRIBUTES = (b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
                 b"*.gguf filter=lfs diff=lfs merge=lfs -text\n")


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob, as the Hub reports it for regular files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(data: bytes) -> bytes:
    """The Git LFS pointer file git stores in place of an LFS file."""
    oid = hashlib.sha256(data).hexdigest()
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(data)}\n"\
        .encode()


@dataclass
class Commit:
    oid: str
    parent: str | None
    title: str
    files: dict[str, bytes]
    date: str
    lfs: frozenset[str] = frozenset()  # paths stored as LFS objects


@dataclass
class Repo:
    repo_id: str
    repo_type: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    pull_requests: dict[int, str] = field(default_factory=dict)  # number -> head commit

    def resolve(self, revision: str) -> str | None:
        """Commit id of a branch, tag, ``refs/pr/N`` or (full) commit id."""
        if revision in self.branches:
            return self.branches[revision]
        if revision in self.tags:
            return self.tags[revision]
        match = re.fullmatch(r"refs/pr/(\d+)", revision)
        if match:
            return self.pull_requests.get(int(match.group(1)))
        if revision in self.commits:
            return revision
        return None

    def history(self, oid: str) -> list[Commit]:
        out = []
        cursor: str | None = oid
        while cursor:
            commit = self.commits[cursor]
            out.append(commit)
            cursor = commit.parent
        return out


def _card_tags(readme: bytes) -> list[str]:
    """The ``tags`` of a README's YAML front matter."""
    match = re.match(r"^---\n(.*?)\n---\n", readme.decode("utf-8", "replace"), re.S)
    try:
        data = yaml.safe_load(match.group(1)) if match else None
    except yaml.YAMLError:
        return []
    tags = data.get("tags") if isinstance(data, dict) else None
    return [str(t) for t in tags] if isinstance(tags, list) else []


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class HubState:
    """Repositories and users; all methods are called under one lock."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = dict(tokens)  # token -> user name
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}  # sha256 -> content
        self.lock = threading.Lock()
        self._counter = 0

    def new_oid(self, seed: str) -> str:
        self._counter += 1
        return hashlib.sha1(f"{seed}:{self._counter}:{time.time_ns()}".encode()).hexdigest()

    def commit(
        self, repo: Repo, parent: str | None, files: dict[str, bytes], title: str,
        lfs: frozenset[str] = frozenset(),
    ) -> Commit:
        oid = self.new_oid(repo.repo_id)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        commit = Commit(oid, parent, title, files, stamp, lfs & set(files))
        repo.commits[oid] = commit
        return commit


class HubServer:
    """Runs :class:`HubState` behind a threading HTTP server on 127.0.0.1 (random port)."""

    def __init__(
        self,
        tokens: dict[str, str] | None = None,
        lfs_suffixes: tuple[str, ...] = (".safetensors", ".gguf"),
    ) -> None:
        self.state = HubState(tokens or {})
        self.lfs_suffixes = lfs_suffixes
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # headers lower-cased
        self.bodies: list[bytes] = []
        handler = type("Handler", (_Handler,), {"server_ref": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> HubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    # -- helpers for tests -----------------------------------------------------------------
    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        return self.state.repos[(repo_type, repo_id)]

    def writes(self) -> list[tuple[str, str]]:
        """Requests that change state (everything but GET/HEAD and validate-yaml)."""
        return [
            (method, path) for method, path, _ in self.requests
            if method not in ("GET", "HEAD") and "validate-yaml" not in path
        ]


_API = re.compile(r"^/api/(models|datasets|spaces)/([^/]+/[^/]+)(?:/(.*))?$")
_RESOLVE = re.compile(r"^/(?:(datasets|spaces)/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")
_LFS_BATCH = re.compile(r"^/(?:(datasets|spaces)/)?([^/]+/[^/]+)\.git/info/lfs/objects/batch$")
_LFS_UPLOAD = re.compile(r"^/lfs-upload/([0-9a-f]{64})$")


class _Handler(BaseHTTPRequestHandler):
    server_ref: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr
        pass

    # -- plumbing --------------------------------------------------------------------------
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            return self.rfile.read(length)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return b""

    def _send(
        self, status: int, payload: Any = None, headers: dict[str, str] | None = None,
        raw: bytes | None = None, head: bool = False,
    ) -> None:
        body = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        if raw is None:
            self.send_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _error(self, err: HubError, head: bool = False) -> None:
        headers = {"X-Error-Message": err.message}
        if err.code:
            headers["X-Error-Code"] = err.code
        self._send(err.status, {"error": err.message}, headers, head=head)

    def _user(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return self.server_ref.state.tokens.get(auth[len("Bearer "):])
        return None

    def _require_user(self) -> str:
        user = self._user()
        if user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        return user

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server_ref.requests.append((method, path, headers))
        body = self._body() if method in ("POST", "PUT", "DELETE") else b""
        self.server_ref.bodies.append(body)
        try:
            with self.server_ref.state.lock:
                self._route(method, path, query, body)
        except HubError as err:
            self._error(err, head=method == "HEAD")

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    # -- routing ---------------------------------------------------------------------------
    def _route(self, method: str, path: str, query: dict[str, str], body: bytes) -> None:
        if path == "/api/whoami-v2" and method == "GET":
            user = self._require_user()
            return self._send(200, {
                "type": "user", "name": user, "fullname": user, "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"role": "write"}},
            })
        if path == "/api/validate-yaml" and method == "POST":
            return self._validate_yaml(json.loads(body or b"{}"))
        if path == "/api/repos/create" and method == "POST":
            return self._create_repo(json.loads(body or b"{}"))
        if path in ("/api/models", "/api/datasets", "/api/spaces") and method == "GET":
            return self._list(path.rsplit("/", 1)[1][:-1], query)
        match = _LFS_BATCH.match(path)
        if match and method == "POST":
            self._require_user()
            self._repo(match.group(1) or "models", match.group(2))
            return self._lfs_batch(json.loads(body or b"{}"))
        match = _LFS_UPLOAD.match(path)
        if match and method == "PUT":
            return self._lfs_upload(match.group(1), body)
        match = _RESOLVE.match(path)
        if match and method in ("GET", "HEAD"):
            kind = (match.group(1) or "models")
            repo = self._repo(kind, match.group(2))
            return self._resolve(repo, unquote(match.group(3)), unquote(match.group(4)),
                                 head=method == "HEAD")
        match = _API.match(path)
        if not match:
            raise HubError(404, f"no route for {method} {path}")
        kind, repo_id, rest = match.group(1), match.group(2), match.group(3) or ""
        repo = self._repo(kind, repo_id)
        segments = rest.split("/") if rest else []
        action = segments[0] if segments else ""
        arg = unquote(segments[1]) if len(segments) > 1 else ""
        if method == "GET" and action == "":
            return self._info(repo, "main")
        if method == "GET" and action == "revision":
            return self._info(repo, arg)
        if method == "GET" and action == "tree":
            sub = unquote("/".join(segments[2:])) if len(segments) > 2 else ""
            return self._tree(repo, arg, sub, query.get("recursive") in ("True", "true", "1"))
        if method == "GET" and action == "refs":
            return self._refs(repo)
        if method == "GET" and action == "commits":
            return self._commits(repo, arg)
        if method == "POST":
            user = self._require_user()
            if repo.repo_id.split("/")[0] != user:
                raise HubError(403, f"{user} cannot write to {repo.repo_id}")
            if action == "preupload":
                return self._preupload(repo, arg, json.loads(body or b"{}"))
            if action == "commit":
                return self._commit(repo, arg, body, query.get("create_pr") == "1")
            if action == "tag":
                return self._tag(repo, arg, json.loads(body or b"{}"))
            if action == "branch":
                return self._branch(repo, arg, json.loads(body or b"{}"))
        raise HubError(404, f"no route for {method} {path}")

    def _repo(self, kind: str, repo_id: str) -> Repo:
        repo = self.server_ref.state.repos.get((kind.rstrip("s"), repo_id))
        if repo is None or (repo.private and self._user() != repo_id.split("/")[0]):
            raise HubError(404, f"Repository not found: {repo_id}", "RepoNotFound")
        return repo

    def _head(self, repo: Repo, revision: str) -> Commit:
        oid = repo.resolve(revision)
        if oid is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return repo.commits[oid]

    # -- endpoints -------------------------------------------------------------------------
    def _validate_yaml(self, payload: dict[str, Any]) -> None:
        content = payload.get("content", "")
        match = re.match(r"^---\n(.*?)\n---\n", content, re.S)
        if match:
            try:
                data = yaml.safe_load(match.group(1))
            except yaml.YAMLError as exc:
                return self._send(400, {"errors": [{"message": f"invalid YAML: {exc}"}]})
            if data is not None and not isinstance(data, dict):
                return self._send(400, {"errors": [{"message": "metadata must be a mapping"}]})
        self._send(200, {"errors": [], "warnings": []})

    def _create_repo(self, payload: dict[str, Any]) -> None:
        user = self._require_user()
        state = self.server_ref.state
        namespace = payload.get("organization") or user
        if namespace != user:
            raise HubError(403, f"You don't have the rights to create a repo under {namespace}")
        repo_id = f"{namespace}/{payload['name']}"
        kind = payload.get("type") or "model"
        prefix = "" if kind == "model" else f"{kind}s/"
        url = f"{self.server_ref.url}/{prefix}{repo_id}"
        if (kind, repo_id) in state.repos:
            return self._send(409, {"error": "You already created this repo", "url": url})
        repo = Repo(repo_id, kind, payload.get("visibility") == "private")
        first = state.commit(repo, None, {".gitattributes": GITATTRIBUTES}, "initial commit")
        repo.branches["main"] = first.oid
        state.repos[(kind, repo_id)] = repo
        self._send(200, {"url": url, "name": repo_id, "id": repo_id})

    def _list(self, kind: str, query: dict[str, str]) -> None:
        """``list_models`` and co: ``author``, ``search`` (a substring of the id), ``filter``
        (tags from the README's front matter; repeatable) and ``limit``; private repositories
        only for their owner."""
        wanted_tags = parse_qs(urlsplit(self.path).query).get("filter", [])
        user = self._user()
        out = []
        for (repo_kind, repo_id), repo in sorted(self.server_ref.state.repos.items()):
            owner = repo_id.split("/")[0]
            if repo_kind != kind or (repo.private and user != owner):
                continue
            if query.get("author") and owner != query["author"]:
                continue
            if query.get("search") and query["search"].lower() not in repo_id.lower():
                continue
            head = repo.commits[repo.branches["main"]]
            tags = _card_tags(head.files.get("README.md", b""))
            if any(tag not in tags for tag in wanted_tags):
                continue
            out.append({"id": repo_id, "modelId": repo_id, "author": owner, "sha": head.oid,
                        "private": repo.private, "lastModified": head.date, "tags": tags,
                        "downloads": 0, "likes": 0})
        if query.get("limit"):
            out = out[:int(query["limit"])]
        self._send(200, out)

    def _info(self, repo: Repo, revision: str) -> None:
        commit = self._head(repo, revision)
        self._send(200, {
            "id": repo.repo_id, "modelId": repo.repo_id, "author": repo.repo_id.split("/")[0],
            "sha": commit.oid, "private": repo.private, "disabled": False, "gated": False,
            "lastModified": commit.date, "tags": [], "downloads": 0, "likes": 0,
            "siblings": [{"rfilename": name} for name in sorted(commit.files)],
        })

    def _tree(self, repo: Repo, revision: str, sub: str, recursive: bool) -> None:
        commit = self._head(repo, revision)
        prefix = f"{sub.rstrip('/')}/" if sub else ""
        entries: dict[str, dict[str, Any]] = {}
        for name, data in sorted(commit.files.items()):
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix):]
            parts = rest.split("/")
            for depth in range(1, len(parts)):
                folder = prefix + "/".join(parts[:depth])
                if recursive or depth == 1:
                    entries.setdefault(folder, {"type": "directory", "oid": ZERO_SHA, "size": 0,
                                                "path": folder})
                if not recursive:
                    break
            if recursive or len(parts) == 1:
                entry: dict[str, Any] = {"type": "file", "oid": git_blob_sha1(data),
                                         "size": len(data), "path": name}
                if name in commit.lfs:
                    pointer = lfs_pointer(data)
                    entry["oid"] = git_blob_sha1(pointer)
                    entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data),
                                    "pointerSize": len(pointer)}
                entries[name] = entry
        if sub and not entries:
            raise HubError(404, f"{sub} does not exist", "EntryNotFound")
        self._send(200, list(entries.values()))

    def _refs(self, repo: Repo) -> None:
        def ref(kind: str, name: str, oid: str) -> dict[str, str]:
            return {"name": name, "ref": f"refs/{kind}/{name}", "targetCommit": oid}

        self._send(200, {
            "branches": [ref("heads", n, o) for n, o in sorted(repo.branches.items())],
            "tags": [ref("tags", n, o) for n, o in sorted(repo.tags.items())],
            "converts": [],
            "pullRequests": [
                {"name": f"refs/pr/{n}", "ref": f"refs/pr/{n}", "targetCommit": o}
                for n, o in sorted(repo.pull_requests.items())
            ],
        })

    def _commits(self, repo: Repo, revision: str) -> None:
        head = self._head(repo, revision)
        self._send(200, [
            {"id": c.oid, "title": c.title, "message": c.title, "authors": [], "date": c.date}
            for c in repo.history(head.oid)
        ])

    def _preupload(self, repo: Repo, revision: str, payload: dict[str, Any]) -> None:
        oid = repo.resolve(revision)
        head = repo.commits[oid] if oid else None
        out = []
        for entry in payload.get("files", []):
            path = entry["path"]
            lfs = entry.get("size", 0) > 0 and path.endswith(self.server_ref.lfs_suffixes)
            remote = head.files.get(path) if head else None
            remote_oid = None
            if remote is not None:
                remote_oid = (hashlib.sha256(remote).hexdigest() if path in head.lfs  # type: ignore[union-attr]
                              else git_blob_sha1(remote))
            out.append({"path": path, "uploadMode": "lfs" if lfs else "regular",
                        "shouldIgnore": False, "oid": remote_oid})
        self._send(200, {"files": out, "commitOid": oid})

    def _commit(self, repo: Repo, revision: str, body: bytes, create_pr: bool) -> None:
        state = self.server_ref.state
        head = self._head(repo, revision)
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "commit payload must start with a header line")
        header = lines[0]["value"]
        parent = header.get("parentCommit")
        if parent and parent != head.oid:
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        files = dict(head.files)
        lfs = set(head.lfs)
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file":
                if value.get("encoding") != "base64":
                    raise HubError(400, "only base64-encoded files are supported")
                files[value["path"]] = base64.b64decode(value["content"])
                lfs.discard(value["path"])
            elif key == "lfsFile":
                data = state.lfs_objects.get(value["oid"])
                if data is None:
                    raise HubError(400, f"LFS object {value['oid']} was never uploaded")
                files[value["path"]] = data
                lfs.add(value["path"])
            elif key == "deletedFile":
                if value["path"] not in files:
                    raise HubError(404, f"{value['path']} does not exist", "EntryNotFound")
                del files[value["path"]]
            elif key == "deletedFolder":
                folder = value["path"].rstrip("/") + "/"
                files = {k: v for k, v in files.items() if not k.startswith(folder)}
            else:
                raise HubError(400, f"unsupported commit operation {key!r} (this server is "
                                    "regular-files only)")
        commit = state.commit(repo, head.oid, files, header.get("summary") or "update",
                              frozenset(lfs))
        prefix = "" if repo.repo_type == "model" else f"{repo.repo_type}s/"
        pr_url = None
        if create_pr:
            number = max(repo.pull_requests, default=0) + 1
            repo.pull_requests[number] = commit.oid
            pr_url = f"{self.server_ref.url}/{prefix}{repo.repo_id}/discussions/{number}"
        else:
            target = revision if revision in repo.branches else None
            if target is None:
                raise HubError(400, f"cannot commit to {revision!r}: not a branch")
            repo.branches[target] = commit.oid
        self._send(200, {
            "commitUrl": f"{self.server_ref.url}/{prefix}{repo.repo_id}/commit/{commit.oid}",
            "commitOid": commit.oid, "pullRequestUrl": pr_url, "success": True,
        })

    def _tag(self, repo: Repo, revision: str, payload: dict[str, Any]) -> None:
        head = self._head(repo, revision)
        tag = payload.get("tag", "")
        if not re.fullmatch(r"[A-Za-z0-9._\-]+", tag):
            raise HubError(400, f"invalid tag name {tag!r}")
        if tag in repo.tags:
            raise HubError(409, f"Tag {tag} already exists")
        repo.tags[tag] = head.oid
        self._send(200, {"tag": tag, "commit": head.oid})

    def _branch(self, repo: Repo, branch: str, payload: dict[str, Any]) -> None:
        if branch in repo.branches:
            raise HubError(409, f"Branch {branch} already exists")
        start = self._head(repo, payload.get("startingPoint") or "main")
        repo.branches[branch] = start.oid
        self._send(200, {"name": branch})

    def _resolve(self, repo: Repo, revision: str, filename: str, head: bool) -> None:
        commit = self._head(repo, revision)
        data = commit.files.get(filename)
        if data is None:
            raise HubError(404, f"Entry not found: {filename}", "EntryNotFound")
        etag = (hashlib.sha256(data).hexdigest() if filename in commit.lfs
                else git_blob_sha1(data))
        headers = {
            "ETag": f'"{etag}"',
            "X-Repo-Commit": commit.oid,
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
        }
        if filename in commit.lfs:
            headers["X-Linked-Etag"] = f'"{etag}"'
            headers["X-Linked-Size"] = str(len(data))
        rng = self.headers.get("Range")
        status = 200
        if rng and not head:
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if match:
                start = int(match.group(1))
                end = int(match.group(2)) if match.group(2) else len(data) - 1
                headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
                data = data[start:end + 1]
                status = 206
        self._send(status, raw=data, headers=headers, head=head)

    def _lfs_batch(self, payload: dict[str, Any]) -> None:
        if payload.get("operation") != "upload" or "basic" not in payload.get("transfers", []):
            raise HubError(400, "only uploads with the basic transfer are supported")
        objects = []
        for obj in payload.get("objects", []):
            entry: dict[str, Any] = {"oid": obj["oid"], "size": obj["size"]}
            if obj["oid"] not in self.server_ref.state.lfs_objects:
                entry["actions"] = {"upload": {
                    "href": f"{self.server_ref.url}/lfs-upload/{obj['oid']}", "header": {}}}
            objects.append(entry)
        self._send(200, {"transfer": "basic", "objects": objects})

    def _lfs_upload(self, oid: str, body: bytes) -> None:
        if hashlib.sha256(body).hexdigest() != oid:
            raise HubError(400, "uploaded content does not match its sha256")
        self.server_ref.state.lfs_objects[oid] = body
        self._send(200, {})


def point_client_at(server: HubServer, token: str, tmp_path: Any, monkeypatch: Any) -> None:
    """Point the real huggingface_hub client at ``server``, logged in with ``token``, with an
    empty HF home and cache under ``tmp_path`` (for a pytest fixture's ``monkeypatch``)."""
    import huggingface_hub._commit_api as commit_api
    from huggingface_hub import constants

    home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_TOKEN", token)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.delenv("HF_OIDC_RESOURCE", raising=False)
    # huggingface_hub reads these once, at import: point them at the server and tmp_path
    monkeypatch.setattr(constants, "ENDPOINT", server.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        server.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    # our server speaks Git LFS, not the Xet storage protocol: use the client's LFS path
    monkeypatch.setattr(commit_api, "is_xet_available", lambda: False)
