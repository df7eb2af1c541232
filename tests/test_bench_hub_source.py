"""Benchmark data from the Hub: `kakugo bench` loads a dataset through the real `datasets` and
`huggingface_hub` clients from our Hub test server, resolves a branch to the commit it names,
records that commit, and loads an older commit when it is pinned."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hub_server import HubServer

from kakugo_core.store import ResultsStore

SHARED_SIB200 = Path(__file__).resolve().parents[2] / "shared" / "data" / "sib200"
CODE = "amh_Ethi"  # real SIB-200 rows (see ../shared/data/sib200/SOURCE.md); not bundled
TOKEN = "hf_davlan_test_token"
README = """---
configs:
- config_name: {code}
  data_files:
  - split: train
    path: data/{code}/train.tsv
  - split: test
    path: data/{code}/test.tsv
---
SIB-200 rows for the Kakugo tests (CC BY-SA 4.0, see ../shared/data/sib200/SOURCE.md).
"""


def _tsv(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["index_id", "category", "text"], delimiter="\t",
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _rows(split: str) -> list[dict[str, str]]:
    with open(SHARED_SIB200 / CODE / f"{split}.tsv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


@pytest.fixture(scope="module")
def hub() -> Iterator[tuple[HubServer, list[str]]]:
    if not (SHARED_SIB200 / CODE).is_dir():
        pytest.skip(f"needs ../shared/data/sib200/{CODE}")
    from huggingface_hub import CommitOperationAdd, HfApi, constants

    with HubServer(tokens={TOKEN: "Davlan"}) as server, pytest.MonkeyPatch.context() as patch:
        patch.setattr(constants, "HF_HUB_OFFLINE", False)  # read once, at import
        api = HfApi(endpoint=server.url, token=TOKEN)
        api.create_repo("Davlan/sib200", repo_type="dataset")
        train, test = _rows("train")[:12], _rows("test")
        commits = []
        for test_rows in (test[:6], test[6:9]):  # the second commit replaces the test split
            info = api.create_commit(
                "Davlan/sib200",
                [CommitOperationAdd("README.md", README.format(code=CODE).encode()),
                 CommitOperationAdd(f"data/{CODE}/train.tsv", _tsv(train)),
                 CommitOperationAdd(f"data/{CODE}/test.tsv", _tsv(test_rows))],
                commit_message="rows", repo_type="dataset",
            )
            commits.append(info.oid)
        yield server, commits


def _bench(hub: HubServer, model: Path, db: Path, home: Path, revision: str):
    env = {
        **os.environ, "KAKUGO_LOAD_PLUGINS": "", "HF_ENDPOINT": hub.url, "HF_TOKEN": TOKEN,
        "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0", "HF_HOME": str(home),
        "HF_HUB_DISABLE_XET": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "kakugo_core", "bench", "-m", str(model), "-b", "sib200",
         "-l", CODE, "--n-shot", "1", "--db", str(db), "--no-progress",
         "--set", f"bench.revisions.sib200={revision}"],
        capture_output=True, text=True, timeout=300, env=env,
    )


def _stored(db: Path) -> dict[str, tuple[int, str]]:
    with ResultsStore(db) as store:
        return {r.prompt_hash: (r.n, r.versions["data_source"]) for r in store.rows()
                if r.metric == "acc"}


@pytest.mark.slow
def test_a_branch_is_resolved_to_its_commit_and_a_pinned_commit_loads_old_data(
    hub: tuple[HubServer, list[str]], tiny_model: Path, tmp_path: Path
) -> None:
    server, (first, second) = hub
    db = tmp_path / "results.sqlite"

    latest = _bench(server, tiny_model, db, tmp_path / "hf", "main")
    assert latest.returncode == 0, latest.stderr
    assert list(_stored(db).values()) == [(3, f"hub:Davlan/sib200@{second}")]

    pinned = _bench(server, tiny_model, db, tmp_path / "hf", first)
    assert pinned.returncode == 0, pinned.stderr
    assert sorted(_stored(db).values()) == [(3, f"hub:Davlan/sib200@{second}"),
                                            (6, f"hub:Davlan/sib200@{first}")]


def test_an_unknown_revision_is_one_line_and_leaves_the_store_alone(
    hub: tuple[HubServer, list[str]], tiny_model: Path, tmp_path: Path
) -> None:
    db = tmp_path / "results.sqlite"
    proc = _bench(hub[0], tiny_model, db, tmp_path / "hf", "no-such-branch")
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "Davlan/sib200@no-such-branch" in proc.stderr and TOKEN not in proc.stderr
    assert not db.exists() or not _stored(db)


def test_the_pinned_defaults_are_commits() -> None:
    from kakugo_core.config import load_config

    revisions = load_config()["bench"]["revisions"]
    for name in ("sib200", "belebele", "global_mmlu"):
        assert re.fullmatch(r"[0-9a-f]{40}", revisions[name]), name
