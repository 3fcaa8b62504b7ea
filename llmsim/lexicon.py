"""Word lists: stop words, prompt words, a sentiment lexicon, and words that end a noun phrase."""

from __future__ import annotations


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Verbs that often follow a noun directly ("families love", "managers worry"): not phrase heads.
COMMON_VERBS = _word_set(
    "love loves worry worries argue argues believe believes suggest suggests show shows "
    "agree agrees "
    "hope hopes want wants need needs seem seems feel feels prefer prefers expect expects say says "
    "think thinks remain remains become becomes continue continues matter matters keep keeps "
    "fear fears doubt doubts insist insists warn warns note notes"
)
#: Labels that look like "Speaker:" prefixes but introduce a field, not a person.
NOT_SPEAKERS = _word_set(
    "text note notes summary input output topic task context instructions instruction example "
    "format schema json response answer question rules goal persona style system important "
    "source document transcript conversation title date warning tip"
)

STOP_WORDS = _word_set(
    """
    a about above after again against all almost also although always am among an and another any
    anyone anything are aren't around as at away back be became because become been before being
    below between both but by can can't cannot could couldn't did didn't do does doesn't doing done
    don't down during each either else enough even ever every everyone everything few for from
    further get gets getting give given go goes going gone got had hadn't has hasn't have haven't
    having he he'd he'll he's her here here's hers herself him himself his how how's however i i'd
    i'll i'm i've if in into is isn't it it's its itself just keep know known let let's like likely
    lot lots made make makes making many may maybe me might mine more most much must mustn't my
    myself need needs neither never no nor not nothing now of off often oh ok okay on once one ones
    only onto or other others otherwise our ours ourselves out over own per perhaps put quite rather
    really said same say says see seem seems seen shall shan't she she'd she'll she's should
    shouldn't since so some someone something sometimes still such sure take than that that's the
    their theirs them themselves then there there's these they they'd they'll they're they've thing
    things think this those though through thus to too toward towards under until up upon us use
    used using very via want wants was wasn't way ways we we'd we'll we're we've well were weren't
    what what's whatever when when's where where's whether which while who who's whom whose why
    why's will with within without won't would wouldn't yeah yes yet you you'd you'll you're you've
    your yours yourself yourselves
    actually agree anyway bit certainly clearly definitely especially exactly fairly good great
    indeed kind less mean means mostly point points right simply somewhat sort true truly whole
    first second third new old big small another anything everybody nobody somebody either
    thanks thank hello hey please future today people time times year years world place part fact
    case lot idea ideas
    """
)

#: Words of prompts and instructions: never a topic, never a keyword of the content.
PROMPT_WORDS = _word_set(
    """
    answer answers assistant brief briefly concise conversation conversations describe discuss
    discussion explain field fields following format instruction instructions json keys list
    message messages output please prompt reply replies respond response responses return schema
    sentence sentences speaker speakers summarise summarize summary text topic turn turns user
    valid write analyse analyze analysis provide given based object objects persona role
    start begin continue next opening short shorter long longer keep tell talk talking explain
    describe give share chat
    """
)

POSITIVE_WORDS = _word_set(
    """
    good great excellent positive benefit benefits beneficial improve improved improves improvement
    success successful succeed gain gains growth grow growing strong stronger strength helpful help
    helps effective efficient progress promising optimistic hope hopeful opportunity opportunities
    advantage advantages valuable value love like enjoy enjoyed happy glad pleased support supports
    supported agree agreed best better win wins winning safe secure stable healthy thrive thriving
    fair robust reliable clear innovative creative useful boost boosts prosper prosperity welcome
    encouraging impressive remarkable wonderful fantastic delighted satisfied solid resilient
    affordable accessible empower empowers empowering fix fixed solve solved solution solutions
    """
)

NEGATIVE_WORDS = _word_set(
    """
    bad poor negative harm harms harmful damage damaging risk risks risky threat threats danger
    dangerous fail fails failed failure loss losses lose losing decline declining weak weaker
    weakness problem problems issue issues crisis concern concerns worried worry worrying fear
    fears afraid hate dislike angry anger sad unhappy disappointed disappointing wrong worse worst
    costly expensive unfair unsafe unstable unreliable difficult hard struggle struggling conflict
    corrupt corruption waste wasteful broken collapse crash shortage shortages inflation
    unemployment pollution toxic violent violence abuse bias biased misleading fraud scandal
    controversial criticism criticize criticized reject rejected oppose opposed against doubt
    doubts skeptical uncertain uncertainty terrible awful horrible dire severe
    """
)

NEGATORS = _word_set("not no never neither nor hardly barely without n't cannot isn't")
