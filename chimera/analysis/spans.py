"""Quoted spans must be in the text they quote: models paraphrase and invent quotes."""

from __future__ import annotations

import re
import unicodedata

_SPACE = re.compile(r"\s+")
#: Curly quotes and en/em dashes, as their plain forms.
_FOLD = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"}
)
_EDGES = " \t\n\"'.,;:!?…()[]"


def normalise(text: str) -> str:
    """Case, width, quote style, dashes and runs of whitespace folded away."""
    text = unicodedata.normalize("NFKC", text).translate(_FOLD).casefold()
    return _SPACE.sub(" ", text).strip()


class SpanChecker:
    """Checks quotes against one text (normalised once)."""

    def __init__(self, text: str) -> None:
        self._haystack = normalise(text)

    def contains(self, quote: str) -> bool:
        needle = normalise(quote).strip(_EDGES)
        return bool(needle) and needle in self._haystack
