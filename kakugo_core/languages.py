"""The language registry: names and codes to FLORES-200 ids, and benchmark coverage.

The table is data (``kakugo_core/data/languages.json``), not code. Ids are FLORES-200 codes
(``jav_Latn``); a language outside FLORES-200 (Chuvash, Southern Kurdish) gets an id of the same
shape and honest ``None`` coverage.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from kakugo_core.errors import UnknownLanguageError

#: benchmark keys of the ``benchmarks`` map, in display order
BENCHMARK_KEYS = ("sib200", "belebele", "global_mmlu", "flores")


@dataclass(frozen=True)
class Language:
    """One language (one FLORES id: a language in one script)."""

    id: str
    name: str
    iso639_3: str
    script: str
    iso639_1: str | None = None
    aliases: tuple[str, ...] = ()
    benchmarks: dict[str, str | None] = field(default_factory=dict, hash=False, compare=False)
    primary: bool = True
    kakugo_paper: bool = False

    def covered_by(self, benchmark: str) -> bool:
        return bool(self.benchmarks.get(benchmark))

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "aliases": list(self.aliases),
            "iso639_1": self.iso639_1,
            "iso639_3": self.iso639_3,
            "script": self.script,
            "benchmarks": {k: self.benchmarks.get(k) for k in BENCHMARK_KEYS},
            "kakugo_paper": self.kakugo_paper,
        }


def _key(text: str) -> str:
    return " ".join(text.strip().lower().replace("-", "_").split())


class LanguageRegistry:
    """Resolves names, ISO 639-1/639-3 codes and FLORES codes to :class:`Language`."""

    def __init__(self, languages: list[Language]) -> None:
        self.languages = sorted(languages, key=lambda lang: lang.id)
        self._by_id = {lang.id: lang for lang in self.languages}
        self._index: dict[str, Language] = {}
        # Weakest keys first, so stronger ones (ids, primary codes) overwrite them.
        for lang in self.languages:
            for alias in lang.aliases:
                self._index.setdefault(_key(alias), lang)
        for lang in self.languages:
            self._index[_key(lang.name)] = lang
        for primary_pass in (False, True):
            for lang in self.languages:
                if lang.primary is primary_pass:
                    for code in (lang.iso639_3, lang.iso639_1):
                        if code:
                            self._index[_key(code)] = lang
        for lang in self.languages:
            self._index[_key(lang.id)] = lang

    def __iter__(self) -> Iterator[Language]:
        return iter(self.languages)

    def __len__(self) -> int:
        return len(self.languages)

    def get(self, language_id: str) -> Language:
        """Exact FLORES id lookup."""
        return self._by_id[language_id]

    def resolve(self, query: str | Language) -> Language:
        """A language from its name, alias, ISO 639-1/639-3 or FLORES code; a clear error
        with close matches otherwise."""
        if isinstance(query, Language):
            return query
        found = self._index.get(_key(query))
        if found is not None:
            return found
        close = difflib.get_close_matches(_key(query), list(self._index), n=4, cutoff=0.6)
        names = sorted({f"{self._index[c].name} ({self._index[c].id})" for c in close})
        hint = f" Close matches: {', '.join(names)}." if names else ""
        raise UnknownLanguageError(
            f"unknown language {query!r}.{hint} Try `kakugo languages` for the full list."
        )

    def search(self, query: str) -> list[Language]:
        """Every language whose name, alias or code contains the query (for listings)."""
        q = _key(query)
        hits = []
        for lang in self.languages:
            keys = [lang.id, lang.name, lang.iso639_3, lang.iso639_1 or "", *lang.aliases]
            if any(q in _key(k) for k in keys if k):
                hits.append(lang)
        return hits


def _from_record(rec: dict[str, Any]) -> Language:
    return Language(
        id=rec["id"],
        name=rec["name"],
        iso639_3=rec["iso639_3"],
        script=rec["script"],
        iso639_1=rec.get("iso639_1"),
        aliases=tuple(rec.get("aliases", ())),
        benchmarks={k: rec.get("benchmarks", {}).get(k) for k in BENCHMARK_KEYS},
        primary=rec.get("primary", True),
        kakugo_paper=rec.get("kakugo_paper", False),
    )


@lru_cache(maxsize=1)
def registry() -> LanguageRegistry:
    """The registry built from the table shipped with the package."""
    text = resources.files("kakugo_core").joinpath("data/languages.json").read_text("utf-8")
    return LanguageRegistry([_from_record(r) for r in json.loads(text)["languages"]])


def resolve(query: str | Language) -> Language:
    """Shortcut for ``registry().resolve(query)``."""
    return registry().resolve(query)
