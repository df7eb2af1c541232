"""CSV cells a spreadsheet will not run: every CSV Kakugo writes passes its rows through
:func:`safe_row`, so a model name, a prompt or an answer starting with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return is shown as text, not evaluated as a formula (OWASP's CSV
injection advice: a leading ``'``). Numbers, and strings that are plain numbers (``-0.5``),
stay as they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

#: first characters that make Excel, LibreOffice or Google Sheets read a cell as a formula
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def safe_cell(value: Any) -> Any:
    """``value`` with a leading ``'`` when it is a string a spreadsheet would run as a formula;
    anything else (numbers, plain-number strings, other text) unchanged."""
    if (isinstance(value, str) and value.startswith(FORMULA_STARTS)
            and not _PLAIN_NUMBER.fullmatch(value)):
        return "'" + value
    return value


def safe_row(row: Iterable[Any] | Mapping[str, Any]) -> Any:
    """A row for ``csv.writer`` (a sequence) or ``csv.DictWriter`` (a mapping), every cell made
    safe with :func:`safe_cell`."""
    if isinstance(row, Mapping):
        return {key: safe_cell(value) for key, value in row.items()}
    return [safe_cell(value) for value in row]


def restore_cell(text: str) -> str:
    """Undo :func:`safe_cell` on a cell read back from a CSV Kakugo wrote."""
    if text.startswith("'") and text[1:].startswith(FORMULA_STARTS):
        return text[1:]
    return text
