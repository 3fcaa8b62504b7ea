"""Conversation turns that read like one side of a real exchange, composed from parts.

A reply is a sequence of *moves*: an opener (first turn) or a reaction to the last message
(agree / disagree / partly agree, naming what the other side said or quoting a clause of it),
then a new point — a claim from an aspect of the question not yet discussed (cost, evidence,
fairness, …; see :mod:`llmsim.points`), introduced by a bridge that fits the stance — perhaps a
supporting sentence or a second claim, a persona aside, and at times a follow-up question.
Sentences are built from frames, lead-ins and clauses (:mod:`llmsim.phrases`), so their shapes
vary, and no sentence already said in the conversation is said again.  As the conversation
grows, or when the other side closes or the request says the conversation is ending, the turn
closes instead ("To sum up…", "Thanks, this was a good exchange").  Each model family speaks in
its own *voice* (length, hedges, interjections, appetite for questions).

Everything is drawn from the ``random.Random`` the caller passes in, so a (seed, request) pair
always gives the same text.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from llmsim import phrases
from llmsim.lexicon import STOP_WORDS
from llmsim.points import ASPECTS, Aspect
from llmsim.textstats import clauses, key_phrases, keywords, sentences, speakers, words

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
_QUESTION_TOPIC = re.compile(
    r"^(?:should|is|are|can|could|will|would|do|does|did|must|has|have|was|were)\b", re.I
)
#: The request says the conversation is ending (the service's standing "wrap it up when the
#: discussion has run its course" does not count: it is a condition, not a request).
_ENDING_REQUEST = re.compile(
    r"\b(?:(?:this|it)(?:'s| is) (?:the|your) (?:last|final) (?:turn|reply|message|word)"
    r"|(?:the )?conversation is (?:ending|over|coming to an end)"
    r"|please (?:wrap|close|conclude|finish|sum)\w*"
    r"|say goodbye)\b",
    re.I,
)
#: Words that say nothing about what a message is about.
_PLAIN = frozenset(
    (
        "think", "thing", "things", "point", "points", "people", "really", "also", "much",
        "many", "way", "something", "would", "could", "make", "makes", "part", "lot", "said",
        "says", "say", "see", "seems", "well", "even", "still", "first", "just", "like", "know",
        "get",
    )
)  # fmt: skip
_ANSWER_POOL = 5


@dataclass(frozen=True)
class Voice:
    """How a model family talks: length of the body, hedges, interjections, questions."""

    name: str
    body_sentences: tuple[int, int]
    question_p: float
    hedges: tuple[str, ...]
    interjections: tuple[str, ...]
    connectors: tuple[str, ...]


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


def aspects_of(text: str) -> list[Aspect]:
    """The aspects a text is about, strongest first: a sentence of an aspect's own material
    weighs most, then its cue words (none when the text has neither)."""
    low = text.lower()
    found = [w.lower() for w in words(text)]
    scored = []
    for i, aspect in enumerate(ASPECTS):
        said = sum(m.lower() in low for m in _material(aspect))
        scored.append((3 * said + sum(w in aspect.cues for w in found), i, aspect))
    return [a for n, _, a in sorted(scored, key=lambda s: (-s[0], s[1])) if n > 0]


def _material(aspect: Aspect) -> tuple[str, ...]:
    return (*aspect.claims, *(s.rstrip(".?") for s in (*aspect.supports, *aspect.questions)))


def _said(aspect: Aspect, text: str) -> list[str]:
    """The claims and statements of ``aspect`` that ``text`` makes."""
    low = text.lower()
    return [m for m in _material(aspect)[: -len(aspect.questions)] if m.lower() in low]


def content_words(text: str) -> list[str]:
    """Lower-cased words of ``text`` that carry meaning (no stop words, no filler)."""
    out = []
    for word in words(text):
        low = word.lower()
        if len(low) > 2 and low not in STOP_WORDS and low not in _PLAIN:
            out.append(low)
    return out


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
        self.last = _latest(user_turns[-1]) if user_turns else ""
        self.opening = (
            sum(1 for t in turns if t.role == "assistant") == 0
            and len(user_turns) <= 1
            and not speakers(self.last)
        )
        self.topic = find_topic(system, self.first)
        self.persona = find_persona(system)
        self.n_messages = len(turns)
        self.pacing = pacing
        self.ending_requested = bool(
            _ENDING_REQUEST.search(system) or _ENDING_REQUEST.search(self.last)
        )
        self.seen = {s.text for t in turns for s in sentences(t.text)}
        self.history = " ".join(t.text for t in turns).lower()
        self.used: set[str] = set()
        discussed = [
            a
            for t in turns
            for i, a in enumerate(aspects_of(t.text))
            if i == 0 or any(m.lower() in t.text.lower() for m in _material(a))
        ]
        self.last_aspect = None if self.opening else next(iter(aspects_of(self.last)), None)
        fresh = [a for a in ASPECTS if a not in discussed]
        self.new_aspects = rng.sample(fresh, len(fresh)) or rng.sample(ASPECTS, len(ASPECTS))
        if self.last_aspect in self.new_aspects and len(self.new_aspects) > 1:
            self.new_aspects.remove(self.last_aspect)
        self.discussed = list(dict.fromkeys(discussed))
        said = [] if self.last_aspect is None else _said(self.last_aspect, self.last)
        #: The last message made one of our aspects' points: refer to it by name.
        self.strong = bool(said)
        self.quotes = [_decap(q) for q in said if len(words(q)) <= 14] or self._quotable(self.last)
        self.answer_words = self._answer_words()
        persona = self.persona or ""
        if _SKEPTIC.search(persona):
            self.stance_weights = (0.2, 0.5, 0.3)
        elif _SUPPORTER.search(persona):
            self.stance_weights = (0.65, 0.1, 0.25)
        else:
            self.stance_weights = (0.45, 0.25, 0.3)

    # --- the turn -------------------------------------------------------------------------------

    def compose(self) -> str:
        other_closed = not self.opening and is_closing(self.last)
        closing = (
            other_closed
            or (self.ending_requested and not self.opening)
            or self.rng.random() < self.pacing.closing_probability(self.n_messages)
        )
        if other_closed:
            return self._frame(phrases.CLOSING_REPLIES)
        if closing:
            return self._join(self._closing_turn())
        out = [self._frame(phrases.OPENERS, topic=self._topic_name())] if self.opening else []
        stance = "agree"
        if not self.opening:
            stance, reaction = self._reaction()
            answer = self._answer() if self.rng.random() < 0.75 else ""
            out.append(answer or reaction)
        aspect = self.new_aspects[0]
        out.append(self._claim(aspect, stance))
        low, high = self.voice.body_sentences
        extra = self.rng.randint(max(0, low - 1), max(0, high - 1))
        if self.persona and self.rng.random() < 0.3:
            out.append(self._frame(phrases.PERSONA))
            extra = max(0, extra - 1)
        out.extend(self._more(aspect, extra))
        if self.rng.random() < self.voice.question_p:
            question = self._question(aspect)
            # A long turn sometimes puts its question in a paragraph of its own.
            out.append(f"\n\n{question}" if len(out) >= 4 and self.rng.random() < 0.3 else question)
        return self._join(out)

    def _closing_turn(self) -> list[str]:
        out = []
        if not self.opening:
            out.append(self._reaction()[1] if self.rng.random() < 0.6 else "")
        out.append(self._frame(phrases.CLOSINGS, topic=self._topic_name()))
        if self.rng.random() < 0.5:
            out.append(self._frame(phrases.THANKS))
        return out

    @staticmethod
    def _join(parts: list[str]) -> str:
        return " ".join(dict.fromkeys(p for p in parts if p)).replace(" \n\n", "\n\n")

    # --- moves ----------------------------------------------------------------------------------

    def _reaction(self) -> tuple[str, str]:
        agree, disagree, partial = self.stance_weights
        stance, bank = self.rng.choices(
            (
                ("agree", phrases.AGREE),
                ("disagree", phrases.DISAGREE),
                ("partial", phrases.PARTIAL),
            ),
            weights=(agree, disagree, partial),
        )[0]
        sentence = self._frame(bank)
        if self.rng.random() < 0.3 and self.voice.interjections:
            interjection = self.rng.choice(self.voice.interjections)
            # An enthusiastic interjection before a disagreement reads oddly; keep it neutral.
            if stance == "agree" or not interjection.endswith("!"):
                sentence = f"{interjection} {sentence}"
        return stance, sentence

    def _answer(self) -> str:
        """An answer to the question the last message ended with (empty if it asked none, or
        none we have an answer to)."""
        said = sentences(self.last)
        if not said or not said[-1].text.endswith("?"):
            return ""
        asked = next(iter(aspects_of(said[-1].text)), self.last_aspect)
        if asked is None:
            return ""
        claim = self._pick(asked.claims)
        return self._remember(self.rng.choice(phrases.ANSWERS).format(claim=claim))

    def _claim(self, aspect: Aspect, stance: str) -> str:
        """The turn's new point: a claim of ``aspect``, introduced to fit the stance."""
        claim = self._pick(aspect.claims)
        roll = self.rng.random()
        if not self.opening and roll < 0.5:
            lead = self.rng.choice(phrases.BRIDGES[stance])
        elif roll < 0.75:
            lead = self.rng.choice(phrases.TOPIC_LEADS).format(topic=self._topic_ref())
        elif roll < 0.88 and self.voice.hedges:
            lead = self.rng.choice(self.voice.hedges)
        else:
            lead = self.rng.choice(phrases.LEADS)
        return self._remember(_capitalise(f"{lead} {claim}."))

    def _more(self, aspect: Aspect, count: int) -> list[str]:
        """Support for the point: its reasons and examples, or a second, related claim."""
        out: list[str] = []
        connected: list[str] = []
        for i in range(count):
            if i == 1 and len(self.new_aspects) > 1 and self.rng.random() < 0.35:
                second = self._pick(self.new_aspects[1].claims)
                lead = self.rng.choice(phrases.ALSO)
                out.append(self._remember(_capitalise(f"{lead} {second}.")))
                continue
            support = self._pick(aspect.supports)
            if not support:
                break
            connectors = [c for c in self.voice.connectors if c not in connected]
            if i > 0 and self.rng.random() < 0.3 and connectors:
                connected.append(self.rng.choice(connectors))
                support = f"{connected[-1]} {_decap(support)}"
            out.append(self._remember(support))
        return out

    def _question(self, aspect: Aspect) -> str:
        if self.rng.random() < 0.7:
            question = self._pick(aspect.questions)
            if question:
                return self._remember(question)
        return self._remember(self._pick(phrases.QUESTIONS) or phrases.QUESTIONS[0])

    # --- filling --------------------------------------------------------------------------------

    def _frame(self, frames: Sequence[str], *, topic: str | None = None) -> str:
        """One frame of ``frames``, filled, preferring one not said in the conversation yet."""
        candidate = ""
        for _ in range(8):
            frame = self.rng.choice(frames)
            if "{quote}" in frame and not self.quotes:
                continue
            refs = self._refs()
            candidate = _capitalise(
                frame.format(
                    topic=topic or self._topic_ref(),
                    ref=refs[0],
                    ref2=refs[1],
                    quote=self.rng.choice(self.quotes) if self.quotes else "",
                    persona=self.persona or "someone who works on this",
                )
            )
            if candidate not in self.seen and candidate not in self.used:
                break
        return self._remember(candidate)

    def _pick(self, options: Sequence[str]) -> str:
        """An option not said in the conversation yet (any of them if all were)."""
        fresh = [
            o
            for o in options
            if o not in self.seen
            and o not in self.used
            and o.rstrip(".?").lower() not in self.history
        ]
        if not options:
            return ""
        return self._remember(self.rng.choice(fresh or list(options)))

    def _remember(self, sentence: str) -> str:
        self.used.add(sentence)
        return sentence

    def _refs(self) -> tuple[str, str]:
        """Two ways to refer back: first to the last message, then to an earlier point."""
        mine: list[str] = []
        by_name = 0.3 if self.strong else 0.15
        if self.last_aspect is not None and (not self.answer_words or self.rng.random() < by_name):
            mine.append(self.rng.choice(self.last_aspect.refs))
        if self.answer_words:
            pick = self.rng.choice(self.answer_words[:_ANSWER_POOL])
            mine.append(pick)
        others = [self.rng.choice(a.refs) for a in self.discussed if a is not self.last_aspect]
        first = mine[0] if mine else (others[0] if others else self._topic_ref())
        second = next((o for o in others if o != first), None) or self.rng.choice(
            self.new_aspects[0].refs
        )
        return first, second

    def _answer_words(self) -> list[str]:
        """What the last message is about, as a reply would name it: its key phrases and nouns,
        minus what every message says (the topic, stock words of the argument material)."""
        if self.opening or not self.last:
            return []
        # Sentences addressed to us ("you're right about …", questions) echo our own words.
        said = [s.text for s in sentences(self.last)]
        about = [t for t in said if not {"you", "your", "you're"} & _lower(t)] or said
        text = _ROLE_ASIDE.sub(" ", " ".join(about))
        topic = set(content_words(self.topic))
        found = [
            p
            for p in key_phrases(text, 6)
            if not set(p.lower().split()) <= topic and not set(p.lower().split()) & _STOCK
        ]
        inside = {w for p in found for w in p.lower().split()}
        for word in keywords(text, 10):
            low = word.lower()
            if low in inside or low in topic or low in _PLAIN or low in _STOCK:
                continue
            if _NOUNISH.search(low) and not _NOT_NOUNISH.search(low):
                found.append(word)
        return found

    def _topic_name(self) -> str:
        """The topic in full, as an opener or a summary names it."""
        if _QUESTION_TOPIC.match(self.topic):
            return f'the question "{_capitalise(self.topic)}?"'
        return self.topic

    def _topic_ref(self) -> str:
        """A shorter way to mention the topic inside a sentence."""
        if _QUESTION_TOPIC.match(self.topic):
            nouns = [w for w in keywords(self.topic, 4) if _NOUNISH.search(w.lower())]
            if not nouns:
                return "this question"
            return self.rng.choice(
                (f"the debate about {nouns[-1]}", f"the issue of {nouns[-1]}", "this question")
            )
        if len(self.topic.split()) <= 6 or self.rng.random() < 0.35:
            return self.topic
        short = key_phrases(self.topic, 1)
        return f"the question of {short[0]}" if short else "this question"

    def _quotable(self, text: str) -> list[str]:
        found: list[str] = []
        for sentence in sentences(text):
            if sentence.text.endswith("?"):
                continue  # quoting a question back reads oddly
            found += [c.text for c in clauses(sentence, 4, 12)]
            if not found and 4 <= len(sentence.words) <= 14:
                found.append(sentence.text.rstrip(".!?"))
        return [q[:1].lower() + q[1:] if q[1:2].islower() else q for q in found if '"' not in q][:8]


#: Words of the argument material and the frames: a reply names what the other side is
#: *about*, not the stock words both sides share.
_STOCK = frozenset(
    w.lower()
    for text in [
        *(s for a in ASPECTS for s in (*a.claims, *a.supports, *a.questions, *a.refs)),
        *(f for bank in (phrases.AGREE, phrases.DISAGREE, phrases.PARTIAL) for f in bank),
        *(f for bank in phrases.BRIDGES.values() for f in bank),
        *phrases.OPENERS,
        *phrases.LEADS,
        *phrases.TOPIC_LEADS,
        *phrases.ALSO,
        *phrases.PERSONA,
        *phrases.QUESTIONS,
    ]
    for w in words(re.sub(r"\{\w+\}", " ", text))
) - frozenset(c for a in ASPECTS for c in a.cues)


def _latest(message: str) -> str:
    """What the other side said last: a message that merges several (the opener, then
    ``Name: …`` turns) is answered from its last speaker's paragraph on."""
    paragraphs = message.split("\n\n")
    for i in reversed(range(len(paragraphs))):
        if speakers(paragraphs[i]):
            return "\n\n".join(paragraphs[i:])
    return message


def _lower(text: str) -> set[str]:
    return {w.lower() for w in words(text)}


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
