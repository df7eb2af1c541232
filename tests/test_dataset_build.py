"""The dataset builder: the contract the training stage reads, the card the release stage
publishes, de-duplication, the seeded split and safe rebuilds — on data generated through the
real teacher client and server."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from test_generate_support import reference_run

from kakugo_core.config import load_config
from kakugo_core.dataset import COLUMNS, build_dataset, size_category, think_turn
from kakugo_core.errors import KakugoError


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, sib200_dir: Path) -> dict:
    return reference_run(tmp_path_factory.mktemp("reference"), sib200_dir)


def test_the_dataset_follows_the_contract_and_its_card_parses(
    reference: dict, tmp_path: Path
) -> None:
    from datasets import load_from_disk
    from huggingface_hub import DatasetCard

    config = load_config(None, ["dataset.validation_fraction=0.1"])
    out = tmp_path / "dataset"
    summary = build_dataset(reference["base"] / "work", out, config, "Javanese")
    data = load_from_disk(str(out))
    assert set(data) == {"train", "validation"}
    assert len(data["validation"]) == round(summary.rows * 0.1)
    for split in data.values():
        assert tuple(split.column_names) == COLUMNS
    rows = [*data["train"], *data["validation"]]
    gen = reference["summary"].rows
    expected = {
        "topic": gen["responses:topic"], "scenario": gen["responses:scenario"],
        "context": gen["responses:context"], "translate": gen["translations:translate"],
    }
    assert Counter(r["generation_method"] for r in rows) == expected
    assert summary.methods == expected
    think = config["dataset"]["think_system_prompt"]
    concise = config["dataset"]["concise_system_prompt"]
    for row in rows:
        roles = [m["role"] for m in row["messages"]]
        assert roles == ["user", "assistant"] * (len(roles) // 2) and roles
        if row["generation_method"] == "translate":
            assert row["system"] == concise and row["prompt_type"] == "translated"
            assert not row["messages"][1]["content"].startswith("<think>")
            assert row["topic"] == row["scenario"] == ""
        else:
            assert row["system"] == think
            assert row["prompt_type"] in ("original", "improved")
            answer = row["messages"][1]["content"]
            assert answer.startswith("<think>\nThe user asks about: ")
            assert "\n</think>\n\njv wangsulan " in answer
        if row["generation_method"] == "topic":
            assert row["topic"] and not row["scenario"]
        if row["generation_method"] == "scenario":
            assert row["scenario"] and not row["topic"]
    assert any(r["prompt_type"] == "improved" for r in rows)
    assert len({json.dumps(r["messages"][0]) for r in rows}) == len(rows)  # de-duplicated

    card = DatasetCard.load(out / "README.md")
    meta = card.data.to_dict()
    assert meta["language"] == ["jv", "jav"] and meta["license"] == "cc-by-sa-4.0"
    assert meta["size_categories"] == ["n<1K"] and meta["task_categories"] == ["text-generation"]
    assert meta["teacher_model"] == "scripted-teacher"
    assert meta["generation_counts"] == expected
    assert meta["rejection_counts"] == reference["summary"].rejects
    assert "| translate | 7 |" in card.text


def test_the_split_is_seeded(reference: dict, tmp_path: Path) -> None:
    from datasets import load_from_disk

    def validation(seed: int, out: str) -> list[str]:
        config = load_config(None, [f"run.seed={seed}", "dataset.validation_fraction=0.2"])
        build_dataset(reference["base"] / "work", tmp_path / out, config, "Javanese")
        rows = load_from_disk(str(tmp_path / out))["validation"]
        return [r["messages"][0]["content"] for r in rows]

    assert validation(1, "a") == validation(1, "b")
    assert validation(1, "a") != validation(2, "c")


def test_the_dataset_does_not_depend_on_the_order_replies_arrived(
    reference: dict, tmp_path: Path
) -> None:
    """Concurrent teacher replies land in the files in a different order on every run (a loaded
    machine reorders them most); the dataset must be the same rows in the same order."""
    from datasets import load_from_disk

    work = tmp_path / "work"
    shutil.copytree(reference["base"] / "work", work)
    for name in ("responses.jsonl", "translations.jsonl"):
        lines = (work / name).read_text().splitlines()
        assert len(lines) > 2
        (work / name).write_text("\n".join(lines[1::2] + lines[0::2][::-1]) + "\n")
    config = load_config(None, ["dataset.validation_fraction=0.2"])
    build_dataset(reference["base"] / "work", tmp_path / "a", config, "Javanese")
    build_dataset(work, tmp_path / "b", config, "Javanese")
    first, second = load_from_disk(str(tmp_path / "a")), load_from_disk(str(tmp_path / "b"))
    for split in ("train", "validation"):
        assert first[split].to_list() == second[split].to_list()


def test_duplicates_are_dropped_and_counted(reference: dict, tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(reference["base"] / "work", work)
    rows = (work / "responses.jsonl").read_text().splitlines()
    twin = json.loads(rows[0])
    twin["id"] = "response:twin"
    twin["user"] = "  " + twin["user"].upper() + " "  # same prompt, other case and spacing
    with open(work / "responses.jsonl", "a") as handle:
        handle.write(json.dumps(twin) + "\n")
    summary = build_dataset(work, tmp_path / "ds", load_config(), "Javanese")
    assert summary.rejects["dataset:duplicate"] == 1
    assert summary.rows == sum(reference["summary"].rows[k] for k in (
        "responses:topic", "responses:scenario", "responses:context", "translations:translate"))


def test_a_reply_without_reasoning_is_trained_concisely(reference: dict, tmp_path: Path) -> None:
    from datasets import load_from_disk

    work = tmp_path / "work"
    shutil.copytree(reference["base"] / "work", work)
    rows = [json.loads(line) for line in (work / "responses.jsonl").read_text().splitlines()]
    blank = {row["id"] for row in rows[::2]}
    for row in rows[::2]:
        row["reasoning"] = "  "
    (work / "responses.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = load_config()
    build_dataset(work, tmp_path / "ds", config, "Javanese")
    data = load_from_disk(str(tmp_path / "ds"))
    by_user = {" ".join(r["user"].split()): r for r in rows}
    seen = {"think": 0, "concise": 0}
    for row in [*data["train"], *data["validation"]]:
        source = by_user.get(" ".join(row["messages"][0]["content"].split()))
        if source is None:
            continue  # a translated conversation
        answer = row["messages"][1]["content"]
        if source["id"] in blank:
            assert row["system"] == config["dataset"]["concise_system_prompt"]
            assert answer == source["response"].strip() and "<think>" not in answer
            seen["concise"] += 1
        else:
            assert row["system"] == config["dataset"]["think_system_prompt"]
            assert answer.startswith("<think>\n") and answer.endswith(source["response"].strip())
            seen["think"] += 1
    assert seen["concise"] == len(blank) and seen["think"] == len(rows) - len(blank)


def test_rebuilding_replaces_the_dataset_and_a_failed_build_keeps_it(
    reference: dict, tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    build_dataset(reference["base"] / "work", out, load_config(), "Javanese")
    (out / "stale.txt").write_text("old")
    build_dataset(reference["base"] / "work", out, load_config(), "Javanese")
    assert not (out / "stale.txt").exists() and (out / "README.md").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(KakugoError, match="no responses or translations"):
        build_dataset(empty, out, load_config(), "Javanese")
    assert (out / "dataset_dict.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "empty"]  # no temp folders left


def test_think_turns_and_size_bins() -> None:
    assert think_turn(" why \n", " answer ") == "<think>\nwhy\n</think>\n\nanswer"
    assert size_category(999) == "n<1K" and size_category(40_000) == "10K<n<100K"


def test_the_dataset_command_builds_and_reports(
    reference: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from datasets import load_from_disk

    from kakugo_core.cli import main

    out = tmp_path / "ds"
    main(["dataset", "Javanese", "--work-dir", str(reference["work"]), "--out", str(out),
          "--set", "dataset.validation_fraction=0.25"])
    printed = capsys.readouterr().out
    data = load_from_disk(str(out))
    assert f"train {len(data['train'])}, validation {len(data['validation'])}" in printed
    assert len(data["validation"]) == round(0.25 * (len(data["train"]) + len(data["validation"])))
    assert f"translate {reference['summary'].rows['translations:translate']}" in printed
