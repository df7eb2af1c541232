"""Merging results stores written on several machines into one.

Rows are keyed by (model, revision, benchmark, language, n-shot, prompt hash, metric, engine
version). The same key with the same value, standard error and sample count in several stores
is one result (the first store holding it provides the row: OUT, then the sources in the order
given). The same key with different numbers is a conflict: every conflict is reported and the
merge refused, leaving OUT unchanged, unless an explicit policy picks a side. A relative
``tolerance`` (0: exact) lets numbers that differ only in their last digits (the same evaluation
on a CPU and a GPU) count as the same result; the sample count must still be equal. A policy
decides per cell (all metrics of one evaluation), so a cell's metrics never mix two evaluations.

The merge is atomic: into an existing OUT it is one write transaction (concurrent `kakugo bench`
writers keep working); a new OUT is built in a temporary file beside it and linked into place.
Sources are only read (older schemas included); OUT is migrated to the current schema. Every
row enters through the store's one door (:func:`kakugo_core.store.validate_row`): one bad row in
a source refuses the whole merge, naming the source, the row and the field.
"""

from __future__ import annotations

import math
import os
import sqlite3
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kakugo_core.errors import KakugoError
from kakugo_core.store import BadRowError, ResultRow, ResultsStore

#: what to do with conflicting cells: refuse the merge, or keep the evaluation created last,
#: the one of the first input (OUT, then sources in order) or of the last input
POLICIES = ("refuse", "newest", "first", "last")

Cell = tuple[str, str, str, str, int, str, int]  # model, revision, benchmark, language, n_shot,
#                                                  prompt_hash, engine
Numbers = tuple[float, float | None, int]


def _cell(row: ResultRow) -> Cell:
    return (row.model, row.revision, row.benchmark, row.language, row.n_shot, row.prompt_hash,
            row.engine)


def _numbers(row: ResultRow) -> Numbers:
    return (row.value, row.stderr, row.n)


def _same(a: Numbers, b: Numbers, tolerance: float) -> bool:
    """Whether two rows' numbers are one result: equal n, and value and standard error equal
    within the relative ``tolerance``."""
    if a == b:
        return True
    if tolerance <= 0 or a[2] != b[2] or (a[1] is None) != (b[1] is None):
        return False
    close = [math.isclose(x, y, rel_tol=tolerance)
             for x, y in ((a[0], b[0]), (a[1], b[1])) if x is not None and y is not None]
    return all(close)


@dataclass
class Conflict:
    """One cell whose metrics differ between inputs."""

    cell: Cell
    metrics: list[str]
    holders: list[tuple[str, dict[str, ResultRow]]]  # (input label, its rows by metric)

    def describe(self) -> str:
        model, revision, benchmark, language, n_shot, prompt_hash, engine = self.cell
        parts = []
        for metric in self.metrics:
            seen = [f"{_fmt(rows[metric])} in {label}" for label, rows in self.holders
                    if metric in rows]
            parts.append(f"{metric} " + " vs ".join(seen))
        return (f"{model} (revision {revision or '-'}) {benchmark} {language} {n_shot}-shot "
                f"prompt {prompt_hash} engine {engine}: " + "; ".join(parts))


def _fmt(row: ResultRow) -> str:
    stderr = "?" if row.stderr is None else f"{row.stderr:.4g}"
    return f"{row.value:.6g} (se {stderr}, n {row.n}, {row.created})"


