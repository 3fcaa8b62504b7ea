"""Phenomenon-level signals of quality.v2 that go beyond single phrases: refusals with their
grounds, scripted or self-answered exchanges, identity claims, recited setup text, praise
ratios, broken function-word structure (word salad) and restated turns.

Each helper reads one turn (or the conversation) as :mod:`chimera.quality.text` gives it and
returns how many of the turn's words are at fault, or a yes/no; :mod:`chimera.quality.defects`
turns those into flags.  Everything is linear in the text.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from typing import Final

from chimera.quality import cues
from chimera.quality.language import PROFILES, SUPPORTED
from chimera.quality.text import Conversation, Sentence, Turn
from chimera.quality.tokens import words

_QUOTED_RE: Final = re.compile(r'"[^"\n]{1,500}"')

# --- refusal -------------------------------------------------------------------------------


def refusal_words(turn: Turn, languages: Iterable[str]) -> int:
    """Words of the sentences refusing (a refusal phrase, or an inability with its grounds
    in the same sentence) and of the sentences around them giving grounds; quoted text
    (someone else's words) aside."""
    langs = [lang for lang in dict.fromkeys(languages) if lang in SUPPORTED]
    if not langs:
        return 0
    texts = [_QUOTED_RE.sub('""', s.text) for s in turn.sentences]
    hits: set[int] = set()
    grounds: list[bool] = [False] * len(texts)
    for lang in langs:
        strong, weak, why = cues.REFUSAL[lang], cues.REFUSAL_WEAK[lang], cues.REFUSAL_GROUNDS[lang]
        if not (strong.search(turn.text) or weak.search(turn.text)):
            continue  # most turns refuse nothing: one search of the whole turn
        for k, text in enumerate(texts):
            has_grounds = bool(why.search(text))
            grounds[k] = grounds[k] or has_grounds
            if strong.search(text) or (has_grounds and weak.search(text)):
                hits.add(k)
    for k in list(hits):
        hits.update(j for j in (k - 1, k + 1) if 0 <= j < len(texts) and grounds[j])
    return sum(len(turn.sentences[k].words) for k in hits)


# --- role confusion ------------------------------------------------------------------------

#: Names a model may claim for itself.
_MODEL_NAMES_TEXT: Final = "claude gemini gpt chatgpt llama mistral bard copilot grok qwen deepseek"
MODEL_NAMES: Final = frozenset(_MODEL_NAMES_TEXT.split())
_CLAIM_RE: Final = re.compile(
    r"(?<!\w)(?:i'?m|i am|this is|speaking as|as|it'?s|je suis|soy|ich bin|hier ist)"
    r" ([^\W\d_]+)(?:[,.!:]| here| speaking| again| and i)"
)
#: A turn posing the other's next question and answering it itself.
_SELF_ASK_RE: Final = re.compile(
    r"(?<!\w)(?:you (?:might|may|could|would|will|probably|'ll|'d)(?: well| now| then| reasonably)?"
    r" (?:ask|wonder|be wondering|be asking|want to know)"
    r"|you'?(?:re| are) (?:probably |likely |perhaps |now )?"
    r"(?:wondering|asking yourself|going to ask|about to ask)"
    r"|your next question (?:is|will be|might be|would be|is probably)"
    r"|i (?:can )?(?:already )?(?:hear|anticipate|imagine|expect) (?:you|your)"
    r" (?:asking|ask|next question|question)"
    r"|i know what you'?re (?:going to|about to) ask"
    r"|before you ask"
    r"|(?:usted )?(?:se |te )?(?:preguntará|preguntarás|podría preguntar|podrías preguntar)"
    r"|vous (?:allez|pourriez) (?:me )?demander|vous vous demandez (?:peut-être|sans doute)"
    r"|sie (?:werden|könnten|fragen sich) (?:jetzt |vielleicht |sicher )?(?:fragen|vielleicht)"
    r"|du (?:wirst|könntest|fragst dich) (?:jetzt |vielleicht |sicher )?(?:fragen|vielleicht))"
)
#: Q&A or me/you labels: a written exchange whoever the voices are.
SCRIPT_VOICES: Final = frozenset({"q", "a", "me", "you", "question", "answer", "interviewer"})


def claims_other(turn: Turn, names: set[str]) -> bool:
    """Whether the turn names itself as another participant or as a model it is not."""
    own = turn.speaker.casefold()
    others = (names | MODEL_NAMES) - {own}
    for match in _CLAIM_RE.finditer(turn.text):
        name = match.group(1)
        if name not in others:
            continue
        lead = match.group(0).split(" ", 1)[0]
        # "as Ben, I ..." claims; "as Ben said" does not.
        if lead == "as" and not turn.text.startswith(", i", match.end() - 1):
            continue
        return True
    return False


def self_answered_words(turn: Turn, lang: str) -> int:
    """Words of a question the turn poses on the other's behalf and then answers: a cue
    ("You might ask ...") not in the last sentence, or a question followed by praise of it
    ("... what about costs? Great question.")."""
    sents = turn.sentences
    syc = cues.SYCOPHANCY.get(lang)
    if len(sents) < 2 or not (_SELF_ASK_RE.search(turn.text) or (syc and syc.search(turn.text))):
        return 0
    hit = 0
    for k, s in enumerate(sents[:-1]):
        nxt = sents[k + 1]
        if _SELF_ASK_RE.search(s.text) or (
            s.text.endswith("?")
            and syc is not None
            and _QUESTION_PRAISE_RE.search(nxt.text[:40])
            and syc.search(nxt.text)
        ):
            hit += len(s.words) + len(nxt.words)
    return hit


_QUESTION_PRAISE_RE: Final = re.compile(r"(?:question|pregunta|frage)(?!\w)")


def recites_setup(s: Sentence) -> bool:
    return bool(cues.SETUP.search(s.text))


# --- sycophancy ----------------------------------------------------------------------------


_ELIDED: Final = re.compile(r"^[a-z]'\w{1,4}$")  # l'avez, j'ai, c'est: pronoun + auxiliary


def praise_content(s: Sentence, stop: frozenset[str]) -> tuple[int, int]:
    """Praise or agreement words in the sentence, and its other content words."""
    praise = content = 0
    for w in s.words:
        if w in cues.PRAISE_WORDS:
            praise += 1
        elif w not in stop and w not in cues.COURTESY_WORDS and len(w) > 2 and not _ELIDED.match(w):
            content += 1
    return praise, content


# --- word salad ----------------------------------------------------------------------------

_CLAUSE_RE: Final = re.compile(r"[,;:()\"\u2014\u2013]| - ")
#: Articles (not those that double as numerals: "un ou deux", "ein oder zwei"),
#: conjunctions and prepositions per language: two in a row of the kinds no grammatical
#: sentence puts together, or an article ending a clause, is a broken structure.
_DET: Final = {
    "en": frozenset({"the", "an"}),
    "es": frozenset({"el", "los", "las", "unos", "unas"}),
    "fr": frozenset({"des", "du"}),
    "de": frozenset({"einem", "eines"}),
}
_CONJ: Final = {
    "en": frozenset({"and", "or", "but", "nor"}),
    "es": frozenset({"y", "o", "pero", "ni"}),
    "fr": frozenset({"et", "ou", "mais", "ni"}),
    "de": frozenset({"und", "oder", "aber"}),
}
_PREP: Final = {
    "en": frozenset({"of", "in", "to", "for", "on", "with", "at", "from", "by", "into"}),
    "es": frozenset({"de", "en", "con", "por", "para", "sin", "sobre"}),
    "fr": frozenset({"de", "en", "dans", "pour", "avec", "sur", "par", "sans"}),
    "de": frozenset({"mit", "von", "für", "auf", "aus", "bei", "nach", "zu"}),
}
_ALLOWED: Final = frozenset({("and", "or"), ("or", "and"), ("and", "but"), ("y", "o")})


def broken_structure(turn: Turn, lang: str) -> int:
    """How many places in the turn put function words together as no sentence does (an
    article before a conjunction, a preposition or another article; two conjunctions; a
    conjunction before a preposition; a clause ending on an article or conjunction)."""
    det, conj, prep = _DET.get(lang), _CONJ.get(lang), _PREP.get(lang)
    if det is None or conj is None or prep is None:
        return 0
    bad = 0
    for s in turn.sentences:
        for clause in _CLAUSE_RE.split(s.text):
            ws = words(clause)
            for a, b in itertools.pairwise(ws):
                if (a, b) in _ALLOWED:
                    continue
                if (a in det and (b in det or b in conj or b in prep)) or (a in conj and b in conj):
                    bad += 1
            if ws and (ws[-1] in det or ws[-1] in conj):
                bad += 1
    return bad


_LIST_ITEM_RE: Final = re.compile(r"^\s*(?:[-*+|>\u2022]|\d+[.)])\s")
_NOT_PROSE_RE: Final = re.compile(r"https?://\S+|www\.\S+|`[^`\n]*`|\S+@\S+")


def sparse_prose(turn: Turn, min_words: int) -> float | None:
    """The best share of function words any language profile finds among the turn's words
    (numbers aside): prose in any of them is about half function words.  None when it is
    too short or mostly a list, where telegraphic style is normal."""
    if "```" in turn.raw:
        return None  # code
    ws = [w for w in words(_NOT_PROSE_RE.sub(" ", turn.text)) if not w[0].isdigit()]
    lines = [ln for ln in turn.raw.splitlines() if ln.strip()]
    if len(ws) < min_words or sum(1 for ln in lines if _LIST_ITEM_RE.match(ln)) * 2 >= len(lines):
        return None
    return max(sum(1 for w in ws if w in profile) for profile in PROFILES.values()) / len(ws)


# --- restatement ---------------------------------------------------------------------------


def restates(conv: Conversation, i: int, min_stems: int, share: float) -> bool:
    """Whether turn ``i`` (at least ``min_stems`` content words besides the topic's) says
    again what one earlier turn said: at least ``share`` of its content words are in it
    (the turn just before counts only when the same speaker wrote it)."""
    turn = conv.turns[i]
    st = turn.stems - cues.FILLER_WORDS - cues.PRAISE_WORDS - conv.topic_stems
    if len(st) < min_stems:
        return False
    for j in range(i - 1):
        if len(st & conv.turns[j].stems) >= share * len(st):
            return True
    prev = conv.turns[i - 1] if i else None
    return (
        prev is not None
        and prev.speaker == turn.speaker
        and len(st & prev.stems) >= share * len(st)
    )
