"""A conversation's turns read once for quality.v2: words, sentences, language, stems."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from chimera.models.transcript import TranscriptTurn
from chimera.quality.language import (
    ALL_STOPWORDS,
    STOPWORDS,
    SUPPORTED,
    Language,
    identify,
    script_counts,
)
from chimera.quality.tokens import normalize, sentences, shingles, stems, words

#: Sentences shorter than this many words take the turn's language.
SENTENCE_LANGUAGE_WORDS = 6


@dataclass
class Sentence:
    text: str
    words: list[str]
    language: Language


@dataclass
class Turn:
    """One turn as the detectors read it."""

    index: int
    speaker: str
    raw: str
    text: str
    words: list[str]
    sentences: list[Sentence]
    language: Language
    stems: set[str] = field(default_factory=set)
    shingles: set[tuple[str, ...]] = field(default_factory=set)

    @property
    def n_words(self) -> int:
        return len(self.words)


@dataclass
class Conversation:
    turns: list[Turn]
    language: Language
    topic_stems: set[str]

    @property
    def judged(self) -> bool:
        """Whether cue-based checks apply (its language is a supported one)."""
        return self.language in SUPPORTED


def stopwords_for(language: Language) -> frozenset[str]:
    return STOPWORDS.get(language, ALL_STOPWORDS)


def _language(text: str, ws: list[str]) -> Language:
    letters, foreign = script_counts(text)
    return identify(ws, letters, foreign)


def read(turns: Sequence[TranscriptTurn], topic: str | None) -> Conversation:
    """Tokenise ``turns`` and find each turn's language and the conversation's."""
    out: list[Turn] = []
    for turn in turns:
        text = normalize(turn.content)
        ws = words(text)
        lang = _language(text, ws)
        sents = []
        for s in sentences(text):
            sw = words(s)
            slang = _language(s, sw) if len(sw) >= SENTENCE_LANGUAGE_WORDS else lang
            if slang == "unknown":
                slang = lang
            sents.append(Sentence(s, sw, slang))
        out.append(Turn(turn.turn_index, turn.speaker, turn.content, text, ws, sents, lang))
    votes: Counter[str] = Counter()
    for t in out:
        if t.language != "unknown":
            votes[t.language] += t.n_words
    language: Language = votes.most_common(1)[0][0] if votes else "unknown"  # type: ignore[assignment]
    stop = stopwords_for(language)
    for t in out:
        t.stems = stems(t.words, stop)
        t.shingles = shingles(t.words)
    topic_words = words(normalize(topic)) if topic else []
    return Conversation(out, language, stems(topic_words, stop))
