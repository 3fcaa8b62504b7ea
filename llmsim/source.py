"""The input text that structured answers are drawn from, with quotable spans.

Analysis prompts wrap the text to analyse in instructions.  :func:`pick_source` takes the user
message that carries it (the last one, or a much longer earlier one) and, inside it, the largest
fenced or tagged block when there is one (```` ``` ````, ``<text>…</text>``, ``\"\"\"``).
Every span handed out is an exact substring of that message, so "quoted spans appear in the
input" holds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

from llmsim.textstats import (
    Sentence,
    clauses,
    key_phrases,
    keywords,
    polarity_label,
    rank_sentences,
    sentences,
    sentiment,
    speakers,
)

_BLOCK_RES = (
    re.compile(r"```[\w-]*\n(.*?)```", re.S),
    re.compile(r"<(\w+)[^>]*>(?P<body>.*?)</\1>", re.S),
    re.compile(r'"""(.*?)"""', re.S),
    re.compile(r"(?:^|\n)-{3,}\n(.*?)(?:\n-{3,}|$)", re.S),
)


def pick_source(user_texts: Sequence[str]) -> str:
    """The text an analysis is about: see the module docstring."""
    if not user_texts:
        return ""
    message = user_texts[-1]
    longest = max(user_texts, key=len)
    if len(message) * 3 < len(longest):
        message = longest
    best = ""
    for pattern in _BLOCK_RES:
        for match in pattern.finditer(message):
            body = match.group("body") if "body" in pattern.groupindex else match.group(1)
            if len(body.strip()) > len(best.strip()):
                best = body
    if len(sentences(best)) >= 2 or (best.strip() and len(best) * 2 >= len(message)):
        return best
    return message


@dataclass
class SourceText:
    """A text with its sentences (in order and ranked), keywords, speakers and polarity."""

    text: str
    ordered: list[Sentence] = field(init=False)
    ranked: list[Sentence] = field(init=False)
    speakers: list[str] = field(init=False)
    keywords: list[str] = field(init=False)
    phrases: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.ordered = sentences(self.text)
        self.speakers = speakers(self.text)
        names = frozenset(s.lower() for s in self.speakers)
        self.keywords = keywords(self.text, 12, exclude=names)
        self.phrases = key_phrases(self.text, 8)
        self.ranked = rank_sentences(self.ordered, self.phrases + self.keywords)

    @cached_property
    def salient(self) -> list[str]:
        """Phrases, then the keywords that are not already part of one."""
        inside = {w for p in self.phrases for w in p.lower().split()}
        return self.phrases + [k for k in self.keywords if k.lower() not in inside]

    @cached_property
    def polarity(self) -> float:
        return sentiment(self.text)[0]

    @cached_property
    def label(self) -> str:
        return polarity_label(self.text)

    def sentence(self, index: int) -> Sentence | None:
        """The ``index``-th most salient sentence, cycling; None when the text has none."""
        return self.ranked[index % len(self.ranked)] if self.ranked else None

    def quote(self, index: int, max_words: int = 30) -> Sentence | None:
        """A short verbatim span: the sentence, or one of its clauses when it is long."""
        sentence = self.sentence(index)
        if sentence is None or len(sentence.words) <= max_words:
            return sentence
        parts = clauses(sentence, 4, max_words)
        return parts[0] if parts else sentence

    def summary(self, n: int = 3) -> str:
        """An extractive summary: the ``n`` most salient sentences, in their original order."""
        top = sorted(self.ranked[:n], key=lambda s: s.start)
        return " ".join(s.text for s in top)

    def span(self, span: Sentence, min_len: int, max_len: int | None) -> str:
        """The text of ``span`` widened or cut (within the source) to fit the length bounds."""
        start, end = span.start, span.end
        if end - start < min_len:
            end = min(len(self.text), start + min_len)
            start = max(0, end - min_len)
        if max_len is not None and end - start > max_len:
            cut = self.text.rfind(" ", start, start + max_len + 1)
            end = cut if cut > start + max_len // 2 else start + max_len
        out = self.text[start:end]
        stripped = out.strip()
        return stripped if len(stripped) >= min_len else out

    def speaker_of(self, span: Sentence | None, index: int) -> str | None:
        """Who said ``span`` (its ``Name:`` line), else the ``index``-th speaker, else None."""
        if span is not None and span.speaker:
            return span.speaker
        return self.speakers[index % len(self.speakers)] if self.speakers else None
