"""Quoting text that an event's author chose: cut to a bound, escaped for terminals.

Attacker-chosen text (a JSON key, a field's value, an error message that quotes
either) reaches log lines, error messages, dead-letter headers and the terminal.
Each of those quotes at most ``CHIMERA_MAX_QUOTED_CHARS`` characters of it, with a
marker saying how much was cut, so the cost of writing, redacting and shipping it
is bounded whatever the input's size.  ``install`` sets the process's bound from
the settings every entry point reads (``configure_logging`` calls it).
"""

from __future__ import annotations

import re

from chimera import defaults as d
from chimera.settings import Settings

_limit = d.MAX_QUOTED_CHARS


def install(settings: Settings) -> None:
    """Make ``settings.max_quoted_chars`` the process's bound."""
    global _limit  # noqa: PLW0603 - one per process, like the logging configuration
    _limit = settings.max_quoted_chars


def quote_limit() -> int:
    return _limit


def clip(text: str, limit: int | None = None) -> str:
    """``text`` cut to ``limit`` characters (the process's bound by default), marked."""
    limit = _limit if limit is None else limit
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[{len(text) - limit} more chars]"


#: C0/C1 controls (ESC starts terminal escape sequences), DEL, and the bidi overrides
#: that reorder what a reader sees.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` safe to print to a terminal: control characters shown as escapes."""
    return _UNPRINTABLE.sub(lambda m: repr(m.group())[1:-1], text)
