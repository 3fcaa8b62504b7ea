"""Sentence frames the dialogue composes a reply from; the argument itself is in
:mod:`llmsim.points`.

Slots: ``{topic}`` (the subject, as the speaker would name it), ``{ref}``/``{ref2}`` (a way of
referring to what the other side said or to a point already made), ``{quote}`` (a clause quoted
verbatim from the last message), ``{claim}`` (a clause from an aspect) and ``{persona}`` (the
speaker's role from the system prompt).  Sentences are capitalised after filling, so a frame may
start with a slot.

Only the closing banks (:data:`CLOSINGS`, :data:`THANKS`, :data:`CLOSING_REPLIES`) may carry a
closing cue: every other frame must read as a turn that goes on.
"""

from __future__ import annotations

from typing import Final

#: How an opening turn names the subject before making its first point.
OPENERS: Final = (
    "Let me start with {topic}.",
    "I'd like to open on {topic}, because it's less simple than it sounds.",
    "On {topic}, here is where I'd begin.",
    "{topic} comes up a lot, and I think the usual framing misses something.",
    "Before we get into the details of {topic}, let me put a position on the table.",
    "I've been thinking about {topic} lately.",
    "There's a lot packed into {topic}, so I'll start with one piece of it.",
)

#: Reactions to the last message, by stance.
AGREE: Final = (
    "You're right about {ref}.",
    "I think that's right on {ref}.",
    "Yes, people underrate {ref}.",
    "I'm with you on {ref}.",
    'I like the way you put it: "{quote}".',
    "That's a fair point about {ref}.",
    "I'd look at {ref} too.",
)
DISAGREE: Final = (
    "I'm not sure I'd give {ref} that much weight.",
    "I see {ref} differently.",
    'I doubt that "{quote}", at least not everywhere.',
    "I'd push back on {ref}.",
    "That's where I part ways with you, because {ref} can cut both ways.",
    'When you say "{quote}", I think that overstates it.',
    "I'm less convinced than you are about {ref}.",
)
PARTIAL: Final = (
    "I take {ref} seriously, but it's only half the picture.",
    'There\'s something to "{quote}", though it leaves a lot out.',
    "I half agree on {ref}.",
    "Fair enough on {ref}, up to a point.",
    "I accept the point about {ref}, if not where you take it.",
)

#: Answers to the question the last message asked, before the turn's own point.
ANSWERS: Final = (
    "To answer your question, I think {claim}.",
    "On your question: {claim}.",
    "Good question. I'd say {claim}.",
    "As for your question, my honest answer is that {claim}.",
)

#: What comes after a reaction and before the new claim, by stance.
BRIDGES: Final = {
    "agree": (
        "And I'd add that",
        "What I'd add is that",
        "Building on that,",
        "It goes further, too:",
        "There's a related point:",
    ),
    "disagree": (
        "The bigger issue, to me, is that",
        "What matters more is that",
        "I'd look at something else first:",
        "My worry is that",
    ),
    "partial": (
        "The other half is that",
        "What it leaves out is that",
        "Where I'd go further is that",
        "The missing piece is that",
    ),
}

#: Lead-ins to a claim, with or without the topic.
LEADS: Final = (
    "I think",
    "My sense is that",
    "What I keep coming back to is that",
    "The way I see it,",
    "In my experience,",
    "Here's what strikes me:",
)
TOPIC_LEADS: Final = (
    "With {topic},",
    "When it comes to {topic},",
    "In the case of {topic},",
    "For {topic} in particular,",
)

#: A second claim in the same turn.
ALSO: Final = (
    "There's also the fact that",
    "Another thing:",
    "On top of that,",
    "And separately,",
)

PERSONA: Final = (
    "As {persona}, I see this up close.",
    "Speaking as {persona}, that is not an abstract question for me.",
    "In my work as {persona}, it comes up all the time.",
    "From where I sit as {persona}, it looks rather different.",
)

#: Follow-ups that fit any aspect.
QUESTIONS: Final = (
    "What's your take?",
    "Do you see it differently?",
    "Where would you draw the line?",
    "What am I missing?",
    "Does that match what you've seen?",
)

CLOSINGS: Final = (
    "I think we've covered the main ground on {topic}.",
    "To sum up, we agree on {ref} and still differ on {ref2}.",
    "Let's leave it there; this has been a useful conversation about {topic}.",
    "I think that's a good place to wrap up.",
    "In short, {ref} is where the real question lies, and we've both made our case.",
    "To sum up: {ref} matters, {ref2} complicates it, and the details decide.",
)

#: Sign-offs, after a closing move or in answer to one.
THANKS: Final = (
    "Thanks, this was a good exchange.",
    "We've covered a lot; thank you for a thoughtful discussion.",
    "I think we've reached a natural end, and I appreciate the back and forth.",
)

CLOSING_REPLIES: Final = (
    "Thank you too, I enjoyed this.",
    "Agreed, let's wrap up here. Thanks for the thoughtful discussion.",
    "Likewise, this was a good exchange.",
    "Thanks, that's a fair summary of where we landed.",
    "Same here; I think we've covered it well.",
    "Thank you. I'll keep thinking about {ref}.",
)

#: Words that mark a turn as a closing move (matched lower-cased, as substrings).
CLOSING_MARKERS: Final = (
    "to sum up",
    "wrap up",
    "we've covered",
    "we have covered",
    "good exchange",
    "thank you",
    "thanks",
    "leave it there",
    "natural end",
    "goodbye",
    "in conclusion",
    "in short",
)
