"""Closing and agreement cues: the curated phrase tables, and where in a turn a cue counts.

:data:`CLOSING_CUES` lists the expressions that sum up, wrap up, thank or say goodbye;
:data:`AGREE_RE` and :data:`CONSENSUS_RE` the ones that agree or state consensus, and
:func:`dissents` finds disagreement.  They are not any one model's wording.

:func:`find_cues` drops a cue that is negated or deferred ("I don't think we've covered …",
"before we wrap up …") and a thanks or an agreement that pivots ("thanks for the point,
but …"); :func:`asks` tells whether a turn ends with a question that is not itself a closing
proposal.  The cost is linear in the text's length whatever the text: a negation is looked
for at most ``NEGATION_WINDOW_CHARS`` back, a sentence's last pivot word is found once, and
a closing question is searched for at most ``MAX_CUE_LOOKUPS`` of the turn's cues.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from chimera.conversation.text import normalize

#: A cue is negated by a negation among the few words before it, looked for this many
#: characters back at most (far more than four words of any language need; a bound keeps
#: a sentence of thousands of cues linear).
NEGATION_WINDOW_CHARS: Final = 200
#: A turn ending with a question still closes when the question holds one of its cues;
#: at most this many distinct cues are looked for there (each look reads the question).
MAX_CUE_LOOKUPS: Final = 32

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

AGREE_RE = re.compile(
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
CONSENSUS_RE = re.compile(
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


# --- finding cues ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cue:
    """A cue found in a turn: its category, its weight and the text it matched."""

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


def find_cues(
    sents: Sequence[str], patterns: Sequence[tuple[str, float, re.Pattern[str]]]
) -> list[Cue]:
    """The cues of ``patterns`` in ``sents`` that are neither negated nor pivoted away."""
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
                found.append(Cue(category, weight, match.group(0)))
    return found


def asks(sents: Sequence[str], cues: Sequence[Cue]) -> bool:
    """Whether the turn ends with a question that is not itself part of the cue."""
    if not sents or not sents[-1].rstrip("\"') ").endswith("?"):
        return False
    # The question's own cues come last: looked for first, each is found at once.
    texts = dict.fromkeys(c.text for c in reversed(cues))
    return not any(t in sents[-1] for t in itertools.islice(texts, MAX_CUE_LOOKUPS))


def dissents(text: str) -> bool:
    """Whether ``text`` disagrees anywhere."""
    # Consensus phrases first: "no real disagreement" is not dissent.
    return bool(_DISSENT_RE.search(CONSENSUS_RE.sub(" ", normalize(text))))
