"""``kakugo compare export`` / ``import`` with two real tiny models: the page hides who is who,
the key maps back, votes (JSON or CSV) land in the store as human_preference."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from test_judge_benchmark import JAVANESE_PROMPTS, build_model_pair, write_prompts

from kakugo_core.cli import main
from kakugo_core.compare import (
    CSV_FILE,
    HTML_FILE,
    KEY_FILE,
    export_comparison,
    import_votes,
)
from kakugo_core.errors import KakugoError
from kakugo_core.judging import PromptItem
from kakugo_core.languages import resolve
from kakugo_core.store import ResultsStore

JAVANESE = resolve("Javanese")
ITEMS = [PromptItem(f"q{i}", f"Pitakon {i}?") for i in range(8)]
CANDIDATE = [f"wangsulan apik {i}" for i in range(8)]
OPPONENT = [f"wangsulan liyane {i} </script><b>" for i in range(8)]


def run_cli(args: list[str]) -> int:
    """Run ``kakugo ARGS`` in-process; its exit status."""
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def page_data(html: str) -> dict:
    blob = re.search(r'<script id="kakugo-data" type="application/json">(.*?)</script>', html,
                     re.DOTALL)
    assert blob is not None
    return json.loads(blob.group(1))


def export(tmp_path: Path, seed: int = 7, **kwargs) -> tuple[Path, dict]:  # type: ignore[no-untyped-def]
    out = tmp_path / "review"
    export_comparison(ITEMS, CANDIDATE, OPPONENT, models=("org/student", "org/base"),
                      language=JAVANESE, out_dir=out, seed=seed, **kwargs)
    return out, json.loads((out / KEY_FILE).read_text())


def votes_file(path: Path, export_id: str, votes: dict[str, str], voter: str = "") -> Path:
    sheet = {"kind": "kakugo-compare-votes", "format": 1, "export_id": export_id,
             "voter": voter, "votes": [{"item": i, "vote": v} for i, v in votes.items()]}
    path.write_text(json.dumps(sheet))
    return path


def test_export_hides_models_randomises_sides_and_key_maps_back(tmp_path: Path) -> None:
    out, key = export(tmp_path)
    html = (out / HTML_FILE).read_text()
    data = page_data(html)
    assert "org/student" not in html and "org/base" not in html
    assert "</script><b>" not in html and "\\u003c/script\\u003e" in html  # escaped in the JSON
    assert not re.search(r"(src|href)=\"https?://", html)  # nothing fetched from the network
    assert '<html lang="jv">' in html
    assert sorted(i["id"] for i in data["items"]) == sorted(i.id for i in ITEMS)
    assert [i["id"] for i in data["items"]] != [i.id for i in ITEMS]  # shuffled order
    shown_first = {row["id"]: row["A"] for row in data["items"]}
    sides = {key["items"][i]["A"] for i in shown_first}
    assert sides == {"candidate", "opponent"}  # both models appear as A somewhere
    for row in data["items"]:
        index = int(row["id"][1:])
        expected = CANDIDATE[index] if key["items"][row["id"]]["A"] == "candidate" \
            else OPPONENT[index]
        assert row["A"] == expected and row["prompt"] == ITEMS[index].text
    assert key["candidate"]["model"] == "org/student" and key["opponent"]["model"] == "org/base"
    with (out / CSV_FILE).open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["item_id"] for r in rows] == [i["id"] for i in data["items"]]
    assert all(r["vote"] == "" and r["export_id"] == key["export_id"] for r in rows)
    assert rows[0]["answer_A"] == data["items"][0]["A"]

    again, same_key = export(tmp_path / "again")
    assert same_key["items"] == key["items"]  # the seed decides
    _, other_key = export(tmp_path / "other", seed=8)
    assert other_key["items"] != key["items"]


def test_json_and_csv_votes_import_into_the_store(tmp_path: Path) -> None:
    out, key = export(tmp_path)
    candidate_side = {i: ("A" if m["A"] == "candidate" else "B") for i, m in key["items"].items()}
    other = {"A": "B", "B": "A"}
    # voter 1: candidate better on q0-q4, tie on q5, opponent better on q6 (q7 not voted)
    votes = {f"q{i}": candidate_side[f"q{i}"] for i in range(5)}
    votes["q5"] = "tie"
    votes["q6"] = other[candidate_side["q6"]]
    first = votes_file(tmp_path / "votes-1.json", key["export_id"], votes, voter="Sari")
    # voter 2 fills the CSV: opponent better on q0, tie on q1, the rest blank
    with (out / CSV_FILE).open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row["vote"] = {"q0": other[candidate_side["q0"]], "q1": "TIE"}.get(row["item_id"], "")
        row["voter"] = "Budi"
    second = tmp_path / "votes-2.csv"
    with second.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    db = tmp_path / "results.sqlite"
    assert run_cli(["compare", "import", str(first), str(second), "--key",
                    str(out / KEY_FILE), "--db", str(db)]) == 0
    with ResultsStore(db) as store:
        rows_by_metric = {r.metric: r for r in store.rows(benchmarks=["human_preference"])}
    assert set(rows_by_metric) == {"win_rate", "tie_rate", "loss_rate"}
    win, tie, loss = (rows_by_metric[m] for m in ("win_rate", "tie_rate", "loss_rate"))
    assert win.n == tie.n == loss.n == 9
    assert (win.value, tie.value, loss.value) == pytest.approx((5 / 9, 2 / 9, 2 / 9))
    assert all(r.stderr and r.stderr > 0 for r in (win, tie, loss))
    assert win.model == "org/student" and win.language == "jav_Latn" and win.n_shot == 0
    assert win.versions["opponent"] == "org/base" and win.versions["voters"] == "2"

    preference = import_votes([first], out / KEY_FILE)
    assert (preference.wins, preference.ties, preference.losses) == (5, 1, 1)

    # leaderboards show the rates, in win/tie/loss order, with their stderr
    from kakugo_core.leaderboard import render_store

    header, row = render_store(db, fmt="csv").splitlines()[:2]
    columns = dict(zip(header.split(","), row.split(","), strict=True))
    shown = [c for c in header.split(",") if c.startswith("human_preference/") and ":" not in c]
    assert shown == [f"human_preference/{m}" for m in ("win_rate", "tie_rate", "loss_rate")]
    assert float(columns["human_preference/win_rate"]) == pytest.approx(5 / 9)
    assert columns["human_preference/win_rate:n"] == "9"


def test_human_preference_cannot_be_run_against_a_model() -> None:
    from kakugo_core.plugins import create

    benchmark = create("benchmarks", "human_preference")
    with pytest.raises(KakugoError, match="kakugo compare export"):
        benchmark.evaluate(None, JAVANESE, {})  # type: ignore[arg-type]


def test_a_voters_later_vote_replaces_the_earlier(tmp_path: Path) -> None:
    out, key = export(tmp_path)
    sheet = votes_file(tmp_path / "v.json", key["export_id"], {"q0": "A"})
    data = json.loads(sheet.read_text())
    data["votes"].append({"item": "q0", "vote": "tie"})
    sheet.write_text(json.dumps(data))
    preference = import_votes([sheet], out / KEY_FILE)
    assert (preference.wins, preference.ties, preference.losses) == (0, 1, 0)


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not valid JSON"),
    ('{"votes": []}', "not a Kakugo votes file"),
    ('{"kind": "kakugo-compare-votes", "export_id": "EXPORT", "votes": [{"item": "q0"}]}',
     "needs 'item' and 'vote'"),
    ('{"kind": "kakugo-compare-votes", "export_id": "EXPORT", '
     '"votes": [{"item": "q0", "vote": "C"}]}', "not one of A, B, tie"),
    ('{"kind": "kakugo-compare-votes", "export_id": "EXPORT", '
     '"votes": [{"item": "q99", "vote": "A"}]}', "not in"),
    ('{"kind": "kakugo-compare-votes", "export_id": "EXPORT", "votes": []}', "no votes"),
    ('{"kind": "kakugo-compare-votes", "export_id": "0000", '
     '"votes": [{"item": "q0", "vote": "A"}]}', "is the key of export"),
])
def test_malformed_votes_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    out, key = export(tmp_path)
    votes = tmp_path / "votes.json"
    votes.write_text(content.replace("EXPORT", key["export_id"]))
    with pytest.raises(KakugoError, match=message):
        import_votes([votes], out / KEY_FILE)
    assert run_cli(["compare", "import", str(votes), "--key", str(out / KEY_FILE),
                    "--db", str(tmp_path / "db.sqlite")]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("kakugo: error:") and "\n" not in err and message in err
    assert not (tmp_path / "db.sqlite").exists() or not ResultsStore(
        tmp_path / "db.sqlite").rows()


def test_key_that_does_not_match_or_is_broken(tmp_path: Path) -> None:
    out, key = export(tmp_path)
    other_out, _ = export(tmp_path / "other", seed=3)
    votes = votes_file(tmp_path / "v.json", key["export_id"], {"q0": "A"})
    with pytest.raises(KakugoError, match="key of export"):
        import_votes([votes], other_out / KEY_FILE)
    broken = tmp_path / "broken-key.json"
    broken.write_text('{"kind": "something else"}')
    with pytest.raises(KakugoError, match="not a Kakugo compare key"):
        import_votes([votes], broken)
    with pytest.raises(KakugoError, match="no such key file"):
        import_votes([votes], tmp_path / "absent.json")
    csv_votes = tmp_path / "v.csv"
    csv_votes.write_text("item,choice\nq0,A\n")
    with pytest.raises(KakugoError, match="lacks column"):
        import_votes([csv_votes], out / KEY_FILE)


def test_export_never_overwrites_another_exports_key(tmp_path: Path) -> None:
    out, key = export(tmp_path)
    with pytest.raises(KakugoError, match="another export"):
        export(tmp_path, seed=99)
    assert json.loads((out / KEY_FILE).read_text()) == key
    export(tmp_path)  # the same export again is fine
    _, replaced = export(tmp_path, seed=99, force=True)
    assert replaced["export_id"] != key["export_id"]


@pytest.mark.slow
def test_cli_export_with_two_tiny_models(
    tmp_path: Path, tiny_model: Path, sib200_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_a, model_b = build_model_pair(tiny_model, sib200_dir, tmp_path)
    prompts = write_prompts(tmp_path / "heldout.jsonl")
    out = tmp_path / "review"
    assert run_cli(["compare", "export", "-m", str(model_a), "-m", str(model_b), "-p",
                    str(prompts), "-l", "jav", "-o", str(out), "--max-new-tokens", "8",
                    "--no-progress"]) == 0
    assert "keep private" in capsys.readouterr().out
    key = json.loads((out / KEY_FILE).read_text())
    data = page_data((out / HTML_FILE).read_text())
    assert len(data["items"]) == len(JAVANESE_PROMPTS)
    assert key["candidate"]["revision"].startswith("sha256:")
    assert str(model_a) not in (out / HTML_FILE).read_text()
    # answers really come from the models: the A side of each item is that model's answer
    from test_judge_benchmark import answers_of

    by_model = {"candidate": answers_of(model_a, JAVANESE_PROMPTS, 8),
                "opponent": answers_of(model_b, JAVANESE_PROMPTS, 8)}
    for row in data["items"]:
        index = int(row["id"][1:])
        assert row["A"] == by_model[key["items"][row["id"]]["A"]][index]
        assert row["B"] == by_model[key["items"][row["id"]]["B"]][index]


def test_cli_export_checks_before_loading_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = write_prompts(tmp_path / "p.jsonl")
    args = ["compare", "export", "-p", str(prompts), "-l", "jav", "-o", str(tmp_path / "o")]
    # unloadable model names: an error about them would mean the check came too late
    assert run_cli([*args, "-m", "no/such-model", "-m", "no/such-model"]) != 0
    assert "two different models" in capsys.readouterr().err
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / KEY_FILE).write_text("{}")
    assert run_cli([*args, "-m", "no/such-a", "-m", "no/such-b"]) != 0
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "o" / KEY_FILE).read_text() == "{}"


def test_cli_export_needs_exactly_two_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = write_prompts(tmp_path / "p.jsonl")
    assert run_cli(["compare", "export", "-m", "a", "-p", str(prompts), "-l", "jav", "-o",
                    str(tmp_path / "o")]) != 0
    assert "exactly two --model" in capsys.readouterr().err
