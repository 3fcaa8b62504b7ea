"""The text helpers of conversation scoring: words, sentences and how alike two texts are.

Ending detection (:mod:`chimera.conversation.ending`) and quality scoring
(:mod:`chimera.conversation.quality`) read turns through these.  Every helper works on
text put through :func:`normalize` (lower case, straight quotes) and costs time linear in
its input: no pattern rescans what it has read, and :func:`jaccard` reads the smaller set
only.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Set as AbstractSet
from typing import Final

#: Words per shingle.  Three is short enough to catch a recycled clause and long enough that
#: two turns on the same subject rarely share many by chance (consecutive simulated turns:
#: median Jaccard 0.02, 99th percentile 0.4 -- and that is template-built text).
SHINGLE_SIZE: Final = 3
#: A turn needs this many shingles (i.e. SHINGLE_SIZE + 4 words) before its similarity means
#: anything; shorter turns are compared by their normalised text instead.
MIN_SHINGLES: Final = 5

_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
#: After closing punctuation, or at a line break.  A break is matched from the start of
#: its run of white space only, and possessively: tried at every space of a long run
#: without one, ``\s*\n`` would read the rest of the run each time.
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])[\"')\]\u201d]*\s+|(?<!\s)[^\S\n]*+\n\s*+")
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})

_STOPWORDS_TEXT = """
    a about above after again against all also am an and any are aren't as at be because
    been before being below between both but by can can't cannot could couldn't did didn't do
    does doesn't doing don't down during each even few for from further had hadn't has hasn't
    have haven't having he he'd he'll he's her here here's hers herself him himself his how
    how's however i i'd i'll i'm i've if in into is isn't it it's its itself just let's like
    make makes me might more most much must mustn't my myself no nor not now of off on once
    one only or other ought our ours ourselves out over own quite rather really same say says
    shan't she she'd she'll she's should shouldn't so some such than that that's the their
    theirs them themselves then there there's these they they'd they'll they're they've thing
    things think this those though through to too under until up upon us very was wasn't we
    we'd we'll we're we've well were weren't what what's when when's where where's whether
    which while who who's whom why why's will with won't would wouldn't yes yet you you'd
    you'll you're you've your yours yourself yourselves
    thanks thank please okay ok sure indeed right yeah"""
#: Function words: ignored when comparing what turns are *about*.
STOPWORDS: Final = frozenset(_STOPWORDS_TEXT.split())


def normalize(text: str) -> str:
    """Lower-case with straight quotes: what every pattern here matches against."""
    return text.translate(_QUOTES).lower()


def words(text: str) -> tuple[str, ...]:
    """The words of ``text``, lower-cased (contractions kept whole)."""
    return tuple(_WORD_RE.findall(normalize(text)))


def sentences(text: str) -> list[str]:
    """``text`` split into sentences (and paragraphs), normalised."""
    return [s for s in _SENTENCE_SPLIT_RE.split(normalize(text).strip()) if s]


@functools.lru_cache(maxsize=4096)
def shingles(text: str) -> frozenset[str]:
    """The word SHINGLE_SIZE-grams of ``text`` (the whole text if it is shorter)."""
    ws = words(text)
    if len(ws) < SHINGLE_SIZE:
        return frozenset({" ".join(ws)}) if ws else frozenset()
    return frozenset(" ".join(ws[i : i + SHINGLE_SIZE]) for i in range(len(ws) - SHINGLE_SIZE + 1))


_SUFFIXES: Final = ("ations", "ation", "ments", "ment", "ings", "ing", "edly", "ed", "es", "s")


def _stem(word: str) -> str:
    # Just enough to conflate "cars"/"car", "cities"/"city", "standardise"/"standardisation";
    # not a real stemmer, and it need not be: both sides of a comparison go through it.
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    for suffix in _SUFFIXES:
        if not word.endswith(suffix):
            continue
        if suffix == "s":
            if len(word) > 3 and not word.endswith(("ss", "us", "is")):
                word = word[:-1]
        elif len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)]
        break
    return word[:-1] if word.endswith("e") and len(word) > 4 else word


@functools.lru_cache(maxsize=4096)
def content_words(text: str) -> frozenset[str]:
    """The lightly stemmed words of ``text`` that carry meaning (no stopwords, 3+ letters)."""
    return frozenset(
        _stem(w) for w in words(text) if len(w) > 2 and w not in STOPWORDS and not w.isdigit()
    )


def jaccard(a: AbstractSet[str], b: AbstractSet[str]) -> float:
    """|a & b| / |a | b|, 0 for two empty sets."""
    if not a or not b:
        return 0.0
    shared = len(a & b)  # reads the smaller set only; a | b would read both
    return shared / (len(a) + len(b) - shared)


def containment(part: AbstractSet[str], whole: AbstractSet[str]) -> float:
    """The share of ``part`` found in ``whole``."""
    return len(part & whole) / len(part) if part else 0.0
