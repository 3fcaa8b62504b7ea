"""What a string says, chosen by the role of its property (see :mod:`llmsim.roles`).

``summary`` is an extractive summary of the input, ``speaker`` a name from its ``Name:`` lines,
``sentiment``/``label`` its lexicon polarity (mapped onto an enum's options), explanations and
implications are sentences *about* the text built from its keywords, formatted strings (dates,
e-mails, URIs) are fixed examples.  Everything else is a salient keyword.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

from llmsim.roles import Role, name_words
from llmsim.slot import Slot
from llmsim.source import SourceText
from llmsim.textstats import keywords, words

_DEFAULT_STRING_CHARS = 600

_EXPLANATIONS = (
    "The passage links {kw} to {kw2}.",
    "This rests on a claim about {kw}, which the text supports with an example.",
    "The author emphasises {kw} and treats {kw2} as secondary.",
    "The argument assumes that {kw} drives {kw2}.",
    "Its tone is {label}, mostly because of how it describes {kw}.",
    "The reasoning would be stronger with evidence on {kw2}.",
    "The text presents {kw} as settled, although it offers little support for it.",
)
_INFERENCES = (
    "Changes in {kw} are likely to affect {kw2}.",
    "If the argument about {kw} holds, {kw2} will need to adapt.",
    "Decision makers may have to weigh {kw} against {kw2}.",
    "Pressure on {kw} could grow over the next few years.",
    "Those most exposed to {kw} would feel the effects first.",
    "A shift in {kw} may reopen the debate about {kw2}.",
)
_POLARITY_WORDS = {
    "positive": (
        "positive",
        "pos",
        "favorable",
        "favourable",
        "supportive",
        "optimistic",
        "good",
        "pro",
        "agree",
    ),
    "negative": (
        "negative",
        "neg",
        "unfavorable",
        "unfavourable",
        "critical",
        "pessimistic",
        "bad",
        "con",
        "against",
    ),
    "neutral": ("neutral", "balanced", "objective", "none", "neither", "unclear", "mixed"),
    "mixed": ("mixed", "ambivalent", "neutral", "balanced"),
}
_POLARITY_VALUES = frozenset({"positive", "negative", "neutral", "mixed", "pos", "neg"})
_FORMATS = {
    "date": "2026-01-15",
    "date-time": "2026-01-15T12:00:00Z",
    "time": "12:00:00",
    "email": "analyst@example.com",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "duration": "PT1H",
}


class RoleText:
    """The text for a slot, drawn from ``source``; ``rng`` is the generator's own, so the
    same seed gives the same answer."""

    def __init__(self, source: SourceText, rng: random.Random) -> None:
        self.source = source
        self.rng = rng
        self.makers = self._makers()

    def for_slot(self, slot: Slot) -> str:
        """The text the slot's role calls for (a keyword when the role says nothing)."""
        return self.makers.get(slot.role, self.keyword)(slot)

    def polarity_choice(self, options: list[str], role: Role) -> str | None:
        lowered = {o: o.lower() for o in options}
        polar = any(v in _POLARITY_VALUES for v in lowered.values())
        if not options or (role is not Role.SENTIMENT and not polar):
            return None
        for word in _POLARITY_WORDS[self.source.label]:
            for option in options:
                if lowered[option] == word or lowered[option].startswith(word):
                    return option
        return None

    def formatted(self, fmt: Any, slot: Slot) -> str | None:
        if fmt in _FORMATS:
            return _FORMATS[fmt]
        if fmt == "uuid":
            return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        if fmt in {"uri", "url", "uri-reference", "iri"}:
            return f"https://example.com/{self.keyword(slot).replace(' ', '-')}"
        return None

    def _makers(self) -> dict[Role, Callable[[Slot], str]]:
        return {
            Role.SUMMARY: self._summary,
            Role.SPEAKER: lambda slot: (
                self.source.speaker_of(slot.focus, slot.index) or "Speaker A"
            ),
            Role.SENTIMENT: lambda slot: self.source.label,
            Role.TITLE: self._title,
            Role.KEYWORD: self.keyword,
            Role.LANGUAGE: lambda slot: "en",
            Role.IDENT: self._ident,
            Role.EXPLANATION: self._remark,
            Role.INFERENCE: self._remark,
            Role.QUOTE: self._remark,
            Role.POINT: self._remark,
        }

    def _summary(self, slot: Slot) -> str:
        for n in (3, 2):
            summary = self.source.summary(n)
            if len(summary) <= _DEFAULT_STRING_CHARS:
                return summary
        return self.source.summary(1)

    def _title(self, slot: Slot) -> str:
        top = self.source.salient[:2] or ["Untitled"]
        return " and ".join(_title(t) for t in top)

    def _ident(self, slot: Slot) -> str:
        skip = {"id", "uid", "identifier", "key"}
        stem = next((w for w in name_words(slot.name) if w not in skip), "item")
        return f"{stem}-{slot.index + 1}"

    def _remark(self, slot: Slot) -> str:
        """A sentence *about* the text (explanations, implications), from its keywords."""
        inference = slot.role is Role.INFERENCE
        templates = _INFERENCES if inference else _EXPLANATIONS
        local = keywords(slot.focus.text, 4) if slot.focus is not None and not inference else []
        pool = list(dict.fromkeys(local + self.source.salient[:5])) or ["the topic", "its context"]
        kw, kw2 = self.rng.sample(pool, 2) if len(pool) >= 2 else (pool[0], "its context")
        template = templates[(slot.index + self.rng.randrange(len(templates))) % len(templates)]
        return template.format(kw=kw, kw2=kw2, label=self.source.label)

    def keyword(self, slot: Slot) -> str:
        pool = self.source.salient
        return pool[slot.index % len(pool)] if pool else "general"


def _title(text: str) -> str:
    return " ".join(w[:1].upper() + w[1:] for w in words(text)) or text