@dataclass
class MergeReport:
    """What a merge did (or, refused, would have done)."""

    out: Path
    sources: list[Path]
    added: int = 0  # rows new to OUT
    replaced: int = 0  # OUT rows a policy replaced or removed
    duplicates: int = 0  # source rows equal to a row already there
    conflicts: list[Conflict] = field(default_factory=list)
    policy: str = "refuse"
    created: bool = False  # OUT did not exist before
    tolerance: float = 0.0  # relative difference under which numbers are the same result
    within_tolerance: int = 0  # of the duplicates, those equal only within the tolerance

    def summary(self) -> str:
        text = (f"merged {len(self.sources)} store(s) into {self.out}: {self.added} row(s) "
                f"added, {self.duplicates} duplicate(s) skipped")
        if self.within_tolerance:
            text += (f" ({self.within_tolerance} equal within --tolerance {self.tolerance:g}; "
                     f"the first input's numbers kept)")
        if self.conflicts:
            text += (f", {len(self.conflicts)} conflicting cell(s) resolved by "
                     f"--on-conflict {self.policy} ({self.replaced} row(s) of OUT replaced)")
        return text


class MergeConflictError(KakugoError):
    """The inputs disagree and no policy was chosen; OUT was left unchanged."""

    def __init__(self, report: MergeReport) -> None:
        self.report = report
        super().__init__(
            f"{len(report.conflicts)} conflicting cell(s) (listed above); {report.out} left "
            f"unchanged; choose a side with --on-conflict newest, first or last")


def _by_cell(rows: Sequence[ResultRow]) -> dict[Cell, dict[str, ResultRow]]:
    out: dict[Cell, dict[str, ResultRow]] = {}
    for row in rows:
        out.setdefault(_cell(row), {})[row.metric] = row
    return out


def _winner(holders: list[tuple[int, str, dict[str, ResultRow]]], policy: str) -> int:
    if policy == "first":
        return 0
    if policy == "last":
        return len(holders) - 1
    # newest: the evaluation created last (timestamps are ISO 8601 UTC); ties: the later input
    return max(range(len(holders)),
               key=lambda i: (max(r.created for r in holders[i][2].values()), i))


def _plan(
    out_rows: Sequence[ResultRow], inputs: list[tuple[str, list[ResultRow]]], policy: str,
    report: MergeReport,
) -> tuple[list[Cell], list[ResultRow]]:
    """Which OUT cells to clear and which rows to insert; conflicts go into ``report``."""
    labelled = [("OUT", _by_cell(out_rows))] + [(label, _by_cell(rows)) for label, rows in inputs]
    order: dict[Cell, None] = {}
    for _label, cells in labelled:
        order.update(dict.fromkeys(cells))
    out_cells = labelled[0][1]
    clear: list[Cell] = []
    insert: list[ResultRow] = []
    report.added = report.replaced = report.duplicates = report.within_tolerance = 0
    report.conflicts = []
    for cell in order:
        holders = [(i, label, cells[cell]) for i, (label, cells) in enumerate(labelled)
                   if cell in cells]
        numbers: dict[str, list[Numbers]] = {}
        for _i, _label, rows in holders:
            for metric, row in rows.items():
                numbers.setdefault(metric, []).append(_numbers(row))
        differing = sorted(m for m, seen in numbers.items()
                           if not all(_same(seen[0], other, report.tolerance)
                                      for other in seen[1:]))
        in_out = out_cells.get(cell, {})
        if not differing:
            merged: dict[str, ResultRow] = {}
            for index, _label, rows in holders:
                for metric, row in rows.items():
                    if metric in merged:
                        if index > 0:
                            report.duplicates += 1
                            if _numbers(row) != _numbers(merged[metric]):
                                report.within_tolerance += 1
                    else:
                        merged[metric] = row
            new = [row for metric, row in merged.items() if metric not in in_out]
            insert.extend(new)
            report.added += len(new)
            continue
        report.conflicts.append(Conflict(cell, differing, [(lab, r) for _i, lab, r in holders]))
        if policy == "refuse":
            continue
        index, _label, rows = holders[_winner(holders, policy)]
        if index == 0:
            continue  # OUT's own evaluation stays
        clear.append(cell)
        report.replaced += len(in_out)
        insert.extend(rows.values())
        report.added += len(rows)
    return clear, insert


