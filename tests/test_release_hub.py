"""Publishing to a Hub-compatible server on 127.0.0.1 through the real huggingface_hub client,
downloading the repository again, loading and re-scoring the model, and the hub target's
guarantees: one commit and one tag per release, none when nothing changed, branches, pull
requests, a token that never leaks, and bad input that uploads nothing."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_runner import run_cli as _cli
from hub_server import HubServer, point_client_at

from kakugo_core.errors import KakugoError
from kakugo_core.release import release
from kakugo_core.scoring import run_bench
from kakugo_core.store import ResultsStore

TOKEN = "hf_KakugoFakeToken_5f1e9c7d2b"  # recognisable, so any leak is found by grep
USER = "alice"
REPO = f"{USER}/kakugo-tiny-jav"
LIMIT = 24


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path, sib200_dir: Path
           ) -> tuple[Path, Path, Path]:
    """A student (another tiny model), its base, and a store where both were scored for real
    on SIB-200 Javanese."""
    from kakugo_core.testing import build_tiny_model, read_sib200_texts

    root = tmp_path_factory.mktemp("scored")
    student = build_tiny_model(root / "student", read_sib200_texts(
        sib200_dir, ["eng_Latn", "jav_Latn"]), seed=1)
    db = root / "results.sqlite"
    with ResultsStore(db) as store:
        run_bench([str(student), str(tiny_model)], ["sib200"], ["jav_Latn"], store=store,
                  n_shot=0, limit=LIMIT, data_dir=sib200_dir, progress=False)
    return student, tiny_model, db


@pytest.fixture
def store_path(scored: tuple[Path, Path, Path], tmp_path: Path) -> Path:
    """A private copy of the scored store (tests may add rows)."""
    copy = tmp_path / "results.sqlite"
    shutil.copy(scored[2], copy)
    return copy


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    """Our Hub on 127.0.0.1, with HF_ENDPOINT, HF_TOKEN and an empty HF home pointing at it."""
    with HubServer(tokens={TOKEN: USER}) as server:
        point_client_at(server, TOKEN, tmp_path, monkeypatch)
        yield server


def _release(scored: tuple[Path, Path, Path], store_path: Path, **kw: object):  # type: ignore[no-untyped-def]
    student, base, _ = scored
    options: dict[str, object] = {"target": "hub", "repo_id": REPO, "store": store_path,
                                  "base_model": str(base), "language": "Javanese"}
    options.update(kw)
    return release(student, **options)  # type: ignore[arg-type]


def _commits(hub: HubServer, repo: str = REPO, kind: str = "model") -> int:
    return len(hub.repo(repo, kind).commits)


def test_publish_download_load_rescore_and_card(
    hub: HubServer, scored: tuple[Path, Path, Path], store_path: Path, sib200_dir: Path,
    tmp_path: Path
) -> None:
    from huggingface_hub import ModelCard, snapshot_download

    result = _release(scored, store_path, private=True)
    assert result.changed and result.tag and result.tag.startswith("release-")
    assert not list(scored[0].parent.glob(".kakugo-release-*"))  # the work folder is gone
    repo = hub.repo(REPO)
    assert repo.private
    assert repo.tags == {result.tag: result.revision} and repo.branches["main"] == result.revision
    assert _commits(hub) == 2  # the repository's first commit, then one for the release
    head = repo.commits[result.revision]
    # weights and the GGUF exports went through the Git LFS batch API
    name = REPO.split("/")[-1]
    assert head.lfs == {"model.safetensors", f"{name}-F16.gguf", f"{name}-Q8_0.gguf"}
    assert any(path.endswith("/info/lfs/objects/batch") for _, path in hub.writes())
    assert len([w for w in hub.writes() if w[1].endswith("/commit/main")]) == 1

    local = Path(snapshot_download(REPO, cache_dir=tmp_path / "download"))
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md",
            "results/base_vs_student.png", ".eval_results/sib200.yaml"} <= {
        p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()}

    # the card parses, and its eval results are the store's
    with ResultsStore(store_path) as store:
        stored = {r.metric: r.value for r in store.rows(models=[str(scored[0])])}
    card = ModelCard.load(local / "README.md")
    assert card.data.model_name == REPO
    from kakugo_core.plugins import registry

    primary = registry("benchmarks").get("sib200").factory.primary_metrics
    carded = {r.metric_name.split(" ")[0]: r.metric_value for r in card.data.eval_results}
    # every stored metric (the primary ones among them), as percentages rounded to 2 decimals
    assert primary and set(primary) <= set(carded)
    assert carded == {m: round(100 * v, 2) for m, v in stored.items()}

    # the downloaded model loads with transformers and scores exactly what was stored
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(local)
    with ResultsStore(tmp_path / "rescored.sqlite") as again:
        run_bench([str(local)], ["sib200"], ["jav_Latn"], store=again, n_shot=0, limit=LIMIT,
                  data_dir=sib200_dir, progress=False)
        rescored = {r.metric: r.value for r in again.rows()}
    assert rescored == pytest.approx(stored, abs=1e-9)

    # releasing the same thing again makes no commit and no tag
    writes_before = len(hub.writes())
    same = _release(scored, store_path, private=True)
    assert not same.changed and same.tag is None and same.revision == result.revision
    assert _commits(hub) == 2 and len(repo.tags) == 1
    assert not [w for w in hub.writes()[writes_before:] if "/commit/" in w[1] or "/tag/" in w[1]]

    # new results change only the card and tables: one more commit, one more tag
    with ResultsStore(store_path) as store:
        store.put("someone/else", "", "sib200", "jav_Latn", 0, "p", [("acc", 0.5, 0.1, 24)])
    changed = _release(scored, store_path, private=True, tag="v2")
    assert changed.changed and changed.tag == "v2"
    assert "model.safetensors" not in changed.files and "README.md" in changed.files
    assert _commits(hub) == 3 and set(repo.tags) == {result.tag, "v2"}
    readme = repo.commits[repo.branches["main"]].files["README.md"].decode()
    assert "someone/else" in readme


def test_dataset_is_published_as_its_own_repository(
    hub: HubServer, scored: tuple[Path, Path, Path], store_path: Path, tmp_path: Path
) -> None:
    from datasets import Dataset, DatasetDict, load_dataset
    from huggingface_hub import snapshot_download

    ds_dir = tmp_path / "dataset"
    DatasetDict({"train": Dataset.from_dict({"text": ["a", "b", "c"]})}).save_to_disk(str(ds_dir))
    result = _release(scored, store_path, dataset_dir=ds_dir)
    assert result.dataset is not None and result.dataset.changed
    data_repo = f"{REPO}-data"
    local = Path(snapshot_download(data_repo, repo_type="dataset", cache_dir=tmp_path / "dl"))
    loaded = load_dataset("parquet", data_files=str(local / "data" / "*.parquet"))
    assert loaded["train"]["text"] == ["a", "b", "c"]
    model_readme = hub.repo(REPO).commits[hub.repo(REPO).branches["main"]].files["README.md"]
    assert f"- {data_repo}" in model_readme.decode()  # card metadata: datasets


def test_branch_and_pull_request_leave_main_alone(
    hub: HubServer, scored: tuple[Path, Path, Path], store_path: Path
) -> None:
    first = _release(scored, store_path)
    repo = hub.repo(REPO)
    main_head = repo.branches["main"]
    with ResultsStore(store_path) as store:
        store.put("someone/else", "", "sib200", "jav_Latn", 0, "p", [("acc", 0.5, 0.1, 24)])
    on_branch = _release(scored, store_path, revision="dev")
    assert on_branch.changed and repo.branches["dev"] == on_branch.revision
    assert repo.branches["main"] == main_head
    pr = _release(scored, store_path, create_pr=True)
    assert pr.changed and pr.pr_url and pr.pr_url.endswith("/discussions/1")
    assert repo.pull_requests == {1: pr.revision} and repo.branches["main"] == main_head
    assert first.revision == main_head


def test_an_existing_tag_on_another_commit_is_refused_before_committing(
    hub: HubServer, scored: tuple[Path, Path, Path], store_path: Path
) -> None:
    _release(scored, store_path, tag="v1")
    with ResultsStore(store_path) as store:
        store.put("someone/else", "", "sib200", "jav_Latn", 0, "p", [("acc", 0.5, 0.1, 24)])
    commits = _commits(hub)
    with pytest.raises(KakugoError, match="tag 'v1' already exists"):
        _release(scored, store_path, tag="v1")
    assert _commits(hub) == commits


def test_the_token_is_never_printed_or_written(
    hub: HubServer, scored: tuple[Path, Path, Path], store_path: Path, tmp_path: Path,
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    student, base, _ = scored
    common = ["release", "--model", str(student), "--base", str(base), "-l", "jav",
              "--db", str(store_path), "--target", "hub", "--repo-id", REPO]
    assert _cli(*common, "--dry-run") == 0
    assert _cli(*common, "--out", str(tmp_path / "kept"), "--private") == 0
    assert _cli(*common) == 0  # unchanged
    assert _cli(*common, "--repo-id", "alice/bad--name") != 0
    out, err = capfd.readouterr()
    assert "released alice/kakugo-tiny-jav" in out and "is unchanged" in out
    # the token did reach the server...
    assert any(h.get("authorization") == f"Bearer {TOKEN}" for _, _, h in hub.requests)
    # ...and nowhere else
    assert TOKEN not in out and TOKEN not in err and TOKEN not in caplog.text
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "model.safetensors" for p in written)
    for path in written:
        assert TOKEN.encode() not in path.read_bytes(), path
    for body in hub.bodies:
        assert TOKEN.encode() not in body


@pytest.mark.parametrize("case", ["no token", "bad repo name", "no weights", "not in store"])
def test_bad_input_is_one_line_and_uploads_nothing(
    case: str, hub: HubServer, scored: tuple[Path, Path, Path], store_path: Path,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    student, base, _ = scored
    model, repo_id, db = str(student), REPO, str(store_path)
    expected = {"no token": "no Hugging Face token", "bad repo name": "invalid repository name",
                "no weights": "has no weights", "not in store": "has no results for model"}[case]
    if case == "no token":
        monkeypatch.delenv("HF_TOKEN")
    elif case == "bad repo name":
        repo_id = "alice/-bad name"
    elif case == "no weights":
        empty = tmp_path / "no-weights"
        empty.mkdir()
        (empty / "config.json").write_text("{}")
        model = str(empty)
    else:
        db = str(tmp_path / "empty.sqlite")
        ResultsStore(db).put("x", "", "sib200", "jav_Latn", 0, "p", [("acc", 0.1, 0.1, 2)])
    code = _cli("release", "--model", model, "--base", str(base), "-l", "jav",
                "--db", db, "--target", "hub", "--repo-id", repo_id)
    out, err = capfd.readouterr()
    assert code != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0] and lines[0].startswith("kakugo: error:")
    assert hub.writes() == []


def test_dry_run_prints_exactly_what_would_change_and_changes_nothing(
    hub: HubServer, scored: tuple[Path, Path, Path], store_path: Path,
    capfd: pytest.CaptureFixture[str]
) -> None:
    student, base, _ = scored
    _release(scored, store_path)
    with ResultsStore(store_path) as store:
        store.put("someone/else", "", "sib200", "jav_Latn", 0, "p", [("acc", 0.5, 0.1, 24)])
    capfd.readouterr()
    writes = len(hub.writes())
    assert _cli("release", "--model", str(student), "--base", str(base), "-l", "jav",
                "--db", str(store_path), "--target", "hub", "--repo-id", REPO,
                "--dry-run") == 0
    out, _ = capfd.readouterr()
    assert f"hub: model repository {REPO}" in out
    assert "upload     README.md" in out and "upload     results/comparison.md" in out
    assert "unchanged  model.safetensors" in out and "unchanged  config.json" in out
    assert len(hub.writes()) == writes


def test_a_concurrent_push_makes_the_release_fail_instead_of_mixing_trees(
    hub: HubServer, scored: tuple[Path, Path, Path], store_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import CommitOperationAdd, HfApi

    import releases._hub as hub_module

    _release(scored, store_path)
    with ResultsStore(store_path) as store:
        store.put("someone/else", "", "sib200", "jav_Latn", 0, "p", [("acc", 0.5, 0.1, 24)])
    compare = hub_module.plan

    def compare_then_someone_pushes(*args: object, **kwargs: object) -> object:
        changes = compare(*args, **kwargs)  # type: ignore[arg-type]
        HfApi(token=TOKEN).create_commit(REPO, [CommitOperationAdd("notes.txt", b"mine")],
                                         commit_message="meanwhile")
        return changes

    monkeypatch.setattr(hub_module, "plan", compare_then_someone_pushes)
    commits = _commits(hub)
    with pytest.raises(KakugoError, match="changed meanwhile") as err:
        _release(scored, store_path)
    assert "\n" not in str(err.value)
    repo = hub.repo(REPO)
    head = repo.commits[repo.branches["main"]]
    assert _commits(hub) == commits + 1 and head.title == "meanwhile"
    assert b"someone/else" not in head.files["README.md"]
