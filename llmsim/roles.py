"""What a JSON property is *for*, guessed from its name (``key_points`` → points).

Generic on purpose: the simulator knows no Chimera schema, only common English field names.
A name is split into words (``evidenceQuote`` → ``evidence quote``) and the first role, in the
order below, that one of its words belongs to wins — so ``sentiment_score`` is a score and
``confidence_score`` a confidence.  A few vague words (``text``, ``name``, ``number``…) count only
when nothing else matches: ``summary_text`` is a summary, a bare ``text`` a quote.
"""

from __future__ import annotations

import enum
import re


class Role(enum.Enum):
    SPEAKER = "speaker"
    QUOTE = "quote"
    SUMMARY = "summary"
    CONFIDENCE = "confidence"
    SCORE = "score"
    SENTIMENT = "sentiment"
    COUNT = "count"
    POINT = "point"
    INFERENCE = "inference"
    KEYWORD = "keyword"
    TITLE = "title"
    EXPLANATION = "explanation"
    LANGUAGE = "language"
    IDENT = "ident"
    GENERIC = "generic"


_WORDS: tuple[tuple[Role, frozenset[str]], ...] = tuple(
    (role, frozenset(words.split()))
    for role, words in (
        (Role.SPEAKER, "speaker speakers author authors participant participants who"),
        (
            Role.QUOTE,
            "quote quotes quoted span spans excerpt excerpts evidence citation citations verbatim "
            "snippet snippets text passage passages sentence",
        ),
        (Role.SUMMARY, "summary summaries abstract overview tldr synopsis gist"),
        (Role.CONFIDENCE, "confidence probability certainty likelihood"),
        (Role.SCORE, "score scores rating ratings intensity magnitude"),
        (Role.SENTIMENT, "sentiment sentiments tone polarity mood emotion stance attitude"),
        (Role.COUNT, "count number total num amount"),
        (
            Role.POINT,
            "point points takeaway takeaways highlight highlights finding findings claim claims "
            "argument arguments premise premises conclusion conclusions statement statements "
            "bullet bullets assumption assumptions",
        ),
        (
            Role.INFERENCE,
            "implication implications consequence consequences prediction predictions "
            "recommendation recommendations counterargument counterarguments risk risks",
        ),
        (
            Role.KEYWORD,
            "keyword keywords tag tags topic topics theme themes entity entities term terms",
        ),
        (Role.TITLE, "title headline heading name"),
        (
            Role.EXPLANATION,
            "reason reasons reasoning rationale explanation justification description analysis "
            "comment comments note notes detail details why critique assessment feedback "
            "interpretation",
        ),
        (Role.LANGUAGE, "language lang locale"),
        (Role.IDENT, "id uid identifier key slug"),
    )
)
_WEAK = frozenset({"text", "sentence", "name", "number", "key", "who"})
_SPLIT_RE = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def name_words(name: str) -> list[str]:
    """``evidenceQuote`` / ``evidence_quote`` / ``Evidence-Quote`` → ``["evidence", "quote"]``."""
    return [w.lower() for w in _SPLIT_RE.findall(name)]


def role_of(name: str) -> Role:
    found = set(name_words(name))
    for candidates in (found - _WEAK, found & _WEAK):
        for role, words in _WORDS:
            if candidates & words:
                return role
    return Role.GENERIC


def is_plural(name: str) -> bool:
    """Whether a field name reads as a list of things (``points``, ``key_phrases``)."""
    parts = name_words(name)
    return bool(parts) and parts[-1].endswith("s") and not parts[-1].endswith(("ss", "us", "is"))
