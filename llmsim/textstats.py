"""Text statistics the generators build on: tokens, words, keywords, sentences, speakers, sentiment.

Everything here is a pure function of its input.  Sentences keep their character offsets so that
anything quoted from them is an exact substring of the text it came from.

Token counts are an approximation, documented once here: **one token per four characters**
(rounded up), the rule of thumb Anthropic and OpenAI give for English text.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from llmsim.lexicon import (
    COMMON_VERBS,
    NEGATIVE_WORDS,
    NEGATORS,
    NOT_SPEAKERS,
    POSITIVE_WORDS,
    PROMPT_WORDS,
    STOP_WORDS,
)

CHARS_PER_TOKEN = 4


Polarity = Literal["positive", "negative", "neutral", "mixed"]

_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'\u2019-]*[A-Za-z]|[A-Za-z]")
_SENTENCE_RE = re.compile(r"[^.!?\n]+(?:[.!?]+[\"'\u201d\u2019)]*|$)")
_CLAUSE_SPLIT_RE = re.compile(r"[,;:\u2014\u2013]|\s-\s|\s(?:but|because|although|while|whereas)\s")
_SPEAKER_RE = re.compile(r"^[ \t]*([A-Z][\w.'-]*(?:[ \t][A-Z0-9][\w.'-]*){0,2})[ \t]*:[ \t]+(?=\S)")

_ADVERB_OR_PAST = re.compile(r"\w{3,}(?:ly|ed)$")


@dataclass(frozen=True)
class Sentence:
    """A sentence of a text: ``text == source[start:end]``; ``speaker`` from a ``Name:`` line."""

    text: str
    start: int
    end: int
    speaker: str | None = None

    @property
    def words(self) -> list[str]:
        return words(self.text)


def count_tokens(text: str) -> int:
    """Approximate token count: one token per four characters, rounded up (0 for "")."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def words(text: str) -> list[str]:
    return _WORD_RE.findall(text)


def keywords(text: str, limit: int = 8, exclude: frozenset[str] = frozenset()) -> list[str]:
    """The most frequent content words, ties broken by first appearance, in their usual casing.

    A word keeps its capital only if it is capitalised somewhere other than at the start of a
    sentence and never written in lower case (names, acronyms).
    """
    counts: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    lower_seen: set[str] = set()
    name_seen: set[str] = set()
    forms: dict[str, str] = {}
    for index, (word, sentence_start) in enumerate(_words_with_position(text)):
        low = word.lower().replace("\u2019", "'")
        if low in STOP_WORDS or low in PROMPT_WORDS or low in exclude:
            continue
        if len(low) < 3 and not (len(word) >= 2 and word.isupper()):
            continue
        counts[low] += 1
        first_seen.setdefault(low, index)
        if word[0].islower():
            lower_seen.add(low)
        elif not sentence_start or word.isupper():
            name_seen.add(low)
            forms[low] = word
    ranked = sorted(counts, key=lambda w: (-counts[w], first_seen[w]))
    return [forms[w] if w in name_seen and w not in lower_seen else w for w in ranked[:limit]]


def key_phrases(text: str, limit: int = 6, min_count: int = 1) -> list[str]:
    """Pairs of adjacent content words ("remote work", "real estate").

    English noun phrases end in their head, so a longer run of content words keeps its last two;
    verbs and adverbs that often follow a noun ("changed", "worry", "quickly") end a run.  Ordered
    by frequency, then first appearance.
    """
    counts: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    run: list[str] = []
    last_end = -1

    def flush() -> None:
        if len(run) >= 2:
            phrase = " ".join(run[-2:])
            counts[phrase] += 1
            first_seen.setdefault(phrase, len(first_seen))
        run.clear()

    for match in _WORD_RE.finditer(text):
        word = match.group(0)
        low = word.lower().replace("\u2019", "'")
        gap = text[last_end : match.start()] if last_end >= 0 else " "
        if not gap.isspace():
            flush()
        last_end = match.end()
        if low in STOP_WORDS or low in PROMPT_WORDS or len(low) < 3 or _not_in_noun_phrase(low):
            flush()
            continue
        run.append(word if word.isupper() and len(word) > 1 else low)
    flush()
    ranked = sorted(
        (p for p in counts if counts[p] >= min_count), key=lambda p: (-counts[p], first_seen[p])
    )
    return ranked[:limit]


def _not_in_noun_phrase(word: str) -> bool:
    return bool(_ADVERB_OR_PAST.search(word)) or word in COMMON_VERBS


