"""Tables that fit the terminal: ids are never cut, long free text wraps, secondary columns are
left out when the terminal is narrow, wide tables fold into several tables that repeat their key
columns, and what still does not fit is printed as records (one ``header: value`` line each).

Widths are those of rich's default box (``│ a │ b │``: three characters per column plus one).
Cell values are rich markup (escape literal brackets with ``rich.markup.escape``); headers,
titles and captions are plain text.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import JustifyMethod


@dataclass(frozen=True)
class Col:
    """A column: ``key`` columns (ids, names) are never cut or dropped and repeat in every fold;
    ``wrap`` columns may wrap onto several lines; ``drop`` > 0 columns are left out when the
    table is too wide, the highest first."""

    header: str
    key: bool = False
    wrap: bool = False
    drop: int = 0
    justify: JustifyMethod = "left"


def terminal_width(default: int = 100) -> int:
    """The terminal's width ($COLUMNS first); ``default`` when output goes to a file or pipe."""
    return shutil.get_terminal_size((default, 24)).columns


def _plain(text: str) -> str:
    from rich.text import Text

    return Text.from_markup(text).plain


def _min_width(col: Col, values: Sequence[str]) -> int:
    """The narrowest a column may get: whole values (ids, numbers) under a header that may
    wrap at its spaces; wrapped text down to its longest word."""
    header_words = [len(w) for w in col.header.split()] or [0]
    if not col.wrap:
        cells = [len(line) for v in values for line in _plain(v).splitlines() or [""]]
        return max([*header_words, *cells])
    words = [len(w) for v in values for w in _plain(v).split()]
    return max([min(len(col.header), 12), *header_words, *words, 8])


def table_width(widths: Sequence[int]) -> int:
    return sum(w + 3 for w in widths) + 1


def _natural(col: Col, values: Sequence[str]) -> int:
    cells = [len(line) for v in values for line in _plain(v).splitlines() or [""]]
    return max([len(col.header), *cells])


def _widths(mins: Sequence[int], naturals: Sequence[int], width: int) -> list[int]:
    """Column widths within ``width``: the natural ones when they fit, else every column's
    minimum plus the room left, handed out to the narrowest shortfalls first."""
    if table_width(naturals) <= width:
        return list(naturals)
    out = list(mins)
    room = width - table_width(out)
    for i in sorted(range(len(out)), key=lambda i: naturals[i] - mins[i]):
        extra = min(max(room, 0), naturals[i] - mins[i])
        out[i] += extra
        room -= extra
    return out


def _table(cols: Sequence[Col], rows: Sequence[Sequence[str]], widths: Sequence[int],
           title: str | None, caption: str | None) -> Any:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title) if title else None,
                  caption=escape(caption) if caption else None)
    for col, width in zip(cols, widths, strict=True):
        # fixed widths: values are never wider, so only headers (and wrap columns) wrap
        table.add_column(escape(col.header), justify=col.justify, overflow="fold", width=width)
    for row in rows:
        table.add_row(*row)
    return table


def records(cols: Sequence[Col], rows: Sequence[Sequence[str]]) -> str:
    """One ``header: value`` line per cell, a blank line between rows (rich markup kept)."""
    from rich.markup import escape

    blocks = ["\n".join(f"{escape(c.header)}: {v}" for c, v in zip(cols, row, strict=True))
              for row in rows]
    return "\n\n".join(blocks)


def fit(cols: Sequence[Col], rows: Sequence[Sequence[str]], width: int, *,
        title: str | None = None, caption: str | None = None, fold: bool = False) -> list[Any]:
    """Rich renderables that fit ``width``: one table (secondary columns dropped as needed), or,
    with ``fold``, several tables that repeat the key columns; records when even that fails.
    A dropped column is named in the caption."""
    cols, rows = list(cols), [list(r) for r in rows]
    values = [[r[i] for r in rows] for i in range(len(cols))]
    mins = [_min_width(c, v) for c, v in zip(cols, values, strict=True)]
    naturals = [max(m, _natural(c, v)) for m, c, v in zip(mins, cols, values, strict=True)]
    dropped: list[str] = []
    order = sorted((i for i, c in enumerate(cols) if c.drop), key=lambda i: -cols[i].drop)
    keep = list(range(len(cols)))
    while table_width([mins[i] for i in keep]) > width and order and not fold:
        gone = order.pop(0)
        keep.remove(gone)
        dropped.append(cols[gone].header)
    if dropped:
        note = f"left out at this width: {', '.join(dropped)} (wider terminal or --json)"
        caption = f"{caption}; {note}" if caption else note
    if table_width([mins[i] for i in keep]) <= width:
        widths = _widths([mins[i] for i in keep], [naturals[i] for i in keep], width)
        return [_table([cols[i] for i in keep], [[r[i] for i in keep] for r in rows], widths,
                       title, caption)]
    keys = [i for i in keep if cols[i].key]
    others = [i for i in keep if not cols[i].key]
    base = table_width([mins[i] for i in keys])
    if fold and others and base + max(mins[i] + 3 for i in others) <= width:
        chunks: list[list[int]] = [[]]
        for i in others:
            if chunks[-1] and base + sum(mins[j] + 3 for j in chunks[-1]) + mins[i] + 3 > width:
                chunks.append([])
            chunks[-1].append(i)
        out = []
        for n, chunk in enumerate(chunks):
            idx = keys + chunk
            widths = _widths([mins[i] for i in idx], [naturals[i] for i in idx], width)
            out.append(_table([cols[i] for i in idx], [[r[i] for i in idx] for r in rows],
                              widths, title if n == 0 else None,
                              caption if n == len(chunks) - 1 else None))
        return out
    from rich.text import Text

    parts: list[Any] = [Text(title, style="bold")] if title else []
    parts.append(records([cols[i] for i in keep], [[r[i] for i in keep] for r in rows]))
    if caption:
        parts.append(Text(caption, style="italic"))
    return parts


def print_fitted(renderables: Sequence[Any], console: Any = None) -> None:
    from rich.console import Console

    console = console or Console()
    for index, item in enumerate(renderables):
        if index:
            console.print()
        console.print(item)


def render_plain(renderables: Sequence[Any], width: int) -> str:
    """The renderables as plain text (no colour), every line within ``width``."""
    import io

    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False)
    print_fitted(renderables, console)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"
