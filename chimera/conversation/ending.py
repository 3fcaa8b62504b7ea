"""Ending detection: should a conversation stop after its latest turn, and why.

:func:`detect_end` is called after each turn is appended.  It never ends a conversation
before ``min_turns`` and always ends it at ``max_turns``; in between it ends early on

``natural_close``
    The latest turn and the one before it, from another speaker, both close: they sum up,
    wrap up, thank each other for the conversation or say goodbye.  A goodbye on its own is
    enough.  Cues come from a curated table of closing expressions (:data:`CLOSING_CUES`),
    not from any one model's wording.
``repetition``
    The latest turn is a near-duplicate of an earlier one (word 3-gram shingles, Jaccard
    ``>= NEAR_DUPLICATE_JACCARD``), or each of the last ``RECYCLE_WINDOW`` turns is mostly
    made of 3-grams already said (``>= RECYCLE_CONTAINMENT``).
``convergence``
    The last two speakers agree, with no dissent in either turn and no open question: both
    agree and one of them states consensus ("we're on the same page"), or the two say nearly
    the same thing (content-word Jaccard ``>= CONVERGENCE_SIMILARITY``).  Plain agreement
    ("great point!") is not enough on its own: models open most replies with it and then
    move the argument on.

At ``max_turns`` the same checks run first, so a conversation that happens to close on its
last allowed turn reports ``natural_close`` rather than ``max_turns``.

A cue does not count when it is negated or deferred ("I don't think we've covered …",
"before we wrap up …"), when it sits before the last ``CLOSE_TAIL_SENTENCES`` sentences
(the turn went on after it), when a thanks or an agreement pivots ("thanks for the point,
but …"), or when the turn ends with a question that is not itself a closing proposal ("shall
we call it a day?" is one; the speaker otherwise expects an answer).

Everything is a pure function of the text: deterministic, and about a millisecond per call
for 20 turns of 200 words (a few ms with cold caches).  The cost is linear in the text's
length whatever the text (a run of spaces, one endless sentence of "thanks"): no pattern
rescans what it has read, a negation is looked for at most ``NEGATION_WINDOW_CHARS`` back,
and a turn's closing question is searched for at most ``MAX_CUE_LOOKUPS`` of its cues.

The text helpers (:func:`words`, :func:`shingles`, :func:`content_words`, :func:`jaccard`)
are shared with quality scoring.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Final, Literal

from chimera.models.transcript import TranscriptTurn

EndReason = Literal["natural_close", "repetition", "convergence", "max_turns"]

# --- thresholds ----------------------------------------------------------------------------

#: Words per shingle.  Three is short enough to catch a recycled clause and long enough that
#: two turns on the same subject rarely share many by chance (consecutive simulated turns:
#: median Jaccard 0.02, 99th percentile 0.4 -- and that is template-built text).
SHINGLE_SIZE: Final = 3
#: A turn needs this many shingles (i.e. SHINGLE_SIZE + 4 words) before its similarity means
#: anything; shorter turns are compared by their normalised text instead.
MIN_SHINGLES: Final = 5
#: Latest turn vs any earlier turn: at or above this it is a near-duplicate (a copy with a
#: few words changed stays above 0.6; a reply that quotes a clause back stays below 0.2).
NEAR_DUPLICATE_JACCARD: Final = 0.6
#: "Recycling": each of the last RECYCLE_WINDOW turns has at least this share of its
#: shingles already said earlier in the conversation.
RECYCLE_WINDOW: Final = 3
RECYCLE_CONTAINMENT: Final = 0.6
#: Last two turns (different speakers) sharing this much of their content vocabulary are
#: saying the same thing.
CONVERGENCE_SIMILARITY: Final = 0.5
#: ... provided each has at least this many content words.
MIN_CONTENT_WORDS: Final = 5
#: A turn closes when its cue weights (best per category) add up to at least this.
CLOSE_THRESHOLD: Final = 1.0
#: Only cues in the last few sentences of a turn count: a closing remark followed by
#: paragraphs of argument is not a close.
CLOSE_TAIL_SENTENCES: Final = 3
#: A cue is negated by a negation among the few words before it, looked for this many
#: characters back at most (far more than four words of any language need; a bound keeps
#: a sentence of thousands of cues linear).
NEGATION_WINDOW_CHARS: Final = 200
#: A turn ending with a question still closes when the question holds one of its cues;
#: at most this many distinct cues are looked for there (each look reads the question).
MAX_CUE_LOOKUPS: Final = 32


@dataclass(frozen=True)
class EndDecision:
    """Why a conversation ends now: the rule that fired and what triggered it."""

    reason: EndReason
    detail: str


# --- text helpers ----------------------------------------------------------------------------

_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
#: After closing punctuation, or at a line break.  A break is matched from the start of
#: its run of white space only, and possessively: tried at every space of a long run
#: without one, ``\s*\n`` would read the rest of the run each time.
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])[\"')\]\u201d]*\s+|(?<!\s)[^\S\n]*+\n\s*+")
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})

_STOPWORDS_TEXT = """
    a about above after again against all also am an and any are aren't as at be because
    been before being below between both but by can can't cannot could couldn't did didn't do
    does doesn't doing don't down during each even few for from further had hadn't has hasn't
    have haven't having he he'd he'll he's her here here's hers herself him himself his how
    how's however i i'd i'll i'm i've if in into is isn't it it's its itself just let's like
    make makes me might more most much must mustn't my myself no nor not now of off on once
    one only or other ought our ours ourselves out over own quite rather really same say says
    shan't she she'd she'll she's should shouldn't so some such than that that's the their
    theirs them themselves then there there's these they they'd they'll they're they've thing
    things think this those though through to too under until up upon us very was wasn't we
    we'd we'll we're we've well were weren't what what's when when's where where's whether
    which while who who's whom why why's will with won't would wouldn't yes yet you you'd
    you'll you're you've your yours yourself yourselves
    thanks thank please okay ok sure indeed right yeah"""
#: Function words: ignored when comparing what turns are *about*.
STOPWORDS: Final = frozenset(_STOPWORDS_TEXT.split())


def normalize(text: str) -> str:
    """Lower-case with straight quotes: what every pattern here matches against."""
    return text.translate(_QUOTES).lower()


def words(text: str) -> tuple[str, ...]:
    """The words of ``text``, lower-cased (contractions kept whole)."""
    return tuple(_WORD_RE.findall(normalize(text)))


def sentences(text: str) -> list[str]:
    """``text`` split into sentences (and paragraphs), normalised."""
    return [s for s in _SENTENCE_SPLIT_RE.split(normalize(text).strip()) if s]


@functools.lru_cache(maxsize=4096)
def shingles(text: str) -> frozenset[str]:
    """The word SHINGLE_SIZE-grams of ``text`` (the whole text if it is shorter)."""
    ws = words(text)
    if len(ws) < SHINGLE_SIZE:
        return frozenset({" ".join(ws)}) if ws else frozenset()
    return frozenset(" ".join(ws[i : i + SHINGLE_SIZE]) for i in range(len(ws) - SHINGLE_SIZE + 1))


_SUFFIXES: Final = ("ations", "ation", "ments", "ment", "ings", "ing", "edly", "ed", "es", "s")


def _stem(word: str) -> str:
    # Just enough to conflate "cars"/"car", "cities"/"city", "standardise"/"standardisation";
    # not a real stemmer, and it need not be: both sides of a comparison go through it.
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    for suffix in _SUFFIXES:
        if not word.endswith(suffix):
            continue
        if suffix == "s":
            if len(word) > 3 and not word.endswith(("ss", "us", "is")):
                word = word[:-1]
        elif len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)]
        break
    return word[:-1] if word.endswith("e") and len(word) > 4 else word


@functools.lru_cache(maxsize=4096)
def content_words(text: str) -> frozenset[str]:
    """The lightly stemmed words of ``text`` that carry meaning (no stopwords, 3+ letters)."""
    return frozenset(
        _stem(w) for w in words(text) if len(w) > 2 and w not in STOPWORDS and not w.isdigit()
    )


def jaccard(a: AbstractSet[str], b: AbstractSet[str]) -> float:
    """|a & b| / |a | b|, 0 for two empty sets."""
    if not a or not b:
        return 0.0
    shared = len(a & b)  # reads the smaller set only; a | b would read both
    return shared / (len(a) + len(b) - shared)


def containment(part: AbstractSet[str], whole: AbstractSet[str]) -> float:
    """The share of ``part`` found in ``whole``."""
    return len(part & whole) / len(part) if part else 0.0


# --- closing cues ---------------------------------------------------------------------------


def _alts(*alternatives: str) -> str:
    """One regex matching any of ``alternatives`` as whole words."""
    return r"\b(?:" + "|".join(alternatives) + r")\b"


_CONVO = _alts(
    "conversation", "discussion", "exchange", "chat", "debate", "dialogue", "talk",
    "back[- ]and[- ]forth", "conversations", "discussions", "exchanges",
)  # fmt: skip
_NICE = _alts(
    "good", "great", "useful", "thoughtful", "productive", "fruitful", "lovely", "wonderful",
    "fantastic", "fascinating", "enjoyable", "stimulating", "excellent", "engaging", "fun",
    "delightful", "valuable", "rewarding", "illuminating", "insightful", "helpful", "lively",
    "constructive", "civil", "generous",
)  # fmt: skip

#: (category, weight, pattern).  A turn's closing strength is the sum over categories of
#: the best weight found; it closes at CLOSE_THRESHOLD.  ``reply`` cues only count when the
#: turn answers a closing turn ("Likewise.", "Thank you too.").
CLOSING_CUES: Final[tuple[tuple[str, float, re.Pattern[str]], ...]] = tuple(
    (category, weight, re.compile(pattern))
    for category, weight, pattern in (
        # A goodbye ends a conversation on its own.
        ("farewell", 2.0, _alts(
            "good ?bye", "bye for now", "farewell", "take care", "until next time", "signing off",
            "see you (?:next time|soon|around|later)", "talk (?:to you )?(?:soon|later)",
            "catch you later", "over and out",
            "have a (?:great|good|nice|lovely|wonderful) (?:day|evening|night|weekend|one)",
        )),
        # Wrapping up: proposing or noting the end.
        ("wrap_up", 1.0, _alts(
            "wrap(?:ping)? (?:it |things |this |us )?up",
            "(?:leave|stop|end|pause|close) (?:it |things |this |the discussion |the conversation "
            "|the debate |our discussion |our conversation )?(?:there|here|at that)",
            "call it a (?:day|night)",
            "(?:good|natural|fitting|sensible|nice|right|reasonable)"
            " (?:place|point|spot|moment|time)"
            " to (?:stop|end|pause|close|conclude|finish|wrap|leave it|land)",
            "natural (?:end|ending|close|conclusion|stopping point|resting point)",
            "we(?:'ve| have) (?:covered|exhausted|both made our (?:case|points?))",
            "we(?:'ve| have) (?:reached|come to|arrived at|found) (?:a |an |some |the )?"
            "(?:natural |good |fair |reasonable |real |genuine )?(?:end|conclusion|consensus"
            "|agreement|resolution|understanding|stopping point|common ground|place to stop)",
            "where we(?:'ve)? (?:landed|ended up|come out)",
            "(?:that|this) (?:covers|sums) (?:it|things)(?: up)?",
            "that'?s (?:all|it) (?:from me|for me|for now|for today)",
            "(?:nothing|not much) (?:more|else|further) to add",
        )),
        ("wrap_up", 0.5, _alts(
            "(?:final|closing|parting|last) (?:thought|word|remark|note|reflection)s?",
        )),
        # Summing up.
        ("summary", 1.0, _alts(
            "to sum (?:it |things )?up", "summing up", "in sum", "in summary",
            "to summari[sz]e", "in conclusion", "to conclude", "to recap", "in closing",
        )),
        ("summary", 0.5, _alts(
            "in short", "all in all", "all told", "on the whole", "bottom line", "the upshot",
        )),
        # Appreciating the conversation (not a point within it).
        ("appreciation", 1.0, _alts(
            "(?:thanks|thank you|grateful|appreciate[ds]?(?! that| how| why| what))[^.!?]{0,40}"
            f"(?:{_CONVO}|your time)",
            f"{_NICE} {_CONVO}",
            "(?:enjoyed|appreciated|loved) (?:this|it|talking|chatting|thinking (?:this|it) through"
            f"|(?:our|the|this) {_CONVO})",
            "(?:it'?s been|it was|what|always) a (?:real |true )?pleasure",
            "pleasure (?:talking|chatting|discussing|debating|thinking)",
        )),
        # Bare thanks: a courtesy on its own, part of a close with anything else.
        ("thanks", 0.5, _alts("thanks(?! to)", "thank you", "cheers", "much appreciated")),
        ("reply", 1.0, _alts(
            "likewise", "same here", "you too", "me too", "my pleasure", "the pleasure is mine",
            "agreed", "thanks(?! to)", "thank you", "fair summary", "well summari[sz]ed",
        )),
    )
)  # fmt: skip

#: Categories whose cue is cancelled by a pivot after it ("thanks, but …", "agreed, however").
_PIVOTING = frozenset({"thanks", "appreciation", "reply", "agree", "consensus"})
_PIVOT_AFTER_RE = re.compile(_alts("but", "however", "although", "though", "yet", "except"))
_PIVOT_START_RE = re.compile(
    "^" + _alts("but", "however", "that said", "still", "yet", "although", "though",
                "on the other hand", "even so")
)  # fmt: skip
_NEGATION_RE = re.compile(
    _alts(
        "not", "never", "no", "don't", "doesn't", "didn't", "isn't", "aren't", "wasn't",
        "haven't", "hasn't", "won't", "can't", "cannot", "shouldn't", "wouldn't", "without",
        "hardly", "barely", "before",
    )
)  # fmt: skip
_NEGATION_WINDOW_WORDS: Final = 4

# --- agreement cues --------------------------------------------------------------------------

_AGREE_RE = re.compile(
    _alts(
        "i (?:completely |fully |totally |entirely |wholeheartedly |absolutely |largely |quite )?"
        "(?:agree|concur)",
        "agreed", "you'?re (?:absolutely |completely |quite |exactly |so )?right",
        "that'?s (?:exactly )?(?:right|true|fair)", "fair point", "good point", "great point",
        "well put", "well said", "i'?m with you", "i take (?:your|the) point", "point taken",
        "you make a (?:good|fair|great|strong|valid|compelling) (?:point|case)",
        "i accept (?:that|your|the point)", "makes (?:a lot of )?sense",
        "(?:exactly|absolutely|yes|indeed)(?: right| so)?(?=[.!,;])",
    )
)  # fmt: skip
_CONSENSUS_RE = re.compile(
    _alts(
        "we (?:both |all )?(?:agree|concur)", "we'?re (?:in )?agreement",
        "we(?:'re| are) (?:on the same page|aligned|in sync|of one mind|not so far apart)",
        "common ground", "see eye to eye",
        "we(?:'ve| have) (?:converged|reached (?:a )?(?:consensus|agreement))",
        "(?:a|our|rough|broad) consensus", "no (?:real )?disagreement",
        "nothing (?:more |else |further )?to add", "you'?ve (?:convinced|persuaded) me",
        "i'?m (?:now )?(?:convinced|persuaded)", "i stand corrected", "i concede",
        "we agree more than",
    )
)  # fmt: skip
_DISSENT_RE = re.compile(
    _alts(
        "disagree", "disagreement", "push back", "pushback",
        "not (?:so |entirely |fully |quite )?(?:sure|convinced|persuaded)", "less convinced",
        "unconvinced", "i doubt", "i see it differently", "part ways", "overstate[sd]?",
        "i'?d challenge", "i challenge", "cuts both ways", "half right", "partly agree",
        "partially agree", "to a point", "not quite", "i don'?t (?:think|buy|accept|agree|see)",
        "that'?s not (?:right|true|quite|how)", "on the contrary", "mistaken", "wrong", "differ",
        "objection", "skeptical", "sceptical",
    )
)  # fmt: skip


@dataclass(frozen=True)
class _Cue:
    category: str
    weight: float
    text: str


def _negated(sentence: str, start: int) -> bool:
    low = max(0, start - NEGATION_WINDOW_CHARS)
    before = sentence[low:start].split()
    if low and before and not sentence[low - 1].isspace() and not sentence[low].isspace():
        del before[0]  # the end of a word the window cut: not that word
    return bool(_NEGATION_RE.search(" ".join(before[-_NEGATION_WINDOW_WORDS:])))


def _last_pivot(sentence: str) -> int:
    """Where the last pivot word of ``sentence`` starts; -1 if it has none."""
    last = -1
    for match in _PIVOT_AFTER_RE.finditer(sentence):
        last = match.start()
    return last


def _pivots(last_pivot: int, end: int, next_sentence: str | None) -> bool:
    """Whether a cue ending at ``end`` is followed by a pivot word in its sentence
    (which has its last at ``last_pivot``) or a pivot opening the next one."""
    if last_pivot >= end:
        return True
    return next_sentence is not None and bool(_PIVOT_START_RE.match(next_sentence))


def _find(
    sents: Sequence[str], patterns: Sequence[tuple[str, float, re.Pattern[str]]]
) -> list[_Cue]:
    found = []
    for i, sentence in enumerate(sents):
        following = sents[i + 1] if i + 1 < len(sents) else None
        last_pivot: int | None = None  # read once per sentence, when a cue needs it
        for category, weight, pattern in patterns:
            for match in pattern.finditer(sentence):
                if _negated(sentence, match.start()):
                    continue
                if category in _PIVOTING:
                    if last_pivot is None:
                        last_pivot = _last_pivot(sentence)
                    if _pivots(last_pivot, match.end(), following):
                        continue
                found.append(_Cue(category, weight, match.group(0)))
    return found


def _asks(sents: Sequence[str], cues: Sequence[_Cue]) -> bool:
    """Whether the turn ends with a question that is not itself part of the cue."""
    if not sents or not sents[-1].rstrip("\"') ").endswith("?"):
        return False
    # The question's own cues come last: looked for first, each is found at once.
    texts = dict.fromkeys(c.text for c in reversed(cues))
    return not any(t in sents[-1] for t in itertools.islice(texts, MAX_CUE_LOOKUPS))


@functools.lru_cache(maxsize=1024)
def _closing(text: str, after_close: bool) -> tuple[float, tuple[_Cue, ...]]:
    sents = sentences(text)
    tail = sents[-CLOSE_TAIL_SENTENCES:]
    patterns = [p for p in CLOSING_CUES if after_close or p[0] != "reply"]
    cues = _find(tail, patterns)
    if _asks(tail, cues):
        return 0.0, ()
    best: dict[str, float] = {}
    for cue in cues:
        best[cue.category] = max(best.get(cue.category, 0.0), cue.weight)
    return sum(best.values()), tuple(cues)


def is_closing(text: str, *, after_close: bool = False) -> bool:
    """Whether ``text`` closes the conversation (``after_close``: it answers a closing turn)."""
    return _closing(text, after_close)[0] >= CLOSE_THRESHOLD


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _cue_list(cues: Sequence[_Cue], limit: int = 3) -> str:
    seen = list(dict.fromkeys(f"'{_clip(c.text)}'" for c in cues))
    return ", ".join(seen[:limit])


def _natural_close(turns: Sequence[TranscriptTurn]) -> EndDecision | None:
    window = turns[-3:]
    closed = False
    scored: list[tuple[float, tuple[_Cue, ...]]] = []
    for turn in window:
        strength, cues = _closing(turn.content, closed)
        closed = strength >= CLOSE_THRESHOLD
        scored.append((strength, cues))
    latest, (strength, cues) = turns[-1], scored[-1]
    if strength < CLOSE_THRESHOLD:
        return None
    if any(c.category == "farewell" for c in cues):
        return EndDecision("natural_close", f"{latest.speaker} said goodbye ({_cue_list(cues)})")
    if len(turns) >= 2 and turns[-2].speaker != latest.speaker:
        prev_strength, prev_cues = scored[-2]
        if prev_strength >= CLOSE_THRESHOLD:
            return EndDecision(
                "natural_close",
                f"{turns[-2].speaker} and {latest.speaker} both closed "
                f"({_cue_list(prev_cues, 2)}; {_cue_list(cues, 2)})",
            )
    return None


# --- repetition ----------------------------------------------------------------------------


def _repetition(turns: Sequence[TranscriptTurn]) -> EndDecision | None:
    latest = turns[-1]
    latest_sh = shingles(latest.content)
    latest_norm = " ".join(words(latest.content))
    if latest_norm:
        for earlier in turns[:-1]:
            if len(latest_sh) < MIN_SHINGLES:
                if " ".join(words(earlier.content)) == latest_norm:
                    return EndDecision(
                        "repetition", f"turn {latest.turn_index} repeats turn {earlier.turn_index}"
                    )
                continue
            similarity = jaccard(latest_sh, shingles(earlier.content))
            if similarity >= NEAR_DUPLICATE_JACCARD:
                return EndDecision(
                    "repetition",
                    f"turn {latest.turn_index} ({latest.speaker}) near-duplicates turn "
                    f"{earlier.turn_index} ({earlier.speaker}): 3-gram Jaccard {similarity:.2f}",
                )
    if len(turns) <= RECYCLE_WINDOW:
        return None
    shares: list[float] = []
    for i in reversed(range(len(turns) - RECYCLE_WINDOW, len(turns))):  # latest first: cheap exit
        sh = shingles(turns[i].content)
        if len(sh) < MIN_SHINGLES:
            return None
        said: frozenset[str] = frozenset().union(*(shingles(t.content) for t in turns[:i]))
        share = containment(sh, said)
        if share < RECYCLE_CONTAINMENT:
            return None
        shares.insert(0, share)
    return EndDecision(
        "repetition",
        f"the last {RECYCLE_WINDOW} turns recycle earlier content "
        f"({', '.join(f'{s:.0%}' for s in shares)} of their 3-grams already said)",
    )


# --- convergence ------------------------------------------------------------------------------


def _dissents(text: str) -> bool:
    # Consensus phrases first: "no real disagreement" is not dissent.
    return bool(_DISSENT_RE.search(_CONSENSUS_RE.sub(" ", normalize(text))))


@functools.lru_cache(maxsize=1024)
def _agreement(text: str) -> tuple[int, str]:
    """0 (none or dissent), 1 (agrees), 2 (states consensus); and the cue."""
    sents = sentences(text)
    if _dissents(text):
        return 0, ""
    agree_pats = (("consensus", 2.0, _CONSENSUS_RE), ("agree", 1.0, _AGREE_RE))
    cues = _find(sents, agree_pats)
    if not cues or _asks(sents, cues):
        return 0, ""
    top = max(cues, key=lambda c: c.weight)
    return int(top.weight), top.text


def _convergence(turns: Sequence[TranscriptTurn]) -> EndDecision | None:
    if len(turns) < 2 or turns[-1].speaker == turns[-2].speaker:
        return None
    prev, latest = turns[-2], turns[-1]
    if _asks(sentences(latest.content), ()):
        return None
    (lvl_prev, cue_prev), (lvl_latest, cue_latest) = (
        _agreement(prev.content),
        _agreement(latest.content),
    )
    if lvl_prev and lvl_latest and max(lvl_prev, lvl_latest) >= 2:
        return EndDecision(
            "convergence",
            f"{prev.speaker} and {latest.speaker} agree ('{cue_prev}'; '{cue_latest}')",
        )
    a, b = content_words(prev.content), content_words(latest.content)
    if min(len(a), len(b)) >= MIN_CONTENT_WORDS:
        similarity = jaccard(a, b)
        no_dissent = not (_dissents(prev.content) or _dissents(latest.content))
        if similarity >= CONVERGENCE_SIMILARITY and no_dissent:
            return EndDecision(
                "convergence",
                f"{prev.speaker} and {latest.speaker} say the same thing "
                f"(content-word Jaccard {similarity:.2f})",
            )
    return None


# --- the decision -----------------------------------------------------------------------------


def detect_end(
    turns: Sequence[TranscriptTurn], *, min_turns: int, max_turns: int
) -> EndDecision | None:
    """Whether the conversation ends after ``turns[-1]``, and why; None to go on."""
    if min_turns < 1 or max_turns < min_turns:
        raise ValueError(f"need 1 <= min_turns <= max_turns, got {min_turns} and {max_turns}")
    n = len(turns)
    if n < min_turns or n == 0:
        return None
    decision = _natural_close(turns) or _repetition(turns) or _convergence(turns)
    if decision is not None:
        return decision
    if n >= max_turns:
        return EndDecision("max_turns", f"reached max_turns ({max_turns})")
    return None


def ending_of(turns: Sequence[TranscriptTurn]) -> EndDecision | None:
    """How a finished transcript ended, judged from its last turns alone.

    For transcripts that do not say (data from elsewhere): the natural reason if the last
    turns close, repeat or converge, else ``max_turns`` (it stopped without ending
    itself); None for an empty transcript.
    """
    if not turns:
        return None
    return detect_end(turns, min_turns=len(turns), max_turns=len(turns))
