"""What the commands print: aligned tables, and text someone else chose made safe to show.

Dead letters, queue items, topic names in headers and the errors that quote them are
written by whoever can write to a topic or a Redis list.  Printed raw, an escape
sequence among them would drive the operator's terminal (retitle it, rewrite what
was printed, hide lines); ``shown`` clips such text and escapes its control
characters before any command prints it.
"""

from __future__ import annotations

from collections.abc import Sequence

from chimera.untrusted import clip, printable


def shown(text: str | None, limit: int | None = None, *, empty: str = "-") -> str:
    """Untrusted ``text`` as a terminal may print it: clipped, control characters escaped."""
    if not text:
        return empty
    return printable(clip(text, limit))


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as lines of left-aligned columns, two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