def _read(path: Path, timeout: float | None, out: Path | None = None) -> list[ResultRow]:
    """The rows of OUT (bad ones skipped with a warning), or of a source (``out`` given): a bad
    row there refuses the whole merge."""
    with ResultsStore(path, readonly=True, timeout=timeout) as store:
        if out is None:
            return store.rows()
        try:
            return store.rows(strict=True)
        except BadRowError as exc:
            state = "left unchanged" if out.exists() else "not created"
            raise exc.at(path, f"nothing merged, {out} {state}") from None


def merge_stores(
    out: str | Path, sources: Sequence[str | Path], on_conflict: str = "refuse",
    timeout: float | None = None, tolerance: float = 0.0,
) -> MergeReport:
    """Merge the results databases ``sources`` into ``out`` (created when missing); raise
    :class:`MergeConflictError` (``out`` unchanged) when they disagree and ``on_conflict`` is
    ``"refuse"``. Numbers within the relative ``tolerance`` of each other (same n) agree."""
    if on_conflict not in POLICIES:
        raise KakugoError(f"unknown conflict policy {on_conflict!r}; choose one of "
                          f"{', '.join(POLICIES)}")
    if not 0.0 <= tolerance < 1.0 or math.isnan(tolerance):
        raise KakugoError(f"--tolerance must be at least 0 and below 1 (a relative "
                          f"difference such as 1e-6), not {tolerance:g}")
    if not sources:
        raise KakugoError("nothing to merge: give at least one source database")
    out_path = Path(out)
    source_paths = [Path(s) for s in sources]
    for src in source_paths:
        if not src.is_file():
            raise KakugoError(f"{src}: no results database there")
        if out_path.exists() and os.path.samefile(src, out_path):
            raise KakugoError(f"{src} is OUT itself; give OUT once, as the first argument")
    inputs = [(str(src), _read(src, timeout, out_path)) for src in source_paths]
    report = MergeReport(out_path, source_paths, policy=on_conflict, tolerance=tolerance)
    existed = out_path.exists()
    # decide on a read-only view first, so a refused merge does not even migrate OUT
    _plan(_read(out_path, timeout) if existed else [], inputs, on_conflict, report)
    if report.conflicts and on_conflict == "refuse":
        raise MergeConflictError(report)
    if existed:
        with ResultsStore(out_path, timeout=timeout) as store:
            _write(store, inputs, on_conflict, report)
        return report
    report.created = True
    _create(out_path, inputs, on_conflict, report, timeout)
    return report


def _write(
    store: ResultsStore, inputs: list[tuple[str, list[ResultRow]]], policy: str,
    report: MergeReport,
) -> None:
    """One transaction: plan again against OUT as it is now, then clear and insert."""

    def work(conn: sqlite3.Connection) -> None:
        clear, insert = _plan(store.rows(), inputs, policy, report)
        if report.conflicts and policy == "refuse":
            raise MergeConflictError(report)  # OUT changed meanwhile; rolled back
        for cell in clear:
            conn.execute(
                "DELETE FROM results WHERE model=? AND revision=? AND benchmark=? AND "
                "language=? AND n_shot=? AND prompt_hash=? AND engine=?", cell)
        store.insert_rows(insert, conn, source="merge")

    store.transaction(work, "merge")


def _create(
    out: Path, inputs: list[tuple[str, list[ResultRow]]], policy: str, report: MergeReport,
    timeout: float | None,
) -> None:
    """Build a new OUT in a temporary file beside it, then link it into place (never over a
    file that appeared meanwhile)."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    except OSError as exc:
        raise KakugoError(f"cannot write {out}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(name)
    try:
        with ResultsStore(tmp, timeout=timeout) as store:
            _write(store, inputs, policy, report)
        try:
            os.link(tmp, out)
        except FileExistsError:
            raise KakugoError(f"{out} appeared while merging; run the merge again") from None
        except OSError:  # a file system without hard links
            if out.exists():
                raise KakugoError(f"{out} appeared while merging; run the merge again"
                                  ) from None
            os.replace(tmp, out)
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)
