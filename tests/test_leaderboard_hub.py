"""The leaderboard and the Hub, through the real huggingface_hub client against the Hub test
server on 127.0.0.1: ``kakugo leaderboard publish`` (a static Space or a dataset repo, one commit
per change and none when nothing changed) and ``kakugo leaderboard import`` (results from a card
written by Kakugo's release and from one written by hand in the Hub's model-index format)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hub_server import HubServer, point_client_at
from test_leaderboard_site import fill_store

from kakugo_core.cli import cli
from kakugo_core.files import OUTPUT_MARKER
from kakugo_core.store import ResultsStore

TOKEN = "hf_KakugoFakeToken_leaderboard_31c9"
USER = "alice"


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    """Our Hub on 127.0.0.1, with HF_ENDPOINT, HF_TOKEN and an empty HF home pointing at it."""
    with HubServer(tokens={TOKEN: USER}) as server:
        point_client_at(server, TOKEN, tmp_path, monkeypatch)
        yield server


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_publish_space_round_trip_and_idempotent(hub: HubServer, tmp_path: Path) -> None:
    from huggingface_hub import snapshot_download

    db = tmp_path / "results.sqlite"
    fill_store(db)
    out = invoke("leaderboard", "publish", f"{USER}/board", "--db", str(db),
                 "--baseline", "base")
    assert "published" in out
    repo = hub.repo(f"{USER}/board", "space")
    assert len(repo.commits) == 2  # the repository's first commit, then the site
    local = Path(snapshot_download(f"{USER}/board", repo_type="space",
                                   cache_dir=tmp_path / "dl"))
    invoke("leaderboard", "--db", str(db), "--format", "site", "--out", str(tmp_path / "site"),
           "--baseline", "base")
    site = {p.relative_to(tmp_path / "site").as_posix(): p.read_bytes()
            for p in (tmp_path / "site").rglob("*") if p.is_file()}
    # the local folder's output marker is Kakugo's bookkeeping, not a page: never published
    assert not (local / OUTPUT_MARKER).exists()
    site.pop(OUTPUT_MARKER)
    for rel, data in site.items():
        assert (local / rel).read_bytes() == data, rel  # the same site as --format site
    card = (local / "README.md").read_text("utf-8")
    assert "sdk: static" in card and "app_file: index.html" in card
    assert "| alpha |" in card
    table = [json.loads(x) for x in (local / "data" / "results.jsonl").read_text().splitlines()]
    with ResultsStore(db) as store:
        assert len(table) == len(store.rows())
    assert {r["model"] for r in table} == {"base", "alpha", "gamma", "zeta<b>"}

    commits_before = len(hub.writes())
    again = invoke("leaderboard", "publish", f"{USER}/board", "--db", str(db),
                   "--baseline", "base")
    assert "no commit made" in again
    assert len(repo.commits) == 2
    assert not [w for w in hub.writes()[commits_before:] if "/commit/" in w[1]]

    with ResultsStore(db) as store:  # a new result: one more commit with the changed files
        store.put("omega", "r1", "sib200", "jav_Latn", 3, "h1", [("acc", 0.99, 0.01, 204)])
    invoke("leaderboard", "publish", f"{USER}/board", "--db", str(db), "--baseline", "base")
    assert len(repo.commits) == 3
    head = repo.commits[repo.branches["main"]]
    assert b"omega" in head.files["index.html"] and "models/omega.html" in head.files


def test_publish_dataset_and_dry_run(hub: HubServer, tmp_path: Path) -> None:
    import pyarrow.parquet as pq
    from huggingface_hub import hf_hub_download

    db = tmp_path / "results.sqlite"
    fill_store(db)
    dry = invoke("leaderboard", "publish", f"{USER}/board-data", "--repo-type", "dataset",
                 "--db", str(db), "--dry-run")
    assert "upload     index.html" in dry and "upload     data/results.parquet" in dry
    assert (("dataset", f"{USER}/board-data") not in hub.state.repos)  # nothing written
    invoke("leaderboard", "publish", f"{USER}/board-data", "--repo-type", "dataset",
           "--db", str(db))
    repo = hub.repo(f"{USER}/board-data", "dataset")
    files = repo.commits[repo.branches["main"]].files
    assert "path: data/results.parquet" in files["README.md"].decode()
    local = Path(hf_hub_download(f"{USER}/board-data", "data/results.parquet",
                                 repo_type="dataset", cache_dir=tmp_path / "dl"))
    table = pq.read_table(local).to_pylist()
    with ResultsStore(db) as store:
        assert sorted((r["model"], r["language"], r["metric"], r["value"]) for r in table) == \
            sorted((r.model, r.language, r.metric, r.value) for r in store.rows())
    dry = invoke("leaderboard", "publish", f"{USER}/board-data", "--repo-type", "dataset",
                 "--db", str(db), "--dry-run")
    assert "upload" not in dry and "unchanged  index.html" in dry


HANDWRITTEN_CARD = """---
language:
- jv
- sw
tags:
- community
model-index:
- name: handmade-7b
  results:
  - task:
      type: text-classification
      name: Topic classification
    dataset:
      name: SIB-200 (Javanese)
      type: Davlan/sib200
      config: jav_Latn
      split: test
    metrics:
    - type: accuracy
      value: 61.3
      name: Accuracy (5-shot)
  - task:
      type: text-classification
    dataset:
      name: SIB-200 (Swahili)
      type: Davlan/sib200
      config: sw
      split: test
    metrics:
    - type: accuracy
      value: 0.702
      name: Accuracy (5-shot)
  - task:
      type: multiple-choice
    dataset:
      name: Belebele
      type: facebook/belebele
      config: jav_Latn
    metrics:
    - type: accuracy
      value: 44.0
