"""Short, human-like transcripts for the ending and quality tests.

Written in the way real models talk (not in the simulator's stock phrases), so the detectors
are tested on closings, agreements and pivots they have never seen verbatim.
"""

from __future__ import annotations

from collections.abc import Sequence

from chimera.models import Provider, TranscriptTurn

CLAUDE: tuple[Provider, str] = ("anthropic", "claude-sonnet-5-5")
GEMINI: tuple[Provider, str] = ("google", "gemini-3.5-flash")
GPT: tuple[Provider, str] = ("openai", "gpt-5-mini")
CLAUDE_GEMINI = (CLAUDE, GEMINI)


def transcript(
    texts: Sequence[str],
    speakers: Sequence[tuple[Provider, str]] = (CLAUDE, GEMINI),
    *,
    latency_ms: float = 1_800.0,
) -> list[TranscriptTurn]:
    """Turns taken in rotation by ``speakers`` (speaker label = model name)."""
    turns = []
    for i, text in enumerate(texts):
        provider, model = speakers[i % len(speakers)]
        turns.append(
            TranscriptTurn(
                turn_index=i,
                speaker=model,
                provider=provider,
                model=model,
                content=text,
                input_tokens=40 * (i + 1),
                output_tokens=len(text) // 4,
                latency_ms=latency_ms,
            )
        )
    return turns


CARS = [
    "Should cities ban cars from their centres? I'd argue a full ban is too blunt, but sharply "
    "reducing car traffic downtown makes sense. Congestion, air pollution and road deaths are "
    "concentrated in dense cores, and those are exactly the places where walking, cycling and "
    "transit can carry most trips. What do you think is the strongest argument against "
    "restricting cars?",
    "The strongest argument against restricting cars is access. Not everyone can walk or cycle: "
    "older residents, people with disabilities, tradespeople carrying tools, parents with small "
    "children. If a city restricts cars before transit is genuinely good, it shifts the burden "
    "onto the people with the fewest alternatives. Pedestrianised centres in European cities "
    "worked because frequent trams and buses were already in place.",
    "That's a fair concern, and it's why I'd sequence it: invest in transit first, then restrict "
    "cars. Access exemptions matter too. Delivery windows, disabled permits and residents' "
    "parking can coexist with a car-light centre. The evidence from Oslo and Pontevedra suggests "
    "retail didn't collapse; foot traffic rose once the streets became pleasant. Do you think "
    "exemptions undermine the policy?",
    "Exemptions can be abused, but I don't think they undermine the policy if they're narrow and "
    "enforced. The bigger risk is political: drivers who lose a parking space notice it "
    "immediately, while the benefits of cleaner air arrive slowly. Pontevedra succeeded partly "
    "because the mayor stayed in office long enough to see results. Cities should pilot "
    "restrictions, measure pollution and foot traffic, and publish the data.",
    "Piloting with published data is a good idea, because it turns an ideological fight about "
    "cars into a question of evidence. I'd add congestion pricing as a middle path: cars stay "
    "allowed, but drivers pay for the street space they use, and the revenue can fund the "
    "transit improvements that have to come first.",
    "Congestion pricing is a sensible middle path, and London and Stockholm show it can cut "
    "traffic without an outright ban on cars. So, to sum up where we've landed: transit first, "
    "narrow exemptions, pilots with published data, and pricing rather than prohibition. I've "
    "really enjoyed thinking this through with you.",
    "That's a fair summary, and I'd sign up to all four points. Thank you for a thoughtful and "
    "genuinely useful conversation.",
]

#: A real disagreement that keeps going: nobody closes, nobody concedes.
NUCLEAR = [
    "Should countries build more nuclear power? I think they should: it is low-carbon, runs "
    "around the clock and uses very little land compared with wind or solar farms.",
    "I disagree. New nuclear plants in Europe and the US have run years late and billions over "
    "budget. Every dollar spent on a reactor that arrives in 2040 is a dollar not spent on "
    "renewables and storage that cut emissions this decade.",
    "Thank you for the point about cost overruns, but I think it proves less than you suggest. "
    "Korea and France built reactors on time when they standardised designs and kept trained "
    "crews together. The overruns say more about stop-start construction than about nuclear "
    "itself.",
    "Standardisation helps, but it assumes a political commitment lasting decades, and few "
    "democracies sustain that. Meanwhile battery prices keep falling. Why bet on reactors when "
    "storage is improving so quickly?",
    "Because storage covers hours, not weeks. A cold windless week in January still needs firm "
    "power, and today that means gas. Reactors are one of the few firm low-carbon options we "
    "actually know how to build at scale.",
    "Firm power matters, I grant you, yet geothermal, hydro and long-distance transmission can "
    "also supply it. I'm not convinced reactors are the cheapest way to cover those weeks. What "
    "would it take to change your mind on cost?",
]

#: "Thanks" that opens a rebuttal, and a speaker who proposes closing but asks one more question.
THANKS_BUT = [
    "Remote work has been good for innovation, in my view. Teams hire from anywhere, people "
    "get long stretches of focus, and companies save on offices they barely used.",
    "Thanks, that's a helpful way to frame it, but I'm not persuaded on innovation. The "
    "chance encounters in a corridor, the whiteboard session that nobody planned, are hard to "
    "schedule on a video call.",
    "Thanks for raising serendipity. Still, offices were never designed for it either; most "
    "people sat at desks with headphones on. Deliberate in-person weeks might create more "
    "genuine collisions than five days of commuting.",
    "I think we've covered the productivity side. Before we wrap up, though, what about junior "
    "staff who learn by watching senior colleagues work?",
    "Junior staff are the hardest case. Remote mentoring works when seniors narrate their work "
    "in writing and pair on screens, but most companies never invested in that habit.",
]

