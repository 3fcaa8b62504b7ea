"""Conversation turns that read like a dialogue, built from the phrase bank and the request.

A reply is assembled from *moves*: an opener (first turn) or a reaction to the last message
(agree / disagree / partly agree, quoting a clause of it verbatim or paraphrasing it), a few
sentences developing the topic, perhaps a question back, and — as the conversation grows — closing
moves ("To sum up…", "Thanks, this was a good exchange").  Slots are filled with the topic (from
the system prompt or the first message), the persona ("You are a skeptical economist…") and
keywords of the last message.  Each model family speaks in its own *voice* (length, hedges,
interjections, appetite for questions).

Everything is drawn from the ``random.Random`` the caller passes in, so a (seed, request) pair
always gives the same text.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from llmsim import phrases
from llmsim.textstats import clauses, key_phrases, keywords, sentences, words

#: First words of sentences that a hedge ("I suspect …") would make ungrammatical.
_NO_HEDGE = frozenset(
    {"Consider", "Whatever", "If", "Framing", "I", "I'd", "I'm", "I've", "Let", "Let's"}
)
_TOPIC_REFS = ("this debate", "this question")
_FILLER_KEYWORDS = (
    "the evidence",
    "the incentive structure",
    "the main trade-off",
    "the cost side",
    "the long-term picture",
)
_NOUNISH = re.compile(r"(tion|sion|ment|ness|ity|ism|ance|ence|ship|age|ure|ist|ogy|cy|ers|ors|s)$")
_NOT_NOUNISH = re.compile(r"(ly|ed|ous|ful|ive|able|ible|ic|al|less|est)$")

_TOPIC_PATTERNS = (
    re.compile(
        r"\b(?:topic|subject)\b\s*(?:is|was|will be)?\s*[:=-]?\s*"
        r"[\"\u201c']?(?P<t>[^\"\u201d'\n.?!]{3,})",
        re.I,
    ),
    re.compile(
        r"\b(?:conversation|discussion|debate|chat|talk|dialogue)\s+(?:about|on|regarding)\s*:?\s*"
        r"[\"\u201c']?(?P<t>[^\"\u201d'\n.?!]{3,})",
        re.I,
    ),
    re.compile(
        r"\b(?:discussing|discuss|debating|debate|talking about|talk about|exploring|explore)\b"
        r"\s*:?\s*"
        r"[\"\u201c']?(?P<t>[^\"\u201d'\n.?!]{3,})",
        re.I,
    ),
    re.compile(r"\babout\s*:?\s*[\"\u201c']?(?P<t>[^\"\u201d'\n.?!,;]{3,})", re.I),
)
_PERSONA_RE = re.compile(
    r"(?i:\byou are\b)\s+(?:[A-Z][\w-]+,\s+)?(?P<p>(?:an?|the)\s+[^.,;:!?\n]{2,80})"
)
_PERSONA_STOP = re.compile(
    r"\s(?:who|that|having|taking|talking|discussing|debating|with|in a|in an|in the|and you|"
    r"about|on the|for)\b.*$",
    re.I,
)
_SKEPTIC = re.compile(r"skeptic|sceptic|critic|contrarian|devil|cynic|doubt|pessimis", re.I)
_SUPPORTER = re.compile(r"optimis|enthusias|advocate|support|champion|believer|fan\b", re.I)
_ROLE_ASIDE = re.compile(r"\b(?:as|am|I'm)\s+(?:an?|the)\s+[^,.;:!?]+", re.I)
_LEADING_FUNCTION_WORD = re.compile(r"^(The|A|An|How|Whether|Why|What|Which|Our|Their|Its)\b")


@dataclass(frozen=True)
class Voice:
    """How a model family talks: length of the body, hedges, interjections, questions."""

    name: str
    body_sentences: tuple[int, int]
    question_p: float
    hedges: tuple[str, ...]
    interjections: tuple[str, ...]
    connectors: tuple[str, ...]
    enumerate_p: float = 0.0


VOICES: dict[str, Voice] = {
    "measured": Voice(
        "measured",
        (2, 4),
        0.5,
        ("I suspect", "On balance,", "It seems to me that", "Arguably,", "I'd suggest that"),
        ("Hmm.", "That's a thoughtful point.", "Interesting."),
        ("Still,", "At the same time,", "That said,", "Even so,"),
    ),
    "energetic": Voice(
        "energetic",
        (2, 4),
        0.6,
        ("Honestly,", "Here's the thing:", "Really,"),
        ("Great point!", "Oh, absolutely.", "Love this.", "Ooh, good one."),
        ("Plus,", "On top of that,", "And here's another angle:", "Also,"),
        enumerate_p=0.25,
    ),
    "direct": Voice(
        "direct", (1, 3), 0.35, ("Simply put,", "Bluntly,"), ("Okay.", "Right."), ("Also,",)
    ),
    "socratic": Voice(
        "socratic",
        (1, 2),
        0.95,
        ("I wonder whether", "Perhaps"),
        ("Let me ask you something.", "A question first."),
        ("And yet,", "But then,"),
    ),
}
#: Every word of the phrase bank and the voices: stock words, not what the other side is *about*.
_BANK_WORDS = frozenset(
    w.lower()
    for text in [
        *(template for bank in phrases.ALL_BANKS for template in bank),
        *(p for v in VOICES.values() for p in (*v.hedges, *v.interjections, *v.connectors)),
        *_TOPIC_REFS,
    ]
    for w in words(re.sub(r"\{\w+\}", " ", text))
)
_MODEL_VOICES = (
    ("claude", "measured"),
    ("gemini", "energetic"),
    ("gemma", "energetic"),
    ("gpt", "direct"),
    ("o1", "direct"),
    ("o3", "direct"),
    ("o4", "direct"),
    ("llama", "socratic"),
    ("mistral", "direct"),
    ("qwen", "energetic"),
)


@dataclass(frozen=True)
class Turn:
    """One message of a conversation, reduced to its role and its text."""

    role: str  # "user" or "assistant"
    text: str


@dataclass(frozen=True)
class Pacing:
    """When a conversation starts winding down: closing is impossible before ``start_turn``
    messages, certain from ``certain_turn`` on, and increasingly likely in between."""

    start_turn: int = 6
    certain_turn: int = 14

    def closing_probability(self, n_messages: int) -> float:
        span = max(1, self.certain_turn - self.start_turn)
        return min(1.0, max(0.0, (n_messages - self.start_turn) / span))


def voice_for(model: str) -> Voice:
    """The voice of a model family by name prefix; unknown models get one by a stable hash."""
    low = model.lower()
    for prefix, name in _MODEL_VOICES:
        if prefix in low:
            return VOICES[name]
    names = sorted(VOICES)
    return VOICES[names[sum(low.encode()) % len(names)]]


def find_topic(system: str, first_message: str) -> str:
    """The conversation's subject: a ``topic:``/``about …`` phrase, else keywords of the first
    message."""
    for text in (system, first_message):
        for pattern in _TOPIC_PATTERNS:
            match = pattern.search(text)
            if match:
                topic = re.split(r"[,;(]|\s-\s", match.group("t"))[0].strip()
                topic = " ".join(topic.split()[:12])
                if len(words(topic)) >= 1 and keywords(topic, 1):
                    return _LEADING_FUNCTION_WORD.sub(lambda m: m.group(0).lower(), topic)
    text = first_message or system
    found = key_phrases(text, 2) or keywords(text, 2)
    return " and ".join(found) if found else "this question"


def find_persona(system: str) -> str | None:
    """The role after "You are", e.g. ``a skeptical economist``; None when there is none."""
    match = _PERSONA_RE.search(system)
    if not match:
        return None
    persona = _PERSONA_STOP.sub("", match.group("p")).strip()
    persona = " ".join(persona.split()[:6])
    return persona if len(persona.split()) >= 2 else None


def is_closing(text: str) -> bool:
    """Whether a turn contains a closing move ("to sum up", "thanks", "wrap up", …)."""
    low = text.lower().replace("\u2019", "'")
    return any(marker in low for marker in phrases.CLOSING_MARKERS)


def reply(
    *, system: str, turns: Sequence[Turn], model: str, rng: random.Random, pacing: Pacing = Pacing()
) -> str:
    """The next assistant turn for ``turns`` (the last of which is usually the user's)."""
    return _Composer(system, turns, model, rng, pacing).compose()


class _Composer:
    def __init__(
        self, system: str, turns: Sequence[Turn], model: str, rng: random.Random, pacing: Pacing
    ) -> None:
        self.rng = rng
        self.voice = voice_for(model)
        user_turns = [t.text for t in turns if t.role == "user"]
        self.first = user_turns[0] if user_turns else ""
        self.last = user_turns[-1] if user_turns else ""
        self.opening = sum(1 for t in turns if t.role == "assistant") == 0 and len(user_turns) <= 1
        self.topic = find_topic(system, self.first)
        self.persona = find_persona(system)
        self.n_messages = len(turns)
        self.pacing = pacing
        self.seen = {s.text for t in turns for s in sentences(t.text)}
        self.used: set[str] = set()
        topic_words = _salient(self.topic)
        last_words = [] if self.opening else _salient(self.last, message=True)
        self.react_words = last_words or topic_words
        pool = last_words[:3] + topic_words + _salient(self.first, message=True)
        self.develop_words = list(dict.fromkeys(pool)) or list(_FILLER_KEYWORDS)
        self.quotes = self._quotable(self.last)
        persona = self.persona or ""
        if _SKEPTIC.search(persona):
            self.stance_weights = (0.2, 0.5, 0.3)
        elif _SUPPORTER.search(persona):
            self.stance_weights = (0.65, 0.1, 0.25)
        else:
            self.stance_weights = (0.45, 0.25, 0.3)

    def compose(self) -> str:
        other_closed = not self.opening and is_closing(self.last)
        closing = other_closed or self.rng.random() < self.pacing.closing_probability(
            self.n_messages
        )
        out: list[str] = []
        if self.opening:
            out.append(self._fill(phrases.OPENERS))
        elif other_closed:
            out.append(self._fill(phrases.CLOSING_REPLIES, self.react_words))
        else:
            out.append(self._reaction())
        low, high = self.voice.body_sentences
        body = self.rng.randint(low, high) if not closing else self.rng.randint(0, 1)
        if self.persona and not closing and self.rng.random() < 0.3:
            out.append(self._fill(phrases.PERSONA))
            body = max(0, body - 1)
        out.extend(self._develop(body))
        if closing:
            if not other_closed:
                out.append(self._fill(phrases.CLOSINGS))
            if self.rng.random() < 0.5 or other_closed:
                out.append(self._fill(phrases.THANKS))
        elif self.rng.random() < self.voice.question_p:
            question = self._fill(phrases.QUESTIONS)
            # A long turn sometimes puts its question in a paragraph of its own.
            out.append(f"\n\n{question}" if len(out) >= 4 and self.rng.random() < 0.3 else question)
        return " ".join(dict.fromkeys(s for s in out if s)).replace(" \n\n", "\n\n")

    # --- moves ---------------------------------------------------------------------------------

    def _reaction(self) -> str:
        agree, disagree, partial = self.stance_weights
        pick = self.rng.choices(
            (phrases.AGREE, phrases.DISAGREE, phrases.PARTIAL, phrases.PARAPHRASE),
            weights=(agree, disagree, partial, 0.2),
        )[0]
        sentence = self._fill(pick, self.react_words)
        if self.rng.random() < 0.35 and self.voice.interjections:
            interjection = self.rng.choice(self.voice.interjections)
            # An enthusiastic interjection before a disagreement reads oddly; keep it neutral.
            if pick is phrases.AGREE or not interjection.endswith("!"):
                sentence = f"{interjection} {sentence}"
        return sentence

    def _develop(self, count: int) -> list[str]:
        out = []
        enumerate_ = count >= 2 and self.rng.random() < self.voice.enumerate_p
        ordinals = ("First,", "Second,", "Third,", "And finally,")
        for i in range(count):
            sentence = self._fill(phrases.DEVELOP, self.develop_words)
            if enumerate_ and i < len(ordinals):
                sentence = f"{ordinals[i]} {_decap(sentence)}"
            elif i > 0 and self.rng.random() < 0.3:
                sentence = f"{self.rng.choice(self.voice.connectors)} {_decap(sentence)}"
            elif self.rng.random() < 0.25 and sentence.split(" ", 1)[0] not in _NO_HEDGE:
                sentence = f"{self.rng.choice(self.voice.hedges)} {_decap(sentence)}"
            out.append(sentence)
        return out

    # --- slot filling ---------------------------------------------------------------------------

    def _fill(self, templates: Sequence[str], pool: Sequence[str] | None = None) -> str:
        pool = list(pool or self.develop_words)
        candidate = ""
        for _ in range(8):
            template = self.rng.choice(templates)
            if "{quote}" in template and not self.quotes:
                continue
            kw, kw2 = self._two(pool)
            candidate = _capitalise(
                template.format(
                    topic=self.topic if templates is phrases.OPENERS else self._topic_ref(),
                    kw=kw,
                    kw2=kw2,
                    quote=self.rng.choice(self.quotes) if self.quotes else "",
                    persona=self.persona or "someone who works on this",
                )
            )
            if candidate not in self.seen and candidate not in self.used:
                break
        self.used.add(candidate)
        return candidate

    def _topic_ref(self) -> str:
        """A long topic is not repeated in full every time: "this question", "the question of …"."""
        if len(self.topic.split()) <= 6 or self.rng.random() < 0.35:
            return self.topic
        short = key_phrases(self.topic, 1)
        refs = [*_TOPIC_REFS, *([f"the question of {short[0]}"] if short else [])]
        return self.rng.choice(refs)

    def _two(self, pool: list[str]) -> tuple[str, str]:
        # Favour the strongest keywords without always picking the same pair.
        head = pool[:5] if len(pool) >= 2 else pool + list(_FILLER_KEYWORDS)
        first, second = self.rng.sample(head, 2)
        return first, second

    def _quotable(self, text: str) -> list[str]:
        found: list[str] = []
        for sentence in sentences(text):
            if sentence.text.endswith("?"):
                continue  # quoting a question back reads oddly
            found += [c.text for c in clauses(sentence, 4, 12)]
            if not found and 4 <= len(sentence.words) <= 14:
                found.append(sentence.text.rstrip(".!?"))
        return [q for q in found if '"' not in q][:8]


def _salient(text: str, *, message: bool = False) -> list[str]:
    """What a reply can talk *about*: multi-word phrases, then noun-like keywords.

    In a message (not the topic), the phrase bank's own words and "as a <role>" asides are
    skipped: when two simulated models talk, each would otherwise pick up the other's stock
    phrases ("second-order effects", "urban planner") instead of the topic."""
    if message:
        text = _ROLE_ASIDE.sub(" ", text)
    phrases_ = [p for p in key_phrases(text, 6) if not (message and set(p.split()) & _BANK_WORDS)][
        :4
    ]
    inside = {w for p in phrases_ for w in p.lower().split()}
    exclude = _BANK_WORDS if message else frozenset()
    found = [w for w in keywords(text, 8, exclude=exclude) if w.lower() not in inside]
    return phrases_ + _noun_first(found)


def _noun_first(found: list[str]) -> list[str]:
    """Noun-like keywords first: a reply says "the point about tariffs", not "about cheap"."""

    def rank(word: str) -> int:
        if " " in word or word[:1].isupper():
            return 0
        if _NOT_NOUNISH.search(word):
            return 2
        return 0 if _NOUNISH.search(word) else 1

    return sorted(found, key=rank)


def _capitalise(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:] if sentence else sentence


def _decap(sentence: str) -> str:
    """Lower-case the first letter unless the first word is "I", an acronym or a name-like word."""
    first = sentence.split(" ", 1)[0]
    keep = (
        first in {"I", "I'd", "I'm", "I've", "I'll"}
        or (len(first) > 1 and first.isupper())
        or first[1:2].isupper()
        or sentence.startswith('"')
    )
    return sentence if keep else sentence[:1].lower() + sentence[1:]
