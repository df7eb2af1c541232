"""The leaderboard as a static multi-page site: ``kakugo leaderboard --format site --out DIR``.

Pages: an overview (every model's averages, deltas against the baseline with standard errors),
one page per benchmark, per language and per model (with each score's provenance), a language x
model heat map and the coverage of missing cells. Every table sorts (click a header) and filters
(type in the box above it) with a few lines of plain JavaScript inlined in each page; there is no
server, no CDN and no request leaves the page (a Content-Security-Policy with the hashes of the
inline script and style allows nothing else). All numbers come from
:func:`kakugo_core.leaderboard.build_leaderboard`, so they are the same as every other format.

The output depends only on the results (no clock), so publishing an unchanged store changes no
file. ``data/results.jsonl`` and ``data/leaderboard.json`` hold the same results for machines.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

from kakugo_core.leaderboard import (
    DECIMALS,
    SELECTION_RULE,
    Column,
    Leaderboard,
    build_leaderboard,
    render_json,
)
from kakugo_core.scoring import model_slug
from kakugo_core.store import ResultRow

esc = html.escape
#: colour buckets of the heat map (CSS classes h0..h8)
HEAT_BUCKETS = 9


def _asset(name: str) -> str:
    return resources.files("kakugo_core").joinpath(f"data/{name}").read_text("utf-8")


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


class Site:
    """Renders the pages of one leaderboard."""

    def __init__(self, board: Leaderboard, rows: Sequence[ResultRow]) -> None:
        self.board = board
        self.rows = list(rows)
        self.css = _asset("site.css")
        self.js = _asset("site.js")
        self.primary = [c for c in board.columns if c.language is None]
        self.languages = sorted({lang for langs in board.languages.values() for lang in langs})
        self.updated = max((r.created for r in self.rows), default="")

    # -- links -------------------------------------------------------------------------------
    @staticmethod
    def model_href(model: str) -> str:
        return f"models/{model_slug(model)}.html"

    @staticmethod
    def language_href(language: str) -> str:
        return f"languages/{language}.html"

    @staticmethod
    def benchmark_href(benchmark: str) -> str:
        return f"benchmarks/{model_slug(benchmark)}.html"

    def _language_name(self, language: str) -> str:
        from kakugo_core.errors import KakugoError
        from kakugo_core.languages import resolve

        try:
            return resolve(language).name
        except KakugoError:
            return language

    # -- cells ------------------------------------------------------------------------------
    def _num(self, column: Column, value: float | None, stderr: float | None,
             signed: bool = False) -> str:
        if value is None:
            return "–"
        k = self.board.scale(column)
        text = f"{value * k:+.{DECIMALS}f}" if signed else f"{value * k:.{DECIMALS}f}"
        if stderr is not None:
            text += f" ± {stderr * k:.{DECIMALS}f}"
        return text

    def value_td(self, model: str, column: Column, heat: tuple[float, float] | None = None) -> str:
        cell = self.board.cell(model, column)
        if cell is None:
            return '<td class="missing" data-value="" title="no result">–</td>'
        classes = []
        if heat is not None:
            lo, hi = heat
            frac = 0.5 if hi <= lo else (cell.value - lo) / (hi - lo)
            classes.append(f"h{min(HEAT_BUCKETS - 1, int(frac * HEAT_BUCKETS))}")
        note = ""
        total = len(self.board.languages[column.benchmark])
        if column.language is None and len(cell.languages) < total:
            note = f" ({len(cell.languages)}/{total} langs)"
        title = f"n={cell.n}; languages: {', '.join(cell.languages)}"
        cls = f' class="{" ".join(classes)}"' if classes else ""
        return (f'<td{cls} data-value="{cell.value!r}" title="{esc(title)}">'
                f"{esc(self._num(column, cell.value, cell.stderr) + note)}</td>")

    def delta_td(self, model: str, column: Column) -> str:
        delta = self.board.delta(model, column)
        if delta is None:
            return '<td class="delta" data-value="">–</td>'
        classes = ["delta"]
        if delta.value != 0 and column.higher_is_better is not None:
            classes.append("better" if (delta.value > 0) == column.higher_is_better else "worse")
            if delta.significant:
                classes.append("significant")
        title = f"over {len(delta.languages)} shared language(s)"
        return (f'<td class="{" ".join(classes)}" data-value="{delta.value!r}" '
                f'title="{esc(title)}">{esc(self._num(column, delta.value, delta.stderr, True))}'
                "</td>")

    def label(self, column: Column, delta: bool = False) -> str:
        text = ("Δ " if delta else "") + column.label
        return text + (" (%)" if self.board.scale(column) == 100.0 else "")

    def model_th(self, model: str, prefix: str) -> str:
        label = model + (" (baseline)" if model == self.board.baseline else "")
        return (f'<th scope="row" data-value="{esc(model)}"><a href="{prefix}'
                f'{esc(self.model_href(model))}">{esc(label)}</a></th>')

    @staticmethod
    def _setting_id(column: Column) -> str:
        """What tells apart the ids of one metric's tables at several settings ("" if one)."""
        return f"-{model_slug(column.setting.tag)}" if column.setting else ""

    # -- page frame ---------------------------------------------------------------------------
    def page(self, title: str, body: str, prefix: str, current: str) -> str:
        csp = (f"default-src 'none'; style-src {_csp_hash(self.css)}; "
               f"script-src {_csp_hash(self.js)}; img-src 'self' data:")
        nav = [("index.html", "Overview"), ("heatmap.html", "Heat map"),
               ("coverage.html", "Coverage"), ("benchmarks.html", "Benchmarks"),
               ("languages.html", "Languages"), ("models.html", "Models")]
        current_attr = ' class="current"'
        links = "".join(
            f'<a href="{prefix}{href}"{current_attr if href == current else ""}>{name}</a>'
            for href, name in nav)
        updated = f" Results as of {esc(self.updated)}." if self.updated else ""
        return (
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
            f"<title>{esc(title)} · {esc(self.board.title)}</title>\n"
            f"<style>{self.css}</style>\n</head>\n<body>\n"
            f'<header><a class="brand" href="{prefix}index.html">{esc(self.board.title)}</a>'
            f"{links}</header>\n<main>\n<h1>{esc(title)}</h1>\n{body}\n</main>\n"
            f"<footer>Generated by Kakugo from its results store.{updated} "
            f"{esc(SELECTION_RULE)}.</footer>\n<script>{self.js}</script>\n</body>\n</html>\n")

    @staticmethod
    def table(table_id: str, head: Iterable[tuple[str, str]], rows: Iterable[str],
              placeholder: str = "Filter rows…") -> str:
        """A sortable table with its filter box; ``head`` is (label, "text"|"number")."""
        ths = "".join(f'<th scope="col" data-type="{kind}">{esc(label)}</th>'
                      for label, kind in head)
        body = "\n".join(rows)
        return (f'<div class="tools"><input type="search" class="filter" '
                f'data-table="{table_id}" placeholder="{esc(placeholder)}" '
                f'aria-label="{esc(placeholder)}"><span class="count" id="{table_id}-count">'
                f'</span></div>\n<div class="wrap"><table id="{table_id}" class="sortable">'
                f"<thead><tr>{ths}</tr></thead>\n<tbody>\n{body}\n</tbody></table></div>")

    @staticmethod
    def tr(index: int, cells: Iterable[str], cls: str = "") -> str:
        attr = f' class="{cls}"' if cls else ""
        return f'<tr data-order="{index}"{attr}>' + "".join(cells) + "</tr>"

    def notes(self) -> str:
        text = ("± is one standard error; means are over languages; (%) marks fractions "
                "(accuracy, F1, rates) shown ×100, their Δ in points. Click a header to sort, "
                "type in the box to filter.")
        if self.board.baseline:
            text += (f" Δ is against {self.board.baseline} over the languages both models "
                     "have; bold Δ exceeds 1.96 standard errors.")
        notes = "".join(f"<li>{esc(note)}</li>" for note in self.board.notes)
        return f'<p class="notes">{esc(text)}</p>' + (
            f'<ul class="notes footnotes">{notes}</ul>' if notes else "")

    # -- pages --------------------------------------------------------------------------------
    def overview(self) -> str:
        b = self.board
        head = [("Model", "text")]
        for column in self.primary:
            head.append((self.label(column), "number"))
            if b.baseline:
                head.append((self.label(column, delta=True), "number"))
        rows = []
        for i, model in enumerate(b.models):
            cells = [self.model_th(model, "")]
            for column in self.primary:
                cells.append(self.value_td(model, column))
                if b.baseline:
                    cells.append(self.delta_td(model, column))
            rows.append(self.tr(i, cells, "baseline" if model == b.baseline else ""))
        missing = len(self.missing_cells())
        cards = (f'<div class="cards"><div class="card"><b>{len(b.models)}</b>models</div>'
                 f'<div class="card"><b>{len(b.benchmarks)}</b>benchmarks</div>'
                 f'<div class="card"><b>{len(self.languages)}</b>languages</div>'
                 f'<div class="card"><b>{missing}</b><a href="coverage.html">missing cells</a>'
                 "</div></div>")
        bench_links = ", ".join(f'<a href="{self.benchmark_href(x)}">{esc(x)}</a>'
                                for x in b.benchmarks)
        body = (f"{cards}{self.notes()}{self.table('overview', head, rows, 'Filter models…')}"
                f"<p>Per benchmark: {bench_links}.</p>")
        return self.page("Overview", body, "", "index.html")

    def benchmark_page(self, benchmark: str) -> str:
        b = self.board
        langs = b.languages[benchmark]
        parts = [self.notes()]
        for column in [c for c in self.primary if c.benchmark == benchmark]:
            columns = [column] + [column.at(lang) for lang in langs]
            head = [("Model", "text")] + [(self.label(c) if c.language is None else c.language,
                                           "number") for c in columns]
            rows = [self.tr(i, [self.model_th(m, "../")] + [self.value_td(m, c) for c in columns],
                            "baseline" if m == b.baseline else "")
                    for i, m in enumerate(b.models)]
            tid = f"t-{model_slug(column.metric)}{self._setting_id(column)}"
            parts.append(f"<h2>{esc(self.label(column))}</h2>" + self.table(tid, head, rows))
            if b.baseline:
                dhead = [("Model", "text")] + [
                    (self.label(c, True) if c.language is None else f"Δ {c.language}", "number")
                    for c in columns]
                drows = [self.tr(i, [self.model_th(m, "../")] + [self.delta_td(m, c)
                                                                 for c in columns])
                         for i, m in enumerate(b.models) if m != b.baseline]
                parts.append(f"<h2>Δ vs {esc(b.baseline)}</h2>"
                             + self.table(f"{tid}-delta", dhead, drows))
        links = ", ".join(f'<a href="../{self.language_href(x)}">{esc(x)}</a>' for x in langs)
        parts.append(f"<p>Languages: {links}.</p>")
        return self.page(f"Benchmark: {benchmark}", "\n".join(parts), "../", "benchmarks.html")

    def language_page(self, language: str) -> str:
        b = self.board
        columns = [c.at(language) for c in self.primary
                   if language in b.languages[c.benchmark]]
        head = [("Model", "text")]
        for column in columns:
            head.append((self.label(column).replace(f" {language}", ""), "number"))
            if b.baseline:
                head.append((self.label(column, True).replace(f" {language}", ""), "number"))
        rows = []
        for i, model in enumerate(b.models):
            cells = [self.model_th(model, "../")]
            for column in columns:
                cells.append(self.value_td(model, column))
                if b.baseline:
                    cells.append(self.delta_td(model, column))
            rows.append(self.tr(i, cells, "baseline" if model == b.baseline else ""))
        title = f"Language: {self._language_name(language)} ({language})"
        return self.page(title, self.notes() + self.table("language", head, rows), "../",
                         "languages.html")

    def model_page(self, model: str) -> str:
        b = self.board
        head = [("Benchmark", "text"), ("Language", "text"), ("Metric", "text"),
                ("Score", "number")]
        if b.baseline and model != b.baseline:
            head.append((f"Δ vs {b.baseline}", "number"))
        head += [("n", "number"), ("n-shot", "number"), ("Revision", "text"),
                 ("Prompt hash", "text"), ("Created", "text"), ("Source", "text")]
        rows: list[str] = []
        for column in self.primary:
            for lang in b.languages[column.benchmark]:
                col = column.at(lang)
                cell = b.cell(model, col)
                if cell is None:
                    continue
                ev = b.evaluation(model, col)
                cells = [f'<td class="text"><a href="../{self.benchmark_href(col.benchmark)}">'
                         f"{esc(col.benchmark)}</a></td>",
                         f'<td class="text"><a href="../{self.language_href(lang)}">'
                         f"{esc(lang)}</a></td>",
                         f'<td class="text">{esc(col.metric)}</td>', self.value_td(model, col)]
                if b.baseline and model != b.baseline:
                    cells.append(self.delta_td(model, col))
                versions = ev.versions if ev else {}
                source = versions.get("source") or ", ".join(
                    x for x in (f"kakugo {versions['kakugo']}" if "kakugo" in versions else "",
                                versions.get("backend", ""), versions.get("data_source", ""))
                    if x) or "unknown"
                if versions.get("source_commit"):
                    source += f" @ {versions['source_commit'][:12]}"
                cells += [f'<td data-value="{cell.n}">{cell.n}</td>',
                          f"<td>{ev.n_shot if ev else ''}</td>",
                          f'<td class="text">{esc(ev.revision if ev else "")}</td>',
                          f'<td class="text">{esc((ev.prompt_hash if ev else "")[:12])}</td>',
                          f'<td class="text">{esc(ev.created if ev else "")}</td>',
                          f'<td class="text">{esc(source)}</td>']
                rows.append(self.tr(len(rows), cells))
        note = ('<p class="notes">One row per benchmark, language and metric: the evaluation '
                "shown everywhere on this site, with where it came from.</p>")
        return self.page(f"Model: {model}", note + self.table("model", head, rows), "../",
                         "models.html")

    def heatmap(self) -> str:
        b = self.board
        parts = ['<p class="notes">One table per benchmark and metric: a row per language, a '
                 "column per model; darker is a higher value within the table. Empty cells are "
                 "missing results.</p>",
                 '<p class="legend">low ' + "".join(f'<span class="h{i}"></span>'
                                                    for i in range(HEAT_BUCKETS)) + " high</p>"]
        for column in self.primary:
            langs = b.languages[column.benchmark]
            values = [c.value for m in b.models for lang in langs
                      if (c := b.cell(m, column.at(lang)))]
            heat = (min(values), max(values)) if values else None
            head = [("Language", "text")] + [(m, "number") for m in b.models]
            rows = []
            for i, lang in enumerate(langs):
                cells = [f'<th scope="row" data-value="{esc(lang)}"><a href="'
                         f'{self.language_href(lang)}">{esc(lang)}</a></th>']
                cells += [self.value_td(m, column.at(lang), heat)
                          for m in b.models]
                rows.append(self.tr(i, cells))
            tid = (f"heat-{model_slug(column.benchmark)}-{model_slug(column.metric)}"
                   f"{self._setting_id(column)}")
            parts.append(f"<h2>{esc(self.label(column))}</h2>"
                         + self.table(tid, head, rows, "Filter languages…"))
        return self.page("Heat map: languages x models", "\n".join(parts), "", "heatmap.html")

    def missing_cells(self) -> list[tuple[str, str, str]]:
        """(model, benchmark, language) with no result, over every benchmark's languages."""
        b = self.board
        out = []
        for benchmark in b.benchmarks:
            for lang in b.languages[benchmark]:
                for model in b.models:
                    if not b.has_result(model, benchmark, lang):
                        out.append((model, benchmark, lang))
        return out

    def coverage(self) -> str:
        b = self.board
        head = [("Model", "text")] + [(f"{x} ({len(b.languages[x])} langs)", "number")
                                      for x in b.benchmarks]
        rows = []
        for i, model in enumerate(b.models):
            cells = [self.model_th(model, "")]
            for benchmark in b.benchmarks:
                have = sum(b.has_result(model, benchmark, lang)
                           for lang in b.languages[benchmark])
                total = len(b.languages[benchmark])
                cls = "present" if have == total else "missing"
                cells.append(f'<td class="{cls}" data-value="{have}">{have}/{total}</td>')
            rows.append(self.tr(i, cells))
        missing = self.missing_cells()
        mrows = [self.tr(i, [f'<td class="text">{esc(m)}</td>', f'<td class="text">{esc(x)}</td>',
                             f'<td class="text">{esc(lang)}</td>'])
                 for i, (m, x, lang) in enumerate(missing)]
        body = ('<p class="notes">Which (model, benchmark, language) cells have results. A '
                "benchmark's languages are those any model was scored on. Fill the gaps with "
                "<code>kakugo bench</code> (it computes only missing cells).</p>"
                + self.table("coverage", head, rows, "Filter models…")
                + f"<h2>Missing cells ({len(missing)})</h2>"
                + self.table("missing", [("Model", "text"), ("Benchmark", "text"),
                                         ("Language", "text")], mrows))
        return self.page("Coverage", body, "", "coverage.html")

    def index_page(self, kind: str) -> str:
        b = self.board
        if kind == "benchmarks":
            head = [("Benchmark", "text"), ("Languages", "number"), ("Metrics", "text")]
            rows = [self.tr(i, [f'<th scope="row" data-value="{esc(x)}"><a href="'
                                f'{self.benchmark_href(x)}">{esc(x)}</a></th>',
                                f"<td>{len(b.languages[x])}</td>",
                                '<td class="text">' + esc(", ".join(dict.fromkeys(
                                    c.metric for c in self.primary if c.benchmark == x)))
                                + "</td>"])
                    for i, x in enumerate(b.benchmarks)]
        elif kind == "languages":
            head = [("Language", "text"), ("Name", "text"), ("Benchmarks", "number"),
                    ("Models", "number")]
            rows = [self.tr(i, [f'<th scope="row" data-value="{esc(lang)}"><a href="'
                                f'{self.language_href(lang)}">{esc(lang)}</a></th>',
                                f'<td class="text">{esc(self._language_name(lang))}</td>',
                                f"<td>{sum(lang in v for v in b.languages.values())}</td>",
                                f"<td>{len({k[0] for k in b.evaluations if k[2] == lang})}"
                                "</td>"])
                    for i, lang in enumerate(self.languages)]
        else:
            head = [("Model", "text"), ("Benchmarks", "number"), ("Cells", "number")]
            rows = [self.tr(i, [self.model_th(m, ""),
                                f"<td>{len({k[1] for k in b.evaluations if k[0] == m})}</td>",
                                f"<td>{len({k[1:3] for k in b.evaluations if k[0] == m})}</td>"])
                    for i, m in enumerate(b.models)]
        return self.page(kind.capitalize(), self.table(kind, head, rows), "", f"{kind}.html")

    def files(self) -> dict[str, str]:
        """Relative path -> text of every file of the site."""
        b = self.board
        out = {"index.html": self.overview(), "heatmap.html": self.heatmap(),
               "coverage.html": self.coverage()}
        for kind in ("benchmarks", "languages", "models"):
            out[f"{kind}.html"] = self.index_page(kind)
        for benchmark in b.benchmarks:
            out[self.benchmark_href(benchmark)] = self.benchmark_page(benchmark)
        for language in self.languages:
            out[self.language_href(language)] = self.language_page(language)
        for model in b.models:
            out[self.model_href(model)] = self.model_page(model)
        out["data/leaderboard.json"] = render_json(b)
        out["data/results.jsonl"] = "".join(
            json.dumps(r.as_dict(), sort_keys=True, ensure_ascii=False) + "\n"
            for r in sorted(self.rows, key=lambda r: (r.model, r.benchmark, r.language,
                                                      r.metric, r.revision, r.n_shot,
                                                      r.prompt_hash)))
        return out


