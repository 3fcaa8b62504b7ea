"""Which language a text is in: English, Spanish, French or German, or none of those.

A small, dependency-free identifier: each language is a profile of its most frequent
function words, and a text belongs to the profile whose words make up the largest share of
its own (function words are about half of running text in any of these languages).  A few
neighbouring languages (Italian, Portuguese, Dutch, Polish) have profiles too, so that they
are recognised as *unsupported* rather than taken for their neighbours; text in another
script, or whose best share is low, is ``unsupported``; too little text is ``unknown``.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Final, Literal

Language = Literal["en", "es", "fr", "de", "unsupported", "unknown"]
SUPPORTED: Final = ("en", "es", "fr", "de")

#: Fewer words than this: ``unknown``.
MIN_WORDS: Final = 5
#: The best profile must cover at least this share of the words ...
MIN_SHARE: Final = 0.18
#: ... and at least this many of them.
MIN_HITS: Final = 2
#: Letters outside the Latin script above this share: ``unsupported``.
MAX_FOREIGN_SCRIPT: Final = 0.3

_PROFILES_TEXT: Final = {
    "en": """the of and to a in is it that for on with as was are be this by not or at from
        but have has had an they you we he she his her their i my your our which what who
        will would can could should there been were do does did so if than then also its
        into about these those more very just all some how when no because only both
        it's that's i'm you're we're they're i've you've we've i'd you'd i'll you'll
        don't doesn't didn't isn't aren't wasn't weren't can't couldn't won't wouldn't""",
    "es": """el la los las de del y que en un una es por con para no se su sus al lo como más
        pero o este esta estos estas ese esa son fue ha han hay muy sin sobre también le
        les ya entre cuando todo todos porque qué yo tú usted nos me mi tu ser está están
        si ni hasta desde donde quien cada otro otra puede""",
    "fr": """le la les de des du et un une est en que qui dans pour pas ne sur au aux par
        avec il elle ils elles on nous vous je ce cette ces se son sa ses leur plus mais
        ou comme été sont être a ont fait tout tous très aussi bien si y d l qu c n s
        j m lui même donc car alors""",
    "de": """der die das den dem des und ist in zu ein eine einen einem einer nicht mit von
        für auf sich es auch als an bei aus wie so nach im wird werden sind war hat haben
        oder aber wenn dass ich du er sie wir ihr man noch nur schon mehr sehr kann dann
        zum zur um über durch vor diese dieser dieses kein keine""",
    # Recognised so as to be told apart, never judged.
    "it": """il lo la i gli le di da in con su per tra fra un una uno e è che non si sono del
        della dei delle al alla nel nella ma anche come più questo questa essere ha hanno
        molto se ci quando perché""",
    "pt": """o a os as de do da dos das em no na nos nas um uma é que não se por para com
        mais como mas ao à foi são ser está muito também quando porque isso este esta""",
    "nl": """de het een en van in is dat op te zijn met voor niet aan er ook als bij door
        maar om naar dan nog wel uit worden wordt kan heeft hebben deze dit die ze wij""",
    "pl": """i w na z że do nie się to jest jak o a ale po co tak za od przez dla jego jej
        są był była było być który która które już tylko także oraz lub czy ten ta""",
}
PROFILES: Final = {lang: frozenset(text.split()) for lang, text in _PROFILES_TEXT.items()}
#: The function words of the supported languages (content words are the others).
STOPWORDS: Final = {lang: PROFILES[lang] for lang in SUPPORTED}
ALL_STOPWORDS: Final = frozenset().union(*PROFILES.values())


def identify(ws: Sequence[str], letters: int = 0, foreign: int = 0) -> Language:
    """The language of the casefolded words ``ws``; ``letters``/``foreign``: how many of the
    text's letters there are and how many are outside the Latin script."""
    if letters and foreign / letters > MAX_FOREIGN_SCRIPT:
        return "unsupported" if letters >= 2 * MIN_WORDS else "unknown"
    if len(ws) < MIN_WORDS:
        return "unknown"
    best, best_hits = "", 0
    for lang, profile in PROFILES.items():
        hits = sum(1 for w in ws if w in profile)
        if hits > best_hits:
            best, best_hits = lang, hits
    if best_hits < MIN_HITS or best_hits / len(ws) < MIN_SHARE:
        return "unsupported"
    return best if best in SUPPORTED else "unsupported"  # type: ignore[return-value]


_ASCII_LETTERS: Final = str.maketrans("", "", string.ascii_letters)


def script_counts(text: str) -> tuple[int, int]:
    """How many letters ``text`` has, and how many of them are outside the Latin script."""
    if text.isascii():  # the common case, counted in C
        return len(text) - len(text.translate(_ASCII_LETTERS)), 0
    letters = foreign = 0
    for ch in text:
        if ch.isalpha():
            letters += 1
            if ord(ch) > 0x24F and not 0x1E00 <= ord(ch) <= 0x1EFF:
                foreign += 1
    return letters, foreign
