"""Side-by-side answers for native speakers, and their votes back into the results store.

``export_comparison`` writes three files into a folder:

* ``compare.html`` - one self-contained page (no network): per prompt the two answers, shown as
  "A" and "B", and buttons *A better* / *Tie* / *B better*; votes stay in the browser
  (localStorage) and *Download votes* saves them as ``votes-<export id>.json``;
* ``compare.csv`` - the same items for a spreadsheet, with an empty ``vote`` column to fill in
  with ``A``, ``B`` or ``tie``;
* ``key.json`` - PRIVATE: which model is behind A and B for every item. Do not send it.

Which model is shown as A is drawn per item, and the item order shuffled, from ``seed``; the
page and the CSV never name a model. ``import_votes`` reads votes files (the page's JSON or the
filled CSV), checks them against the key (same export id, known items, valid votes) and counts
every vote from the first model's side: a vote for it is a *win*, ``tie`` a tie, a vote for the
opponent a *loss*. ``store_preference`` writes ``win_rate``, ``tie_rate`` and ``loss_rate`` (n =
votes, stderr from the Wilson interval, see :mod:`kakugo_core.judging`) as benchmark
``human_preference``, with the opponent in the prompt hash and the versions.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from kakugo_core.csv_safe import restore_cell, safe_row
from kakugo_core.errors import KakugoError
from kakugo_core.files import mark_output, write_text_atomic
from kakugo_core.interfaces import Score
from kakugo_core.judging import PromptItem, preference_scores, wilson_interval
from kakugo_core.languages import Language

__all__ = [
    "BENCHMARK",
    "ExportPaths",
    "HumanPreference",
    "export_comparison",
    "import_votes",
    "read_key",
    "store_preference",
]

BENCHMARK = "human_preference"
FORMAT = 1
KEY_KIND = "kakugo-compare-key"
VOTES_KIND = "kakugo-compare-votes"
SIDES = ("A", "B")
VOTE_VALUES = {"a": "A", "b": "B", "tie": "tie"}
HTML_FILE, CSV_FILE, KEY_FILE = "compare.html", "compare.csv", "key.json"
CSV_COLUMNS = ("export_id", "item_id", "prompt", "answer_A", "answer_B", "vote", "voter")


class VotesError(KakugoError):
    """A votes file or key file that cannot be used."""


# -- writing files ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ExportPaths:
    """What ``export_comparison`` wrote."""

    html: Path
    csv: Path
    key: Path
    export_id: str
    items: int


def _export_id(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _page(data: dict[str, Any], language: Language) -> str:
    template = resources.files("kakugo_core").joinpath("data/compare.html").read_text("utf-8")
    # JSON inside <script>: no "<" may survive, or "</script>" in an answer would end the block
    blob = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
    blob = blob.replace("&", "\\u0026").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    html_lang = language.iso639_1 or language.iso639_3
    title = f"Which answer is better? ({language.name})"
    from html import escape

    return (template.replace("__KAKUGO_LANG__", escape(html_lang))
            .replace("__KAKUGO_TITLE__", escape(title))
            .replace("__KAKUGO_DATA__", blob))


def _csv_text(export_id: str, rows: Sequence[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in rows:  # prompts and answers are untrusted text: no cell may run as a formula
        writer.writerow(safe_row([export_id, row["id"], row["prompt"], row["A"], row["B"], "",
                                  ""]))
    return buffer.getvalue()


def export_comparison(
    items: Sequence[PromptItem],
    answers_first: Sequence[str],
    answers_second: Sequence[str],
    *,
    models: tuple[str, str],
    language: Language,
    out_dir: str | Path,
    seed: int = 42,
    revisions: tuple[str, str] = ("", ""),
    force: bool = False,
) -> ExportPaths:
    """Write the page, the CSV and the private key for ``models[0]`` (the candidate, whose
    side the imported rates take) against ``models[1]`` (the opponent)."""
    if not len(items) == len(answers_first) == len(answers_second) or not items:
        raise KakugoError("nothing to export: need one answer from each model per prompt")
    if models[0] == models[1]:
        raise KakugoError(f"both models are {models[0]!r}; compare two different models")
    rng = random.Random(f"kakugo-compare:{seed}")
    order = list(range(len(items)))
    rng.shuffle(order)
    rows, sides = [], {}
    for index in order:
        item = items[index]
        first_is_a = rng.random() < 0.5
        a, b = ((answers_first[index], answers_second[index]) if first_is_a
                else (answers_second[index], answers_first[index]))
        rows.append({"id": item.id, "prompt": item.text, "A": a, "B": b})
        sides[item.id] = {"A": "candidate" if first_is_a else "opponent",
                          "B": "opponent" if first_is_a else "candidate"}
    export_id = _export_id({"rows": rows, "sides": sides, "language": language.id,
                            "models": list(models), "revisions": list(revisions)})
    out = Path(out_dir)
    key_path = out / KEY_FILE
    if key_path.exists() and not force:
        try:
            old = json.loads(key_path.read_text("utf-8")).get("export_id")
        except (ValueError, AttributeError, OSError):
            old = None
        if old != export_id:
            raise KakugoError(
                f"{key_path} already holds the key of another export ({old}); votes on that page "
                "need it: choose another -o/--out folder, or pass --overwrite to replace it"
            )
    key = {
        "kind": KEY_KIND, "format": FORMAT, "export_id": export_id, "seed": seed,
        "language": language.id, "language_name": language.name,
        "candidate": {"model": models[0], "revision": revisions[0]},
        "opponent": {"model": models[1], "revision": revisions[1]},
        "items": sides,
    }
    data = {"kind": VOTES_KIND, "format": FORMAT, "export_id": export_id,
            "language": language.id, "language_name": language.name, "items": rows}
    # the key first: a page without its key would collect votes nobody can decode
    write_text_atomic(key_path, json.dumps(key, indent=2, ensure_ascii=False) + "\n")
    write_text_atomic(out / CSV_FILE, _csv_text(export_id, rows))
    write_text_atomic(out / HTML_FILE, _page(data, language))
    mark_output(out, "compare export", [KEY_FILE, CSV_FILE, HTML_FILE])
    return ExportPaths(out / HTML_FILE, out / CSV_FILE, key_path, export_id, len(rows))


# -- reading votes ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Key:
    """The private key of one export."""

    path: Path
    export_id: str
    language: str
    candidate: str
    candidate_revision: str
    opponent: str
    opponent_revision: str
    sides: dict[str, dict[str, str]]


def read_key(path: str | Path) -> Key:
    """Parse a ``key.json``; anything else is a one-line :class:`VotesError`."""
    path = Path(path)
    hint = "pass the key.json that `kakugo compare export` wrote beside the page"
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise VotesError(f"{path}: no such key file; {hint}") from None
    except (OSError, ValueError) as exc:
        raise VotesError(f"{path}: not a readable key file ({exc}); {hint}") from None
    try:
        if data.get("kind") != KEY_KIND:
            raise ValueError(f"kind is {data.get('kind')!r}")
        sides = data["items"]
        for item, mapping in sides.items():
            if sorted(mapping) != list(SIDES) or sorted(mapping.values()) != ["candidate",
                                                                              "opponent"]:
                raise ValueError(f"item {item!r} has a broken side mapping")
        return Key(path, str(data["export_id"]), str(data["language"]),
                   str(data["candidate"]["model"]), str(data["candidate"].get("revision", "")),
                   str(data["opponent"]["model"]), str(data["opponent"].get("revision", "")),
                   sides)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise VotesError(f"{path}: not a Kakugo compare key ({exc}); {hint}") from None


@dataclass(frozen=True)
class Vote:
    item: str
    vote: str  # "A", "B" or "tie"
    voter: str
    export_id: str
    where: str  # file and position, for messages


def _normalise_vote(raw: Any, where: str) -> str:
    value = VOTE_VALUES.get(str(raw).strip().lower())
    if value is None:
        raise VotesError(f"{where}: vote {raw!r} is not one of A, B, tie")
    return value


def _votes_from_json(path: Path, text: str) -> list[Vote]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise VotesError(f"{path}: not valid JSON ({exc}); expected the file saved by the "
                         "page's 'Download votes' button") from None
    sheets = data if isinstance(data, list) else [data]
    votes = []
    for number, sheet in enumerate(sheets, 1):
        where = f"{path}" + (f" (sheet {number})" if len(sheets) > 1 else "")
        if not isinstance(sheet, dict) or sheet.get("kind") != VOTES_KIND or not isinstance(
                sheet.get("votes"), list):
            raise VotesError(f"{where}: not a Kakugo votes file (expected kind {VOTES_KIND!r} "
                             "and a 'votes' list, as saved by the page's 'Download votes')")
        voter = str(sheet.get("voter") or f"{path.name}#{number}")
        for k, entry in enumerate(sheet["votes"], 1):
            if not isinstance(entry, dict) or "item" not in entry or "vote" not in entry:
                raise VotesError(f"{where}: vote {k} needs 'item' and 'vote'")
            at = f"{where}: vote {k}"
            votes.append(Vote(str(entry["item"]), _normalise_vote(entry["vote"], at), voter,
                              str(sheet.get("export_id", "")), at))
    return votes


def _votes_from_csv(path: Path, text: str) -> list[Vote]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("export_id", "item_id", "vote") if c not in (reader.fieldnames or [])]
    if missing:
        raise VotesError(f"{path}: CSV lacks column(s) {', '.join(missing)}; fill the 'vote' "
                         "column of the compare.csv that `kakugo compare export` wrote")
    votes = []
    try:
        for line, row in enumerate(reader, 2):
            raw = (row.get("vote") or "").strip()
            if not raw:
                continue  # not voted on
            at = f"{path}: line {line}"
            voter = restore_cell((row.get("voter") or "").strip()) or path.name
            votes.append(Vote(restore_cell(str(row["item_id"])), _normalise_vote(raw, at), voter,
                              str(row["export_id"]), at))
    except csv.Error as exc:
        raise VotesError(f"{path}: malformed CSV ({exc})") from None
    return votes


def read_votes(path: str | Path) -> list[Vote]:
    """Votes from the page's JSON (one sheet or a list of sheets) or a filled-in CSV."""
    path = Path(path)
    try:
        text = path.read_text("utf-8-sig")
    except FileNotFoundError:
        raise VotesError(f"{path}: no such votes file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VotesError(f"{path}: cannot read votes ({exc})") from None
    if path.suffix.lower() == ".csv" or (not text.lstrip().startswith(("{", "["))
                                         and "export_id" in text.split("\n", 1)[0]):
        return _votes_from_csv(path, text)
    return _votes_from_json(path, text)


@dataclass
class HumanPreference:
    """Native speakers' votes, counted from the candidate's side."""

    key: Key
    wins: int = 0
    ties: int = 0
    losses: int = 0
    voters: list[str] = field(default_factory=list)
    items: int = 0

    @property
    def votes(self) -> int:
        return self.wins + self.ties + self.losses

    def scores(self) -> list[Score]:
        outcomes = ["win"] * self.wins + ["tie"] * self.ties + ["loss"] * self.losses
        return [s for s in preference_scores(outcomes) if s.metric != "unparsed"]

    def interval(self, outcome: str) -> tuple[float, float]:
        k = {"win": self.wins, "tie": self.ties, "loss": self.losses}[outcome]
        return wilson_interval(k, self.votes)

    @property
    def prompt_hash(self) -> str:
        payload = json.dumps([BENCHMARK, self.key.export_id, self.key.opponent,
                              self.key.opponent_revision])
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def versions(self) -> dict[str, str]:
        return {"opponent": self.key.opponent, "opponent_revision": self.key.opponent_revision,
                "export_id": self.key.export_id, "voters": str(len(self.voters)),
                "items_voted": str(self.items)}


def import_votes(votes_files: Sequence[str | Path], key_file: str | Path) -> HumanPreference:
    """Check votes files against the key and count them; a voter's later vote on an item
    replaces their earlier one."""
    if not votes_files:
        raise VotesError("no votes file given")
    key = read_key(key_file)
    latest: dict[tuple[str, str], Vote] = {}
    for path in votes_files:
        for vote in read_votes(path):
            if vote.export_id != key.export_id:
                raise VotesError(
                    f"{vote.where}: votes are for export {vote.export_id or '(none)'} but "
                    f"{key.path} is the key of export {key.export_id}; pass the key.json "
                    "written with that page"
                )
            if vote.item not in key.sides:
                raise VotesError(f"{vote.where}: item {vote.item!r} is not in {key.path}; "
                                 "the votes and the key come from different exports")
            latest[(vote.voter, vote.item)] = vote
    if not latest:
        raise VotesError(f"no votes in {', '.join(map(str, votes_files))}; vote on the page "
                         "(or fill the CSV's 'vote' column) first")
    result = HumanPreference(key)
    for vote in latest.values():
        if vote.vote == "tie":
            result.ties += 1
        elif key.sides[vote.item][vote.vote] == "candidate":
            result.wins += 1
        else:
            result.losses += 1
    result.voters = sorted({v.voter for v in latest.values()})
    result.items = len({v.item for v in latest.values()})
    return result


def store_preference(store: Any, preference: HumanPreference) -> None:
    """Write the human-preference rates into a :class:`~kakugo_core.store.ResultsStore`."""
    key = preference.key
    store.put(key.candidate, key.candidate_revision, BENCHMARK, key.language, 0,
              preference.prompt_hash,
              [(s.metric, s.value, s.stderr, s.n) for s in preference.scores()],
              preference.versions())