def build_site(rows: Sequence[ResultRow], baseline: str | None = None,
               title: str = "Kakugo leaderboard", **options: object) -> dict[str, str]:
    """The site's files for these store rows (options as for ``build_leaderboard``)."""
    board = build_leaderboard(rows, baseline=baseline, per_language=True, title=title,
                              **options)  # type: ignore[arg-type]
    return Site(board, rows).files()


def write_site(files: dict[str, str], out_dir: str | Path, *, overwrite: bool = False,
               inputs: Iterable[str | Path] = ()) -> Path:
    """Write the site into ``out_dir`` under the one output rule
    (:func:`kakugo_core.files.prepare_output`): never over one of ``inputs``, and over a folder
    holding files Kakugo did not make only with ``overwrite``. Pages are staged beside the
    folder first; a new folder is renamed into place whole, an existing one gets each page
    replaced atomically. Only pages an earlier site wrote (listed in its marker) are removed:
    a file the site writer did not make is never deleted."""
    from kakugo_core.files import OUTPUT_MARKER, mark_output, marked_files, prepare_output

    out = prepare_output(out_dir, kind="folder", inputs=inputs, overwrite=overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        for rel, text in files.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, "utf-8")
        mark_output(tmp, "leaderboard --format site", files)
        os.chmod(tmp, 0o755)
        if not out.exists():
            tmp.rename(out)
            return out
        stale = [rel for rel in marked_files(out) if rel not in files]
        for rel in [*files, OUTPUT_MARKER]:
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / rel, target)
        for rel in stale:
            target = (out / rel).resolve()
            if out in target.parents and target.is_file():
                target.unlink()
                for folder in target.parents:  # folders the old site made, now empty
                    if folder == out or any(folder.iterdir()):
                        break
                    folder.rmdir()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def site_from_board(board: Leaderboard, db: str | Path) -> dict[str, str]:
    """The site of a board built from the store at ``db`` (its rows, limited to the board's
    models, benchmarks and languages, go to ``data/results.jsonl``)."""
    from kakugo_core.store import ResultsStore

    langs = {lang for v in board.languages.values() for lang in v}
    with ResultsStore(db) as store:
        rows = [r for r in store.rows(board.models, board.benchmarks)
                if r.language in langs]
    return Site(board, rows).files()