---

# handmade-7b

A card written by hand, in the Hub's documented model-index format.
"""


@pytest.mark.slow
def test_import_kakugo_and_handwritten_cards(
        hub: HubServer, tmp_path: Path, tiny_model: Path, sib200_dir: Path) -> None:
    from huggingface_hub import HfApi

    from kakugo_core.release import release
    from kakugo_core.scoring import run_bench
    from kakugo_core.testing import build_tiny_model, read_sib200_texts

    student = build_tiny_model(tmp_path / "student", read_sib200_texts(
        sib200_dir, ["eng_Latn", "jav_Latn"]), seed=1)
    local_db = tmp_path / "local.sqlite"
    with ResultsStore(local_db) as store:
        run_bench([str(student), str(tiny_model)], ["sib200"], ["jav_Latn"], store=store,
                  n_shot=0, limit=16, progress=False)
        scored = {r.metric: r for r in store.rows([str(student)])}
    released = release(student, target="hub", repo_id=f"{USER}/kakugo-tiny-jav",
                       store=local_db, base_model=str(tiny_model), language="Javanese")
    api = HfApi()
    api.create_repo(f"{USER}/handmade-7b")
    api.upload_file(path_or_fileobj=HANDWRITTEN_CARD.encode(), path_in_repo="README.md",
                    repo_id=f"{USER}/handmade-7b")
    api.create_repo(f"{USER}/no-results")
    handmade_sha = api.model_info(f"{USER}/handmade-7b").sha

    db = tmp_path / "imported.sqlite"
    out = invoke("leaderboard", "import", "--author", USER, "--db", str(db))
    assert "from 2 repositories" in out and "no-results" in out

    with ResultsStore(db) as store:
        rows = {(r.model, r.benchmark, r.language, r.metric): r for r in store.rows()}
    kakugo = rows[(f"{USER}/kakugo-tiny-jav", "sib200", "jav_Latn", "acc")]
    assert kakugo.revision == released.revision  # the commit the results were read at
    # cards carry percentages rounded to 2 decimals: back as fractions within 5e-5
    assert (kakugo.value, kakugo.stderr, kakugo.n, kakugo.n_shot) == pytest.approx(
        (scored["acc"].value, scored["acc"].stderr, scored["acc"].n, 0), abs=5e-5)
    assert kakugo.versions["source"] == f"hub:{USER}/kakugo-tiny-jav (.eval_results/sib200.yaml)"
    assert kakugo.versions["source_commit"] == released.revision
    hand = {k[1:]: r for k, r in rows.items() if k[0] == f"{USER}/handmade-7b"}
    assert hand[("sib200", "jav_Latn", "acc")].value == pytest.approx(0.613)  # percent -> 0-1
    assert hand[("sib200", "swh_Latn", "acc")].value == pytest.approx(0.702)  # "sw" resolved
    assert hand[("sib200", "jav_Latn", "acc")].n_shot == 5
    assert hand[("belebele", "jav_Latn", "acc")].value == pytest.approx(0.44)
    assert hand[("belebele", "jav_Latn", "acc")].n_shot == 0
    assert {r.revision for r in hand.values()} == {handmade_sha}
    assert hand[("sib200", "jav_Latn", "acc")].versions["source"] == (
        f"hub:{USER}/handmade-7b (model-index)")

    again = invoke("leaderboard", "import", f"{USER}/kakugo-tiny-jav", f"{USER}/handmade-7b",
                   "--db", str(db))
    assert " 0 new" in again  # the same commits: nothing changes
    found = invoke("leaderboard", "import", "--tag", "community", "--db", str(db))
    assert "from 1 repositories" in found

    # the imported results are on the leaderboard, with their provenance
    board = json.loads(invoke("leaderboard", "--db", str(db), "--format", "json"))
    assert {f"{USER}/kakugo-tiny-jav", f"{USER}/handmade-7b"} <= set(board["models"])
    invoke("leaderboard", "--db", str(db), "--format", "site", "--out", str(tmp_path / "site"))
    page = (tmp_path / "site" / "models" / f"{USER}__handmade-7b.html").read_text("utf-8")
    assert f"hub:{USER}/handmade-7b (model-index) @ {handmade_sha[:12]}" in page