#: Closing proposed as a question and accepted.
CALL_IT_A_DAY = [
    "Is a four-day week realistic for most businesses? Trials in Iceland and the UK kept output "
    "steady while cutting hours.",
    "Those trials were mostly offices. Hospitals, shops and factories need staff present, so "
    "a four-day week there means hiring more people or paying overtime.",
    "True, and sectors will need different models, such as rotating rosters. The trials still "
    "show that hours and output are less tightly linked than managers assume.",
    "I agree the link is looser than assumed, especially for knowledge work. We seem to agree "
    "it works for some sectors and needs care for others. Shall we call it a day there?",
    "Yes, let's call it a day. Thank you, this was fun.",
]

#: A single goodbye ends the conversation.
GOODBYE = [
    "What's the best first programming language for children?",
    "Scratch for young children, because blocks remove syntax errors, then Python around age "
    "ten or eleven.",
    "Python makes sense; the syntax is forgiving and the libraries are fun for games.",
    "I've got to head off now, but this was helpful. Goodbye!",
]

#: A closing remark that is negated, and one buried before more argument.
NOT_DONE = [
    "Are tariffs good for factory workers? They promise to protect jobs, but they raise the "
    "price of everything those workers buy.",
    "I don't think we've covered the cost side yet. Tariffs on steel protected perhaps a few "
    "thousand jobs while raising costs for every manufacturer that uses steel.",
    "In short, you'd say the protection is narrow and the costs are broad. Fair, but there is "
    "more to it. Supply chains that leave a region rarely return, and towns built around one "
    "plant pay a price that averages hide. Retraining promises have mostly failed those towns. "
    "Shouldn't policy weigh that concentrated damage more heavily?",
    "Concentrated damage deserves weight, yes, but wage insurance and relocation support target "
    "it directly, without taxing every consumer. Tariffs are a blunt tool for a local problem.",
    "Thanks for the discussion so far, but wage insurance has barely been tried at scale. Until "
    "it has, towns will keep asking for tariffs because tariffs are the tool they can see.",
]

#: The two sides end up agreeing outright.
CONVERGE = [
    "Should schools ban phones during the day? I lean towards a ban: attention, bullying and "
    "sleep all seem to suffer when phones are always at hand.",
    "I was sceptical, because phones help parents reach children and some pupils use them for "
    "learning. But the studies from Norway and Spain show better grades and less bullying after "
    "bans, especially for girls.",
    "Those studies persuaded me too. A locker or pouch system during lessons, with phones "
    "allowed at the end of the day, handles the parents' concern.",
    "Then we're on the same page: keep phones in pouches during the school day, return them at "
    "the end, and give families a school number for emergencies.",
    "Exactly right. A ban during the day, phones back at home time, and an emergency line for "
    "parents is the policy I'd back as well.",
]

#: Polite agreement at the start of each turn, but the argument keeps moving.
AGREE_AND_CONTINUE = [
    "How should cities pay for public transport? Fares alone rarely cover the costs, so most "
    "systems lean on taxes.",
    "Great point! Fares cover maybe a third of costs in most cities. Land value capture, taxing "
    "the rise in property prices near new stations, is an underused alternative.",
    "You're right, land value capture works well in Hong Kong. Parking levies on employers are "
    "another option, and they also discourage driving to work.",
    "Good point about parking levies, and Nottingham's levy funded a tram extension. The "
    "question is whether fare-free transit makes sense, as Luxembourg tried.",
]

#: A model stuck in a loop: the last turn is the second turn again, nearly word for word.
LOOPING = [
    "Should we colonise Mars? The engineering challenges are enormous, from radiation to "
    "growing food in poor soil.",
    "The key challenge is radiation: without a magnetic field, settlers would need thick "
    "shielding or underground habitats to survive long stays on the surface.",
    "Radiation matters, but so does the cost. A single crewed mission could cost hundreds of "
    "billions of dollars.",
    "Cost is real, yet reusable rockets are bringing it down quickly, and private capital is "
    "now part of the picture.",
    "The key challenge is radiation: without a magnetic field, settlers would need thick "
    "shielding or underground habitats to survive long stays on Mars.",
]

#: Each new turn stitched together from what was already said.
RECYCLING = [
    "Universal basic income would give everyone a floor to stand on. It simplifies welfare and "
    "removes the trap where earning more means losing benefits.",
    "The worry is cost. Paying everyone a meaningful amount would need large tax rises, and the "
    "trials so far were small and short.",
    "It simplifies welfare and removes the trap where earning more means losing benefits. The "
    "worry is cost, and the trials so far were small and short.",
    "Paying everyone a meaningful amount would need large tax rises. It simplifies welfare and "
    "removes the trap where earning more means losing benefits.",
    "The trials so far were small and short. Paying everyone a meaningful amount would need "
    "large tax rises, and it removes the trap where earning more means losing benefits.",
]

#: Each turn ignores the one before it.
OFF_TOPIC = [
    "Should cities ban cars from their centres? Congestion and pollution are worst downtown.",
    "My favourite bread recipe uses a sourdough starter, a long cold proof overnight and a very "
    "hot cast-iron pot for the bake.",
    "The Byzantine empire lasted nearly a thousand years after Rome fell, largely thanks to "
    "Constantinople's walls and a professional bureaucracy.",
    "For a marathon, most runners should build mileage slowly, add one long run each week and "
    "taper for three weeks before race day.",
    "Jazz harmony leans on extended chords: ninths, elevenths and thirteenths stacked over the "
    "root give that rich, unresolved colour.",
    "Houseplants like pothos and snake plants survive low light and irregular watering, which "
    "makes them ideal for offices.",
    "Cryptographic hash functions map inputs of any size to fixed-length digests, and small "
    "changes in the input scramble the output completely.",
]
