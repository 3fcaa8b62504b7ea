"""The argument material a simulated speaker draws on: *aspects* of any debatable question.

An aspect (cost, evidence, fairness, …) has the words that show a message is about it, the
short names a reply uses to refer back to it ("the cost point"), claims (clauses that can follow
a lead-in such as "I think"), supporting sentences (a reason or an example) and follow-up
questions.  Nothing here names a topic: the dialogue mentions the topic in its own sentences, and
the same aspect reads naturally whether the subject is car bans or remote work.

A reply answers the aspect the last message was about and brings in one not yet discussed, so a
conversation moves on instead of circling.  No sentence here may carry a closing or consensus
cue ("thanks", "in short", "common ground"…): the simulator closes only on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Aspect:
    """One angle on a question (see the module docstring)."""

    name: str
    cues: frozenset[str]
    refs: tuple[str, ...]
    claims: tuple[str, ...]
    supports: tuple[str, ...]
    questions: tuple[str, ...]


def _aspect(  # noqa: PLR0917 - one row of the table below
    name: str,
    cues: str,
    refs: tuple[str, ...],
    claims: tuple[str, ...],
    supports: tuple[str, ...],
    questions: tuple[str, ...],
) -> Aspect:
    return Aspect(name, frozenset(cues.split()), refs, claims, supports, questions)


ASPECTS: Final[tuple[Aspect, ...]] = (
    _aspect(
        "cost",
        "cost costs money budget budgets afford affordable expensive cheap price prices pay "
        "paying pays bill spend spending",
        ("the cost point", "the question of money", "who pays"),
        (
            "the bill usually lands on the people with the least room in their budget",
            "the savings get counted early while the costs show up years later",
            "nobody has priced the transition honestly",
            "the cheapest option on paper is rarely the cheapest one to live with",
        ),
        (
            "Every plan I have read treats its own costs as a rounding error.",
            "A family that pays twice for the same thing notices long before any ministry does.",
            "Once you add maintenance, the numbers look very different.",
            "Money spent here is not spent on schools or clinics, a trade rarely said out loud.",
        ),
        (
            "Who do you think should carry that cost?",
            "Would your view change if the price doubled?",
            "How would you pay for it without hitting the same people again?",
        ),
    ),
    _aspect(
        "evidence",
        "evidence data study studies research numbers measure measured proof trial trials "
        "pilot pilots results",
        ("the evidence", "what the data shows", "the studies you mentioned"),
        (
            "the data we have comes mostly from places that were already unusual",
            "most of the confident claims rest on a handful of small pilots",
            "the studies measure what is easy to count, not what people actually care about",
            "we would learn more from one honest trial than from another round of opinion pieces",
        ),
        (
            "The pilots that get written up are the ones that worked.",
            "Half the numbers quoted in this debate trace back to the same survey.",
            "When a result only holds in one city, I treat it as a story rather than a finding.",
            "A before-and-after comparison hides everything else that changed in those years.",
        ),
        (
            "What result would actually change your mind?",
            "Which study do you find most convincing, and why?",
            "How would you design a fair test of it?",
        ),
    ),
    _aspect(
        "fairness",
        "fair fairness unfair poor poorer rich wealthy inequality equity vulnerable "
        "elderly disabled low-income access loses",
        ("the fairness question", "who loses out", "the equity side"),
        (
            "the people who gain and the people who lose are not the same people",
            "the burden falls hardest on those who had the fewest choices to begin with",
            "a rule that looks neutral can still be lopsided in practice",
            "those with money will always find a way around it, and everyone else just complies",
        ),
        (
            "Someone on night shifts has very different options from someone with a flexible job.",
            "An older neighbour of mine would simply lose access, and nobody asked her.",
            "The loudest voices at public meetings are rarely the ones most affected.",
            "Exemptions tend to go to those who know how to ask for them.",
        ),
        (
            "Who do you think loses most here?",
            "How would you protect the people with the fewest alternatives?",
            "Is there a version that doesn't lean on the poorest?",
        ),
    ),
    _aspect(
        "practice",
        "practice practical implement implementation enforce enforcement rollout deliver "
        "delivery logistics works working plan plans",
        ("how it works in practice", "the implementation side", "the practical side"),
        (
            "the design is the easy part and the rollout is where it succeeds or fails",
            "enforcement quietly decides what a rule really means",
            "half-built versions of good ideas often do more harm than no change at all",
            "the details that look boring are exactly where it goes wrong",
        ),
        (
            "I've watched a sensible plan stall for two years over one procurement rule.",
            "If the staff who run it aren't convinced, the rules on paper hardly matter.",
            "Phasing it in district by district would tell us a lot before committing everywhere.",
            "A deadline with no capacity behind it just produces exceptions.",
        ),
        (
            "Who would actually run it day to day?",
            "What would you do in the first year?",
            "Where do you expect the rollout to break first?",
        ),
    ),
    _aspect(
        "time",
        "short-term long-term years decade decades future generation generations transition timing "
        "later soon gradual gradually",
        ("the timing question", "the long-term view", "the transition period"),
        (
            "the short-term pain is certain while the long-term gain is only likely",
            "what looks like failure after one year can look obvious after ten",
            "the transition is the part people actually live through",
            "we keep judging a twenty-year change on a two-year horizon",
        ),
        (
            "Most reforms look worst just before they start paying off.",
            "People remember the disruption far longer than they remember the improvement.",
            "A slow start buys time to fix mistakes, but it also gives opponents time to organise.",
            "Ten years is long enough for the people who designed it to have moved on.",
        ),
        (
            "How long would you give it before judging?",
            "What should happen during the transition years?",
            "Would you accept a slower version if it were more certain?",
        ),
    ),
    _aspect(
        "behaviour",
        "behaviour behavior habits habit people incentive incentives choice choices "
        "adapt adapts respond react culture",
        ("the point about behaviour", "how people respond", "the incentives"),
        (
            "people adapt in ways that planners almost never predict",
            "habits change slowly and then all at once",
            "the incentive people actually feel is rarely the one on the policy slide",
            "once something becomes normal, the argument about it mostly disappears",
        ),
        (
            "Give people a cheaper route around a rule and most of them will take it.",
            "My own habits changed only when the easy option changed, not when I was told to.",
            "Surveys ask what people would do, which is not the same as what they do.",
            "Most of the resistance I see is about being told, not about the change itself.",
        ),
        (
            "How do you expect people to react in the first months?",
            "What would make the new habit the easy one?",
            "Do you think people would accept it once it became normal?",
        ),
    ),
    _aspect(
        "local",
        "local place places city cities town towns region regions rural urban neighbourhood "
        "neighborhood community communities context",
        ("the local differences", "the point about place", "context"),
        (
            "what works in a dense city can fail completely in a small town",
            "a single national rule ignores how different places really are",
            "the places that copy an idea rarely have the conditions that made it work",
            "local knowledge tends to get overruled by whoever writes the guidelines",
        ),
        (
            "A town with one bus an hour is not a smaller version of a capital city.",
            "The examples everyone cites come from a few wealthy places with unusual histories.",
            "Neighbourhood groups often know the problem better than the people drafting the plan.",
            "Even two districts of the same city can need opposite things.",
        ),
        (
            "Should it look the same everywhere?",
            "Which places would you start with?",
            "How much should be left for local decisions?",
        ),
    ),
    _aspect(
        "side_effects",
        "side effect effects unintended consequence consequences knock-on risk risks backfire "
        "backfires downside downsides",
        ("the side effects", "the unintended consequences", "the downside risk"),
        (
            "the second-order effects may matter more than the intended ones",
            "every fix shifts the problem somewhere less visible",
            "a measure aimed at one group always spills over onto another",
            "some of the worst outcomes would come from getting it half right",
        ),
        (
            "When one street gets quieter, the traffic usually turns up on the next one.",
            "Rules written to stop abuse end up slowing down the honest majority.",
            "Prices in the areas next door tend to move before anyone notices.",
            "What gets pushed out of sight is not the same as what gets solved.",
        ),
        (
            "What would be the first sign that it's backfiring?",
            "Which side effect worries you most?",
            "How would you catch the knock-on effects early?",
        ),
    ),
    _aspect(
        "alternatives",
        "alternative alternatives instead option options compromise middle hybrid mix "
        "balance tradeoff trade-off",
        ("the alternatives", "the middle ground", "other options"),
        (
            "the choice is rarely as binary as the debate makes it sound",
            "a narrower version would capture most of the benefit at a fraction of the fight",
            "we spend so long on the headline option that nobody examines the modest ones",
            "the best outcome might be a mix that neither camp would propose on its own",
        ),
        (
            "A targeted version, aimed at the worst cases first, would be far easier to defend.",
            "Trials with a clear end date let people see the results before deciding for good.",
            "Often a smaller change to the defaults does more than a ban or a mandate.",
            "Pricing it properly can achieve much of the same without forbidding anything.",
        ),
        (
            "What would a modest first step look like to you?",
            "Is there a compromise you could live with?",
            "Why not start with the narrower version?",
        ),
    ),
    _aspect(
        "trust",
        "trust government governments politicians institution institutions authority "
        "authorities accountability legitimacy public consent",
        ("the trust issue", "the question of legitimacy", "public consent"),
        (
            "people accept hard changes when they trust the people asking for them",
            "a good idea imposed without consent usually gets reversed at the next election",
            "the process matters almost as much as the outcome",
            "trust, once spent on a badly run scheme, is very hard to earn back",
        ),
        (
            "Consultations that happen after the decision convince nobody.",
            "When the rules change every year, people stop planning around them.",
            "Reversals teach people to wait a policy out rather than adapt to it.",
            "The public can tell the difference between being persuaded and being managed.",
        ),
        (
            "How would you bring sceptical people along?",
            "Who should have the final say?",
            "What would make people trust the process?",
        ),
    ),
)

#: Aspects by name.
BY_NAME: Final = {a.name: a for a in ASPECTS}
