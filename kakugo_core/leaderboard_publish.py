"""Publishing the leaderboard site to the Hugging Face Hub: ``kakugo leaderboard publish``.

The folder that is uploaded holds the static site (:mod:`kakugo_core.leaderboard_site`), the
results as ``data/results.jsonl`` (and ``data/results.parquet`` in a dataset repo) and a
``README.md`` whose front
matter makes the repository a static Space (``sdk: static``, ``app_file: index.html``) or a
dataset whose viewer reads the Parquet file. It goes through the hub release target's publishing
(:func:`releases._hub.publish`): one atomic commit against the current head, files compared by
content hash first, so publishing an unchanged store makes no commit at all (safe from CI on
every push). The site has no clock in it, which is what makes that hold.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kakugo_core.errors import KakugoError
from kakugo_core.leaderboard import Leaderboard, render
from kakugo_core.store import ResultRow

REPO_TYPES = ("space", "dataset")


def results_parquet(rows: Sequence[ResultRow]) -> bytes:
    """The rows as a Parquet table (deterministic bytes for the same rows)."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    ordered = sorted(rows, key=lambda r: (r.model, r.benchmark, r.language, r.metric,
                                          r.revision, r.n_shot, r.prompt_hash))
    columns: dict[str, list[Any]] = {name: [] for name in ResultRow.__dataclass_fields__}
    for row in ordered:
        for name, value in row.as_dict().items():
            columns[name].append(json.dumps(value, sort_keys=True) if name == "versions"
                                 else value)
    table = pa.table(columns)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def readme(board: Leaderboard, repo_type: str) -> str:
    """The repository card: front matter for a static Space or a dataset, then the table."""
    title = board.title.replace('"', "'")
    if repo_type == "space":
        front = ["---", f'title: "{title}"', "emoji: 📊", "colorFrom: blue", "colorTo: indigo",
                 "sdk: static", "app_file: index.html", "pinned: false",
                 "tags:", "- leaderboard", "- kakugo", "---"]
    else:
        front = ["---", f'pretty_name: "{title}"', "tags:", "- leaderboard", "- kakugo",
                 "configs:", "- config_name: default", "  data_files:",
                 "  - split: train", "    path: data/results.parquet", "---"]
    body = [
        "", f"# {board.title}", "",
        "Scores from Kakugo's results store: one row per model, means over languages with one "
        "standard error." + (f" Δ against {board.baseline}." if board.baseline else ""),
        "Browse the full site from `index.html` (pages per benchmark, language and model, a "
        "heat map and the coverage of missing cells); every score with its provenance is in "
        + ("`data/results.parquet` and " if repo_type == "dataset" else "")
        + "`data/results.jsonl`.", "",
        render(board, "markdown").rstrip("\n"), "",
    ]
    return "\n".join(front + body)


def build_publish_folder(board: Leaderboard, rows: Sequence[ResultRow], folder: Path,
                         repo_type: str) -> Path:
    """Write everything that is uploaded into ``folder``."""
    from kakugo_core.leaderboard_site import Site

    files = Site(board, rows).files()
    files["README.md"] = readme(board, repo_type)
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
    if repo_type == "dataset":  # the dataset viewer's table (a Space keeps the JSONL only)
        (folder / "data" / "results.parquet").write_bytes(results_parquet(rows))
    return folder


def publish_leaderboard(
    board: Leaderboard, rows: Sequence[ResultRow], repo_id: str, repo_type: str = "space",
    options: Mapping[str, Any] | None = None, dry_run: bool = False,
) -> dict[str, Any]:
    """Upload the site to ``repo_id`` with the ``hub`` release target (any target registered
    under that name); returns ``location``, ``revision``, ``changed`` and ``files`` (``changed``
    False and no commit when nothing differs). ``dry_run`` only lists what would change."""
    from kakugo_core.plugins import create
    from kakugo_core.toolkit.hub import get_token

    if repo_type not in REPO_TYPES:
        raise KakugoError(f"--repo-type {repo_type!r}: choose {' or '.join(REPO_TYPES)}")
    if "/" not in repo_id:
        raise KakugoError(f"{repo_id!r}: give the repository as OWNER/NAME")
    target = create("release_targets", "hub")
    options = dict(options or {})
    with tempfile.TemporaryDirectory(prefix="kakugo-leaderboard-") as tmp:
        folder = build_publish_folder(board, rows, Path(tmp), repo_type)
        token = options.get("token") or get_token()
        opts = {"commit_message": "Update the Kakugo leaderboard", "space_sdk": "static",
                "revision": None, "create_pr": False, "tag": "", **options, "token": token,
                "repo_type": repo_type}
        if dry_run:
            return {"lines": target.describe(folder, repo_id, opts)}
        result = target.publish(folder, repo_id, opts)
        return {"location": result.location, "revision": result.revision,
                "changed": result.changed, "files": list(result.files)}
