"""Planted defects: dialogue turns spoiled on purpose, at configured rates, as ground truth for a
quality scorer.

=================  ==========================================================================
refusal            declines as an AI would ("I'm sorry, but as an AI I can't …")
leakage            echoes a line of its system prompt (persona, instructions) or scaffolding
                   ("[system]", "Turn 4 —") before its answer
repetition         repeats an earlier turn (its own, else the other side's) verbatim or nearly;
                   with nothing said yet, its own sentences a second time (a loop)
truncation         the answer cut off mid-sentence (the API still reports a normal finish)
language_switch    answers in Spanish, French or German
role_confusion     answers as the other speaker, or writes both sides under speaker labels
=================  ==========================================================================

Which defect a call gets (if any) is a pure function of the request: a uniform number derived
from the same material as the text's seed (simulator seed, model, the whole prompt) picks it
against the cumulative rates, so a retried identical request plants the same defect, and a
request that gets none reads exactly as it would with every rate at 0.  Only dialogue is
spoiled, never structured (JSON) answers.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmsim.dialogue import Turn, find_topic
from llmsim.points import ASPECTS
from llmsim.textstats import sentences, speakers, words

DefectKind = Literal[
    "refusal", "leakage", "repetition", "truncation", "language_switch", "role_confusion"
]
DEFECT_KINDS: tuple[DefectKind, ...] = get_args(DefectKind)


class DefectRates(BaseModel):
    """The fraction of dialogue calls that get each defect; together at most 1 (default 0)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    refusal: float = Field(default=0.0, ge=0, le=1)
    leakage: float = Field(default=0.0, ge=0, le=1)
    repetition: float = Field(default=0.0, ge=0, le=1)
    truncation: float = Field(default=0.0, ge=0, le=1)
    language_switch: float = Field(default=0.0, ge=0, le=1)
    role_confusion: float = Field(default=0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _at_most_one(self) -> DefectRates:
        total = sum(getattr(self, kind) for kind in DEFECT_KINDS)
        if total > 1 + 1e-9:
            raise ValueError(f"defect rates add up to {total:g}; they may add up to 1 at most")
        return self

    def choose(self, material: str) -> DefectKind | None:
        """The defect for the request ``material`` describes, or None."""
        rates = [(kind, getattr(self, kind)) for kind in DEFECT_KINDS]
        if not any(rate for _, rate in rates):
            return None
        digest = hashlib.sha256(b"defect\x00" + material.encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        for kind, rate in rates:
            if u < rate:
                return kind
            u -= rate
        return None


def plant(
    kind: DefectKind, text: str, *, system: str, turns: Sequence[Turn], rng: random.Random
) -> str:
    """``text`` (the clean reply) with the defect ``kind`` planted."""
    return _PLANTERS[kind](text, system, turns, rng)


# --- refusal ------------------------------------------------------------------------------------

_REFUSALS = (
    "I'm sorry, but as an AI language model I can't take a side on {topic}.",
    "As an AI, I cannot share personal opinions about {topic}. "
    "I'd suggest consulting reliable sources instead.",
    "I apologize, but I'm not able to continue this discussion. "
    "Is there something else I can help you with?",
    "I'm unable to engage in debates on sensitive topics such as {topic}. "
    "Please let me know if there's anything else I can do for you.",
    "I'm sorry, I can't help with that request.",
)


def _refusal(text: str, system: str, turns: Sequence[Turn], rng: random.Random) -> str:
    first = next((t.text for t in turns if t.role == "user"), "")
    topic = find_topic(system, first)
    if topic[:1].isupper():  # a question ("Should cities ban cars"): quote it
        topic = f'"{topic.rstrip("?")}?"'
    said = [t.text for t in turns]
    # A refusal the conversation has not heard yet: a second planted refusal is a refusal,
    # not also a repetition of the first.
    fresh = [r for r in _REFUSALS if not any(r.format(topic=topic) in t for t in said)]
    return rng.choice(fresh or list(_REFUSALS)).format(topic=topic)


# --- leakage ------------------------------------------------------------------------------------

_ECHOES = (
    'As my instructions say: "{line}"',
    "My system prompt reads: {line}",
    "(Persona: {line})",
    "[system]: {line}",
    'I was told: "{line}" So here goes.',
)
_SCAFFOLDING = (
    "Turn {n} - assistant response:",
    "<assistant_turn index={n}>",
    "### Response {n}",
)


def _leakage(text: str, system: str, turns: Sequence[Turn], rng: random.Random) -> str:
    lines = [line.strip() for line in system.splitlines() if len(words(line)) >= 3]
    if lines and rng.random() < 0.8:
        return f"{rng.choice(_ECHOES).format(line=rng.choice(lines))}\n\n{text}"
    return f"{rng.choice(_SCAFFOLDING).format(n=len(turns))}\n{text}"


# --- repetition ---------------------------------------------------------------------------------

_SPEAKER_PREFIX = re.compile(r"^[A-Z][\w.'-]*(?: [A-Z][\w.'-]*){0,2}: ")


def _repetition(text: str, system: str, turns: Sequence[Turn], rng: random.Random) -> str:
    own = [t.text for t in turns if t.role == "assistant" and t.text.strip()]
    # The other side's turns are the paragraphs under a speaker label; the harness's own
    # lines (the opener "The topic is: …") are not turns of the conversation.
    theirs = [
        _SPEAKER_PREFIX.sub("", p.strip())
        for t in turns
        if t.role == "user"
        for p in t.text.split("\n\n")
        if _SPEAKER_PREFIX.match(p.strip())
    ]
    if own:
        earlier = rng.choice(own)
    elif theirs:
        earlier = theirs[-1]
    else:  # nothing said yet: the answer loops on itself
        return _loop(text, rng)
    if rng.random() < 0.5:
        return earlier
    return f"As I said, {earlier[:1].lower()}{earlier[1:]}"  # a near copy


def _loop(text: str, rng: random.Random) -> str:
    """``text`` going round again: its longer sentences said a second time."""
    long = [s.text for s in sentences(text) if len(s.words) >= 6]
    if not long:
        return f"{text} {text}"
    again = long[: rng.randint(1, min(2, len(long)))]
    return f"{text} {' '.join(again)}"


# --- truncation ---------------------------------------------------------------------------------


def _truncation(text: str, system: str, turns: Sequence[Turn], rng: random.Random) -> str:
    parts = sentences(text)
    longest = [s for s in parts if len(s.words) >= 6]
    target = longest[-1] if longest else (parts[-1] if parts else None)
    if target is None:
        return text.rstrip(".!? ")
    cuts = [m.start() for m in re.finditer(r" ", target.text)]
    keep = cuts[len(cuts) // 3 : max(len(cuts) // 3 + 1, 2 * len(cuts) // 3)] or cuts or [0]
    cut = target.start + rng.choice(keep)
    return text[:cut].rstrip(" ,;:-\u2014")


# --- language switch ----------------------------------------------------------------------------

_LANGUAGES: dict[str, dict[str, tuple[str, ...]]] = {
    "es": {
        "react": (
            "Estoy de acuerdo en parte.",
            "No lo veo exactamente así.",
            "Tienes razón en eso.",
            "Entiendo lo que dices, pero tengo mis dudas.",
        ),
        "lead": ("Creo que", "Me parece que", "Lo que me preocupa es que", "La verdad es que"),
        "claim": (
            "el coste recae casi siempre en quienes tienen menos margen",
            "los datos que tenemos vienen de lugares muy poco representativos",
            "la transición es la parte que la gente vive de verdad",
            "las consecuencias indirectas pueden pesar más que las previstas",
            "una versión más modesta daría casi los mismos beneficios",
        ),
        "ask": ("¿Qué opinas tú?", "¿Quién debería pagar por ello?", "¿Cómo lo harías tú?"),
    },
    "fr": {
        "react": (
            "Je suis en partie d'accord.",
            "Je ne vois pas les choses tout à fait ainsi.",
            "Tu as raison sur ce point.",
            "Je comprends ce que tu dis, mais j'ai des doutes.",
        ),
        "lead": ("Je pense que", "Il me semble que", "Ce qui m'inquiète, c'est que", "En fait,"),
        "claim": (
            "le coût retombe presque toujours sur ceux qui ont le moins de marge",
            "les données dont nous disposons viennent d'endroits peu représentatifs",
            "la transition est la partie que les gens vivent vraiment",
            "les effets indirects peuvent compter davantage que les effets voulus",
            "une version plus modeste apporterait presque les mêmes avantages",
        ),
        "ask": ("Qu'en penses-tu ?", "Qui devrait payer pour cela ?", "Comment ferais-tu ?"),
    },
    "de": {
        "react": (
            "Da stimme ich teilweise zu.",
            "Das sehe ich nicht ganz so.",
            "Da hast du recht.",
            "Ich verstehe, was du meinst, aber ich habe Zweifel.",
        ),
        "lead": ("Ich glaube, dass", "Mir scheint, dass", "Was mich beunruhigt, ist, dass"),
        "claim": (
            "die Kosten fast immer bei denen landen, die am wenigsten Spielraum haben",
            "die Daten, die wir haben, aus wenig repräsentativen Orten stammen",
            "der Übergang der Teil ist, den die Menschen wirklich erleben",
            "die Nebenwirkungen mehr zählen können als die beabsichtigten Folgen",
            "eine bescheidenere Version fast denselben Nutzen brächte",
        ),
        "ask": ("Was meinst du?", "Wer sollte dafür bezahlen?", "Wie würdest du es machen?"),
    },
}


def _language_switch(text: str, system: str, turns: Sequence[Turn], rng: random.Random) -> str:
    bank = _LANGUAGES[rng.choice(sorted(_LANGUAGES))]
    said = " ".join(t.text for t in turns)
    # Lines the conversation has not heard yet: a second switch is not also a repetition.
    fresh = [c for c in bank["claim"] if c not in said]
    claims = rng.sample(fresh if len(fresh) >= 2 else list(bank["claim"]), 2)
    leads = rng.sample(bank["lead"], 2)
    out = [rng.choice([r for r in bank["react"] if r not in said] or list(bank["react"]))]
    out += [f"{lead} {claim}." for lead, claim in zip(leads, claims, strict=True)]
    if rng.random() < 0.6:
        out.append(rng.choice(bank["ask"]))
    return " ".join(out)


# --- role confusion -----------------------------------------------------------------------------

_YOU_ARE = re.compile(r"\bYou are ([A-Z][\w'-]*)\b(?=[,.]| in\b| and\b)")
_WITH = re.compile(r"\bdiscussion with ([A-Z][\w'-]*)")
_OTHER_LINES = (
    "Well, I'm not sure about that.",
    "Hmm, I hadn't thought of it that way.",
    "That's fair, but I still have doubts.",
    "Maybe, but that sounds too optimistic to me.",
)


def _names(system: str, turns: Sequence[Turn]) -> tuple[str, str]:
    me = _YOU_ARE.search(system)
    others = [n for t in turns if t.role == "user" for n in speakers(t.text)]
    other = others[-1] if others else None
    if other is None:
        found = _WITH.search(system)
        other = found.group(1) if found else None
    return (me.group(1) if me else "Assistant"), (other or "User")


def _role_confusion(text: str, system: str, turns: Sequence[Turn], rng: random.Random) -> str:
    me, other = _names(system, turns)
    if rng.random() < 0.4:  # speaks as the other side
        return f"{other}: {text}"
    parts = [s.text for s in sentences(text)] or [text]
    half = max(1, len(parts) // 2)
    aspect = rng.choice(ASPECTS)
    said = " ".join([text, *(t.text for t in turns)])
    # A line the conversation has not heard: the script is role confusion, not repetition.
    support = rng.choice([s for s in aspect.supports if s[1:] not in said] or list(aspect.supports))
    lines = [line for line in _OTHER_LINES if line not in said] or list(_OTHER_LINES)
    other_line = f"{rng.choice(lines)} {support}"
    return "\n\n".join(
        [
            f"{me}: {' '.join(parts[:half])}",
            f"{other}: {other_line}",
            f"{me}: {' '.join(parts[half:]) or rng.choice(aspect.questions)}",
        ]
    )


_PLANTERS = {
    "refusal": _refusal,
    "leakage": _leakage,
    "repetition": _repetition,
    "truncation": _truncation,
    "language_switch": _language_switch,
    "role_confusion": _role_confusion,
}
