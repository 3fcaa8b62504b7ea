"""Per-turn defect flags of quality.v2.

Each detector returns, for one turn, the share of the turn it spoils (0: not flagged): the
words of the sentences at fault over the turn's words, or 1 for a turn spoiled whole.  Cue
detectors (refusal, leakage phrases, pleasantries, sycophancy) run only when the
conversation's language is supported; the structural ones (empty, truncation, echo,
repetition, scripts and harness markers, language switch, word salad, off topic) in any.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Final

from chimera.quality import cues, signals
from chimera.quality.language import STOPWORDS, SUPPORTED
from chimera.quality.text import Conversation, Sentence, Turn, stopwords_for
from chimera.quality.tokens import normalize, shingles, stem, stems, words

DEFECTS: Final = (
    "empty",
    "truncation",
    "refusal",
    "leakage",
    "role_confusion",
    "language_switch",
    "pleasantry_only",
    "sycophancy",
    "repetition",
    "echo",
    "word_salad",
    "off_topic",
)

#: A turn of at most this many words (and no pleasantry) is near-empty.
NEAR_EMPTY_WORDS: Final = 2
#: A sentence counts as copied when this share of its 3-grams was said before.
COPIED_SHARE: Final = 0.6
#: A sentence repeats an earlier one with at least this many of its 3-grams said before: a
#: stock opening of five words ("That's a fair point about ...") is no repetition.
REPEATED_MIN_SHINGLES: Final = 4
#: Flag echo when at least this share of a turn copies the turn before it.
ECHO_SHARE: Final = 0.4
#: A filler sentence (thanks, praise, agreement) has at most this many content words.
FILLER_CONTENT: Final = 1
#: Flattery opening a turn that goes on is flagged from this many words ("Exactly." is not).
PARTIAL_SYCOPHANCY_WORDS: Final = 3
#: A refusal spoils at least this share of its turn, however short it is.
REFUSAL_MIN_SHARE: Final = 0.3
#: Switched-language words needed, as a share of the turn, to flag a switch.
SWITCH_SHARE: Final = 0.25
#: Word salad (English): a turn of at least SALAD_MIN_WORDS with almost no pronouns,
#: auxiliaries or modals (at most SALAD_MAX_GLUE of its words: the sentences assert nothing
#: about anyone), whose function words are mostly articles and "of" (at least
#: SALAD_NOUNY), chaining "of" at SALAD_OF_RATE or more -- and recycling topic words (novel
#: content at most SALAD_NOVELTY) unless the chaining is heavy (SALAD_OF_HEAVY).
SALAD_MIN_WORDS: Final = 12
SALAD_MAX_GLUE: Final = 0.05
SALAD_NOUNY: Final = 0.45
SALAD_OF_RATE: Final = 0.05
SALAD_OF_HEAVY: Final = 0.12
SALAD_NOVELTY: Final = 0.7
_GLUE_TEXT: Final = """is are was were be been being has have had do does did can could will
    would should may might must it they i you we he she this that these those there not"""
_GLUE: Final = frozenset(_GLUE_TEXT.split())
_NOUNY: Final = frozenset({"the", "of", "a", "an"})
#: Word salad (any supported language): at least SALAD_BROKEN places where function words
#: meet as no sentence has them (see :func:`signals.broken_structure`), SALAD_BROKEN_RATE
#: per word or more.
SALAD_BROKEN: Final = 2
SALAD_BROKEN_RATE: Final = 0.04
#: ... or prose of SALAD_SPARSE_WORDS words or more (not a list) in which no language's
#: function words make up SALAD_SPARSE (prose is about half function words).
SALAD_SPARSE_WORDS: Final = 15
SALAD_SPARSE: Final = 0.12
#: Restated turns (see :func:`_mark_restated`).
RESTATED_MIN_STEMS: Final = 8
RESTATED_SHARE: Final = 0.8
#: Praise: a sentence with this many words of praise or agreement is flattering ...
PRAISE_WORDS: Final = 2
#: ... when its other content words are at most this share of it (FILLER_CONTENT at least).
FILLER_CONTENT_SHARE: Final = 0.2
#: A turn this much flattery, bringing at most FLATTERY_NOVELTY new content, is sycophancy.
FLATTERY_SHARE: Final = 0.3
FLATTERY_NOVELTY: Final = 0.3
#: Persona brief echoed: at least this share of its content words (and BRIEF_MIN_STEMS).
BRIEF_SHARE: Final = 0.6
BRIEF_MIN_STEMS: Final = 3
#: Off topic: a turn with this many content words sharing none with the topic and the
#: opening turn.
OFF_TOPIC_MIN_STEMS: Final = 6
OFF_TOPIC_CHAIN: Final = 2
OFF_TOPIC_RUN: Final = 2
OFF_TOPIC_KEY: Final = 5
#: Paraphrase loops (see :func:`_mark_loops`).
LOOP_RUN: Final = 3
LOOP_NOVELTY: Final = 0.5
LOOP_MAX_WORDS: Final = 25
NOVELTY_MIN_STEMS: Final = 4

_PRONOUN_TEXT: Final = "i me my mine myself you your yours yourself we us our ours"
_PRONOUNS: Final = {w: "<p>" for w in _PRONOUN_TEXT.split()}
_ROLE_LABELS: Final = frozenset({"user", "assistant", "human", "ai", "system", "model", "gpt"})
_QUOTED_RE = re.compile(r'"([^"\n]{1,500})"')
_CUT_OFF_RE = re.compile(r"[^\W_]$|[,;:(\-\u2013\u2014]$")
_SAID_MINE_RE = re.compile(r"(?<!\w)(?:as i (?:said|mentioned|argued|noted)|like i said)(?!\w)")
_SAID_YOURS_RE = re.compile(
    r"(?<!\w)(?:your (?:point|argument|claim|objection)s? about|you argued)"
)

Flags = dict[str, float]


def _share(part: int, whole: int) -> float:
    return min(1.0, part / whole) if whole else 0.0


def detect(
    conv: Conversation,
    personas: Mapping[str, str] | None = None,
) -> list[Flags]:
    """Flags for every turn of ``conv``: defect name -> share of the turn it spoils."""
    names = {t.speaker.casefold() for t in conv.turns} - _ROLE_LABELS
    persona_texts = {s: normalize(p).strip() for s, p in (personas or {}).items() if p.strip()}
    out: list[Flags] = []
    said_before: set[tuple[str, ...]] = set()  # 3-grams of the turns before the previous
    earlier_stems: set[str] = set(conv.topic_stems)
    straying = strays(conv)
    filler = [_filler(t, conv) for t in conv.turns]
    topical = _topical(conv)
    for i, turn in enumerate(conv.turns):
        prev = conv.turns[i - 1] if i else None
        flags: Flags = {}
        if turn.n_words <= NEAR_EMPTY_WORDS and not sum(filler[i]):
            flags["empty"] = 1.0
        else:
            flags.update(_truncation(turn))
            if conv.judged:
                flags.update(_refusal(turn, conv))
                flags.update(_pleasantry(conv, i, filler))
            flags.update(_leakage(turn, conv, names, persona_texts))
            flags.update(_role_confusion(turn, conv, i, names, persona_texts))
            flags.update(_language_switch(turn, conv))
            flags.update(_copies(turn, prev, said_before, topical))
            flags.update(_word_salad(turn, conv, earlier_stems))
        out.append({k: round(v, 4) for k, v in flags.items() if v > 0})
        if prev is not None:
            said_before |= prev.shingles
        earlier_stems |= turn.stems
    _mark_strays(out, straying)
    _mark_loops(conv, out)
    _mark_restated(conv, out)
    _mark_flattery(conv, out, filler)
    return out


def _mark_restated(conv: Conversation, flags: list[Flags]) -> None:
    """Flag repetition the turns whose content words (RESTATED_MIN_STEMS or more, the
    topic's aside) are nearly all (RESTATED_SHARE) in one earlier turn: a paraphrase loop
    however long the turns."""
    for i in range(1, len(conv.turns)):
        if "echo" not in flags[i] and signals.restates(conv, i, RESTATED_MIN_STEMS, RESTATED_SHARE):
            flags[i]["repetition"] = 1.0


def _mark_flattery(conv: Conversation, flags: list[Flags], filler: list[tuple[int, int]]) -> None:
    """Flag sycophancy whole the turns that are mostly praise or agreement (FLATTERY_SHARE
    of their words) and bring little new content (novelty at most FLATTERY_NOVELTY)."""
    earlier = set(conv.topic_stems)
    for i, turn in enumerate(conv.turns):
        st = turn.stems - cues.COURTESY_WORDS
        new = len(st - earlier) / len(st) if len(st) >= NOVELTY_MIN_STEMS else 0.0
        earlier |= st
        syc = filler[i][0]
        if syc and syc >= FLATTERY_SHARE * turn.n_words and new <= FLATTERY_NOVELTY:
            flags[i]["sycophancy"] = 1.0


def _mark_loops(conv: Conversation, flags: list[Flags]) -> None:
    """Flag repetition the paraphrase loops: LOOP_RUN or more short turns in a row (at most
    LOOP_MAX_WORDS) that each bring at most LOOP_NOVELTY of new content words."""
    low = [
        n is not None and n <= LOOP_NOVELTY and t.n_words <= LOOP_MAX_WORDS
        for n, t in zip(novelty(conv), conv.turns, strict=True)
    ]
    i = 0
    while i < len(low):
        j = i
        while j < len(low) and low[j]:
            j += 1
        if j - i >= LOOP_RUN:
            for k in range(i, j):
                flags[k]["repetition"] = max(flags[k].get("repetition", 0.0), 1.0)
        i = j + 1


def novelty(conv: Conversation) -> list[float | None]:
    """Per turn, the share of its content words (praise and thanks aside) that neither the
    topic nor an earlier turn used; None for a turn of fewer than NOVELTY_MIN_STEMS."""
    earlier = set(conv.topic_stems)
    out: list[float | None] = []
    for turn in conv.turns:
        st = turn.stems - cues.FILLER_WORDS
        out.append(len(st - earlier) / len(st) if len(st) >= NOVELTY_MIN_STEMS else None)
        earlier |= st
    return out


def _mark_strays(flags: list[Flags], strays: list[bool]) -> None:
    """Flag off_topic the runs of OFF_TOPIC_RUN or more straying turns that nothing else
    explains (a refusal or a switch of language strays too)."""
    free = [s and not f for s, f in zip(strays, flags, strict=True)]
    i = 0
    while i < len(free):
        j = i
        while j < len(free) and free[j]:
            j += 1
        if j - i >= OFF_TOPIC_RUN:
            for k in range(i, j):
                flags[k]["off_topic"] = 1.0
        i = j + 1


# --- structure -----------------------------------------------------------------------------


def _truncation(turn: Turn) -> Flags:
    if turn.n_words < 5 or not turn.sentences:
        return {}
    if not _CUT_OFF_RE.search(turn.text.rstrip()):
        return {}
    last = turn.sentences[-1]
    return {"truncation": max(0.3, _share(len(last.words), turn.n_words))}


def _unpronoun(ws: list[str]) -> list[str]:
    return [_PRONOUNS.get(w, w) for w in ws]


def _topical(conv: Conversation) -> Callable[[tuple[str, ...]], bool]:
    """Whether a shingle is made of the topic's content words and function words only:
    restating the stated question is not repeating the conversation."""
    stop = stopwords_for(conv.language)
    topic = conv.topic_stems

    def topical(sh: tuple[str, ...]) -> bool:
        return all(w in stop or stem(w) in topic for w in sh)

    return topical


def _copies(
    turn: Turn,
    prev: Turn | None,
    said_before: set[tuple[str, ...]],
    topical: Callable[[tuple[str, ...]], bool],
) -> Flags:
    """Echo (sentences copied from the turn before) and repetition (from earlier ones, or
    within the turn itself; shingles of the topic alone, or quoted from the turn before, do
    not count)."""
    prev_sh = shingles(_unpronoun(prev.words)) if prev is not None else set()
    prev_sents = {" ".join(_unpronoun(s.words)) for s in prev.sentences} if prev else set()
    echoed = repeated = 0
    own: set[tuple[str, ...]] = set()
    for s in turn.sentences:
        ws = _unpronoun(s.words)
        sh = shingles(ws)
        if len(sh) < 3:
            if prev is not None and len(ws) >= 2 and " ".join(ws) in prev_sents:
                echoed += len(ws)
            continue
        if sum(1 for x in sh if x in prev_sh) >= COPIED_SHARE * len(sh):
            echoed += len(ws)
        # Quoting the turn it answers is uptake, not repetition, whoever said it first.
        quoted = {x for q in _QUOTED_RE.findall(s.text) for x in shingles(words(q))}
        quoted &= prev.shingles if prev is not None else set()
        plain = {x for x in shingles(s.words) if not topical(x) and x not in quoted}
        copied = sum(1 for x in plain if x in said_before or x in own)
        if copied >= max(REPEATED_MIN_SHINGLES, COPIED_SHARE * len(plain)):
            repeated += len(ws)
        own |= plain
    flags: Flags = {}
    echo = _share(echoed, turn.n_words)
    if echo >= ECHO_SHARE:
        flags["echo"] = echo
    if repeated >= 5:
        flags["repetition"] = _share(repeated, turn.n_words)
    return flags


def _language_switch(turn: Turn, conv: Conversation) -> Flags:
    if not conv.judged:
        return {}
    if turn.language not in (conv.language, "unknown") and (
        turn.language in SUPPORTED or _foreign_script(turn)
    ):
        return {"language_switch": 1.0}
    switched = sum(
        len(s.words)
        for s in turn.sentences
        if s.language in SUPPORTED and s.language != conv.language
    )
    share = _share(switched, turn.n_words)
    return {"language_switch": share} if share >= SWITCH_SHARE else {}


def _foreign_script(turn: Turn) -> bool:
    return any(ord(ch) > 0x24F and ch.isalpha() for ch in turn.text[:200])


def strays(conv: Conversation) -> list[bool]:
    """Which turns stray from the topic: a turn of OFF_TOPIC_MIN_STEMS content words or more
    sharing none with the topic, nor OFF_TOPIC_CHAIN with the turns on topic before it."""
    if not conv.topic_stems:
        return [False] * len(conv.turns)
    topic = _keys(conv.topic_stems)
    anchor = set(topic)
    out = []
    for turn in conv.turns:
        st = turn.stems - cues.FILLER_WORDS
        keys = _keys(st)
        on = bool(keys & topic) or len(keys & anchor) >= OFF_TOPIC_CHAIN
        out.append(not on and len(st) >= OFF_TOPIC_MIN_STEMS)
        if on:
            anchor |= keys
    return out


def _keys(st: set[str]) -> set[str]:
    """Stems cut to OFF_TOPIC_KEY letters: inflections and compounds of one word meet
    (``sicherheitsrichtlinie``/``sicherheitsrichtlinien``, ``échelle``/``échelles``)."""
    return {s[:OFF_TOPIC_KEY] for s in st}


def _word_salad(turn: Turn, conv: Conversation, earlier: set[str]) -> Flags:
    if turn.n_words < SALAD_MIN_WORDS or not turn.stems:
        return {}
    if _broken_prose(turn, conv):
        return {"word_salad": 1.0}
    ws = turn.words
    if {conv.language, turn.language} != {"en"} or sum(
        1 for w in ws if w in _GLUE
    ) > SALAD_MAX_GLUE * len(ws):
        return {}
    stop = [w for w in ws if w in STOPWORDS["en"]]
    if not stop or sum(1 for w in stop if w in _NOUNY) < SALAD_NOUNY * len(stop):
        return {}
    chained = ws.count("of")
    of_rate = chained / len(ws)
    novelty = len(turn.stems - earlier) / len(turn.stems)
    if chained >= 2 and (  # one "of" is a phrase, not a chain
        of_rate >= SALAD_OF_HEAVY or (of_rate >= SALAD_OF_RATE and novelty <= SALAD_NOVELTY)
    ):
        return {"word_salad": 1.0}
    return {}


def _broken_prose(turn: Turn, conv: Conversation) -> bool:
    """Word salad in any supported language: function words put together as no sentence
    has them, or prose with almost none."""
    if turn.language not in SUPPORTED and conv.language not in SUPPORTED:
        return False
    lang = turn.language if turn.language in SUPPORTED else conv.language
    broken = signals.broken_structure(turn, lang)
    if broken >= SALAD_BROKEN and broken >= SALAD_BROKEN_RATE * turn.n_words:
        return True
    sparse = signals.sparse_prose(turn, SALAD_SPARSE_WORDS)
    return sparse is not None and sparse < SALAD_SPARSE and not _foreign_script(turn)


# --- cues ----------------------------------------------------------------------------------


def _refusal(turn: Turn, conv: Conversation) -> Flags:
    """Refusals anywhere (in the conversation's language or the turn's), by the share of
    the turn that refuses or gives grounds for refusing."""
    hit = signals.refusal_words(turn, (conv.language, turn.language))
    return {"refusal": max(REFUSAL_MIN_SHARE, _share(hit, turn.n_words))} if hit else {}


def _cue_share(turn: Turn, name: str, pattern: re.Pattern[str]) -> Flags:
    """The sentences saying a cue in their own words: quoting someone's refusal is not one."""
    hit = sum(len(s.words) for s in turn.sentences if pattern.search(_QUOTED_RE.sub('""', s.text)))
    return {name: _share(hit, turn.n_words)} if hit else {}


def _filler(turn: Turn, conv: Conversation) -> tuple[int, int]:
    """Words in sentences of empty praise or agreement (a flattering phrase, or
    PRAISE_WORDS words of praise), and in sentences of mere thanks or greeting: at most
    FILLER_CONTENT content words each, or FILLER_CONTENT_SHARE of a longer sentence."""
    if not conv.judged:
        return 0, 0
    stop = stopwords_for(conv.language)
    syc_re, ple_re = cues.SYCOPHANCY[conv.language], cues.PLEASANTRY[conv.language]
    # Searched in the whole turn first: most turns have neither.
    any_syc, any_ple = bool(syc_re.search(turn.text)), bool(ple_re.search(turn.text))
    syc = ple = 0
    for s in turn.sentences:
        praise, content = signals.praise_content(s, stop)
        cued = any_syc and bool(syc_re.search(s.text))
        is_syc = cued or praise >= PRAISE_WORDS
        is_ple = any_ple and bool(ple_re.search(s.text))
        if not (is_syc or is_ple):
            continue
        lavish = cued or praise > PRAISE_WORDS  # a longer sentence may carry a little content
        if content > max(FILLER_CONTENT, int(lavish * FILLER_CONTENT_SHARE * len(s.words))):
            continue
        if is_syc and (len(s.words) >= PARTIAL_SYCOPHANCY_WORDS or not is_ple):
            syc += len(s.words)
        else:
            ple += len(s.words)
    return syc, ple


def _pleasantry(conv: Conversation, i: int, filler: list[tuple[int, int]]) -> Flags:
    turn = conv.turns[i]
    syc, ple = filler[i]
    flags: Flags = {}
    whole = syc + ple >= turn.n_words
    if whole and ple:
        substantive = sum(1 for f, t in zip(filler, conv.turns, strict=True) if sum(f) < t.n_words)
        if not (i >= len(conv.turns) - 2 and substantive >= 2):  # not a sign-off
            flags["pleasantry_only"] = 1.0
    if whole and syc:
        flags["sycophancy"] = 1.0
    elif syc >= PARTIAL_SYCOPHANCY_WORDS:
        flags["sycophancy"] = _share(syc, turn.n_words)
    return flags


def _leakage(turn: Turn, conv: Conversation, names: set[str], personas: Mapping[str, str]) -> Flags:
    tables = [
        cues.LEAKAGE[lang]
        for lang in dict.fromkeys((conv.language, turn.language))
        if conv.judged and lang in SUPPORTED and cues.LEAKAGE[lang].search(turn.text)
    ]
    persona = personas.get(turn.speaker, "")
    brief = stems(words(persona), stopwords_for(conv.language))
    lines = turn.text.splitlines()
    labelled = [ln for ln in lines if _label(ln) is not None]
    hit = 0
    for s in turn.sentences:
        if (
            cues.MARKERS.search(s.text)
            or any(_leaks(t, s.text, conv) for t in tables)
            or _addresses_as_instruction(s, names)
            or signals.recites_setup(s)
            or (len(persona.split()) >= 4 and persona in s.text)
            or _echoes_brief(s, brief, conv)
        ):
            hit += len(s.words)
    if len(labelled) == 1 and _label(lines[0]) in _ROLE_LABELS:
        hit += 1  # "Assistant: ..." opening the turn
    elif any(_label(ln) in _ROLE_LABELS for ln in labelled):
        hit += 1  # role labels inside the turn
    return {"leakage": max(0.1, _share(hit, turn.n_words))} if hit else {}


def _leaks(table: re.Pattern[str], text: str, conv: Conversation) -> bool:
    """A leakage phrase in ``text`` that is not the conversation's subject (a discussion of
    system prompts may say "the system prompt")."""
    stop = stopwords_for(conv.language)
    return any(not stems(words(m.group()), stop) & conv.topic_stems for m in table.finditer(text))


def _echoes_brief(s: Sentence, brief: set[str], conv: Conversation) -> bool:
    """Whether the sentence recites the speaker's persona brief: BRIEF_SHARE of its content
    words (at least BRIEF_MIN_STEMS of them)."""
    if len(brief) < BRIEF_MIN_STEMS:
        return False
    st = stems(s.words, stopwords_for(conv.language))
    return len(st & brief) >= max(BRIEF_MIN_STEMS, BRIEF_SHARE * len(brief))


def _addresses_as_instruction(s: Sentence, names: set[str]) -> bool:
    ws = s.words
    return len(ws) >= 3 and ws[0] == "you" and ws[1] == "are" and ws[2] in names


def _label(line: str) -> str | None:
    match = cues.SCRIPT_LINE.match(line.strip())
    return match.group(1).strip() if match else None


def _role_confusion(
    turn: Turn, conv: Conversation, i: int, names: set[str], personas: Mapping[str, str]
) -> Flags:
    # A script: several lines spoken by roles or participants.
    labelled = [(ln, _label(ln)) for ln in turn.text.splitlines()]
    script = [ln for ln, label in labelled if label is not None]
    voices = {label for _, label in labelled if label is not None}
    known = voices & (names | _ROLE_LABELS | signals.SCRIPT_VOICES)
    if (
        (len(script) >= 2 and known and len(voices) >= 2)
        or (len(script) >= 2 and voices & names and not voices <= {turn.speaker.casefold()})
        or (len(script) >= 3 and len(voices) >= 2)
    ):
        return {"role_confusion": _share(sum(len(words(ln)) for ln in script), turn.n_words)}
    own = turn.speaker.casefold()
    opening = labelled[0][1] if labelled else None
    if (opening is not None and opening in names - {own}) or any(
        label in (names - {own}) | {"user", "human"} for _, label in labelled[1:]
    ):
        return {"role_confusion": 0.5}  # answers as another ("Ben: ..."), or writes its line
    voiced = _other_voice(turn, conv, names)
    if voiced:
        return voiced
    first = turn.sentences[0].words if turn.sentences else []
    if own in names and first[:1] == [own] and len(names) >= 2:
        return {"role_confusion": 0.5}  # addresses itself by name
    mine = personas.get(turn.speaker, "")
    for speaker, persona in personas.items():
        if speaker != turn.speaker and persona and persona != mine and f"as {persona}" in turn.text:
            return {"role_confusion": 0.5}  # speaks as the other's persona
    return _misattributes(turn, conv, i)


def _other_voice(turn: Turn, conv: Conversation, names: set[str]) -> Flags:
    """A speaker claiming another's identity ("As Gemini, I ...", "I'm Ben."), or posing
    the other's next question and answering it ("You might ask ... Well, ...")."""
    if signals.claims_other(turn, names):
        return {"role_confusion": 0.5}
    asked = signals.self_answered_words(turn, conv.language) if conv.judged else 0
    return {"role_confusion": max(0.5, _share(asked, turn.n_words))} if asked else {}


def _misattributes(turn: Turn, conv: Conversation, i: int) -> Flags:
    """'As I said' about the other's point, or 'your point about' one's own."""
    if conv.language != "en" or i < 2:
        return {}
    cited = [
        (s, bool(_SAID_MINE_RE.search(s.text)), bool(_SAID_YOURS_RE.search(s.text)))
        for s in turn.sentences
    ]
    cited = [c for c in cited if c[1] or c[2]]
    if not cited:
        return {}
    stop = stopwords_for(conv.language)
    own: set[str] = set()
    other: set[str] = set()
    for t in conv.turns[:i]:
        (own if t.speaker == turn.speaker else other).update(t.stems)
    hit = 0
    for s, mine, yours in cited:
        st = {stem(w) for w in s.words if w not in stop and len(w) > 2}
        a, b = len(st & own - other), len(st & other - own)
        if (mine and b >= 2 and b > a) or (yours and a >= 1 and a > b):
            hit += len(s.words)
    return {"role_confusion": max(0.5, _share(hit, turn.n_words))} if hit else {}