def _words_with_position(text: str) -> list[tuple[str, bool]]:
    """Each word with whether it starts a sentence (first word, or after . ! ? : or a newline)."""
    out: list[tuple[str, bool]] = []
    last_end = 0
    for match in _WORD_RE.finditer(text):
        gap = text[last_end : match.start()]
        out.append((match.group(0), not out or bool(re.search(r"[.!?:\n\"\u201c]", gap))))
        last_end = match.end()
    return out


def sentences(text: str) -> list[Sentence]:
    """Split ``text`` into sentences with exact offsets; ``Name: ...`` lines set the speaker."""
    out: list[Sentence] = []
    offset = 0
    for line in text.splitlines(keepends=True):
        speaker = None
        body_start = 0
        match = _SPEAKER_RE.match(line)
        if match and match.group(1).lower() not in NOT_SPEAKERS:
            speaker = match.group(1)
            body_start = match.end()
        for piece in _SENTENCE_RE.finditer(line, body_start):
            raw = piece.group(0)
            stripped = raw.strip()
            if len(words(stripped)) < 2:
                continue
            start = offset + piece.start() + (len(raw) - len(raw.lstrip()))
            out.append(Sentence(stripped, start, start + len(stripped), speaker))
        offset += len(line)
    return out


def clauses(sentence: Sentence, min_words: int = 4, max_words: int = 14) -> list[Sentence]:
    """Clauses of a sentence between commas, dashes and conjunctions, as exact sub-spans."""
    out: list[Sentence] = []
    cursor = 0
    text = sentence.text
    bounds = [(m.start(), m.end()) for m in _CLAUSE_SPLIT_RE.finditer(text)] + [
        (len(text), len(text))
    ]
    for cut_start, cut_end in bounds:
        raw = text[cursor:cut_start]
        stripped = raw.strip().rstrip(".!?\"'\u201d\u2019")
        n = len(words(stripped))
        if min_words <= n <= max_words:
            begin = cursor + (len(raw) - len(raw.lstrip()))
            out.append(
                Sentence(
                    stripped,
                    sentence.start + begin,
                    sentence.start + begin + len(stripped),
                    sentence.speaker,
                )
            )
        cursor = cut_end
    return out


def speakers(text: str) -> list[str]:
    """Speaker names from ``Name: ...`` lines, in order of first appearance."""
    seen: dict[str, None] = {}
    for sentence in sentences(text):
        if sentence.speaker:
            seen.setdefault(sentence.speaker, None)
    return list(seen)


def rank_sentences(items: list[Sentence], key_words: list[str]) -> list[Sentence]:
    """Sentences by how keyword-dense they are, instruction-like and tiny ones last; stable."""
    weight = {w.lower(): len(key_words) - i for i, w in enumerate(key_words)}

    def score(pair: tuple[int, Sentence]) -> float:
        index, sentence = pair
        toks = [w.lower() for w in sentence.words]
        if not toks:
            return -1e9
        density = sum(weight.get(t, 0) for t in toks) / math.sqrt(len(toks))
        if any(t in PROMPT_WORDS for t in toks):
            density -= 5.0
        if len(toks) < 5 or len(toks) > 45:
            density -= 3.0
        return density + (1.0 if index == 0 else 0.0)

    ranked = sorted(enumerate(items), key=score, reverse=True)
    return [sentence for _, sentence in ranked]


def sentiment(text: str) -> tuple[float, int, int]:
    """Lexicon polarity in (-1, 1) with negation (``not good`` is negative), plus the hit counts."""
    toks = [w.lower().replace("\u2019", "'") for w in words(text)]
    positive = negative = 0
    for i, tok in enumerate(toks):
        polarity = 1 if tok in POSITIVE_WORDS else -1 if tok in NEGATIVE_WORDS else 0
        if not polarity:
            continue
        window = toks[max(0, i - 3) : i]
        if any(w in NEGATORS or w.endswith("n't") for w in window):
            polarity = -polarity
        if polarity > 0:
            positive += 1
        else:
            negative += 1
    score = (positive - negative) / (positive + negative + 1)
    return score, positive, negative


def polarity_label(text: str) -> Polarity:
    """``positive``/``negative`` past ±0.2, ``mixed`` when both sides are strong, else neutral."""
    score, positive, negative = sentiment(text)
    if score > 0.2:
        return "positive"
    if score < -0.2:
        return "negative"
    if positive >= 2 and negative >= 2:
        return "mixed"
    return "neutral"
