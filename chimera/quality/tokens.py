"""Words, sentences and shingles for quality.v2, in any script.

A word is a run of letters (any script; an apostrophe inside joins, so ``l'état`` and
``don't`` stay whole) or of digits; text is casefolded first, so ``Straße`` and ``STRASSE``
are one word.  Every helper is linear in its input: the patterns have no nested
quantifiers and sentences are split line by line.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Final

_WORD_RE = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)*|\d+(?:[.,]\d+)*")
#: After closing punctuation (any script) and the quotes or brackets that follow it.
_SENTENCE_END_RE = re.compile(r"(?<=[.!?\u2026\u3002\uff01\uff1f])[\"'\u201d\u00bb)\]]*\s+")
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})
#: Words per shingle: long enough that two turns on one subject rarely share many by chance.
SHINGLE_SIZE: Final = 3

_SUFFIXES: Final = (
    "ations", "ation", "ments", "ment", "ings", "ing", "edly", "ly", "ed", "es", "s",
)  # fmt: skip


def normalize(text: str) -> str:
    """NFC, straight quotes, casefolded: what every pattern of quality.v2 reads."""
    return unicodedata.normalize("NFC", text).translate(_QUOTES).casefold()


def words(text: str) -> list[str]:
    """The words of already normalised ``text``."""
    return _WORD_RE.findall(text)


def sentences(text: str) -> list[str]:
    """Already normalised ``text`` split into sentences (a line break ends one too)."""
    out: list[str] = []
    for line in text.splitlines():
        out.extend(s for s in (p.strip() for p in _SENTENCE_END_RE.split(line)) if s)
    return out


@functools.lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """Just enough stemming to conflate ``cars``/``car`` and ``spending``/``spend``."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def shingles(ws: Sequence[str], size: int = SHINGLE_SIZE) -> set[tuple[str, ...]]:
    """The word ``size``-grams of ``ws``."""
    return {tuple(ws[i : i + size]) for i in range(len(ws) - size + 1)}


def stems(ws: Iterable[str], stopwords: frozenset[str]) -> set[str]:
    """The stems of the content words among ``ws`` (neither stopwords, numbers nor letters)."""
    return {stem(w) for w in ws if len(w) > 2 and w not in stopwords and not w[0].isdigit()}
