"""The phrase bank the dialogue generator draws from.

Slots: ``{topic}`` (the conversation's subject), ``{kw}``/``{kw2}`` (keywords, from the last
message when there is one), ``{quote}`` (a clause quoted verbatim from the last message) and
``{persona}`` (the speaker's role from the system prompt).  Sentences are capitalised after
filling, so a template may start with a slot.
"""

from __future__ import annotations

from typing import Final

OPENERS: Final = (
    "Let's start with {topic}.",
    "I'd like to open with a simple question about {topic}: what actually matters most here?",
    "{topic} is a good place to begin, because it touches on {kw} and {kw2} at once.",
    "When people talk about {topic}, they usually jump straight to {kw}, so let me start there.",
    "There is a lot to unpack in {topic}, but the core of it, for me, is {kw}.",
    "Let me set the scene on {topic} before we get into the details.",
    "The first thing worth saying about {topic} is that it is rarely as simple as it looks.",
    "I've been thinking about {topic} a lot lately, especially the part about {kw}.",
    "To get us going on {topic}, I'll put a position on the table and you can test it.",
    "Here's my opening thought on {topic}: {kw} deserves more attention than it gets.",
    "{topic} keeps coming up, and I think the reason is {kw}.",
    "Before we argue about {topic}, it helps to agree on what {kw} means.",
)

AGREE: Final = (
    'When you say "{quote}", I think you\'re right.',
    'I agree with your point that "{quote}".',
    "You make a fair point about {kw}.",
    'Yes, "{quote}" is exactly the crux of it.',
    "That matches what I've seen about {kw}.",
    "I'm with you on {kw}, and I'd go a step further.",
    'I like how you put it: "{quote}".',
    "That's a strong point about {kw}, and it's often missed.",
    'Agreed. "{quote}" is hard to argue with.',
    "You're right to bring up {kw} here.",
    "Good point on {kw} and {kw2}; they really do go together.",
)

DISAGREE: Final = (
    'I\'m not sure I agree that "{quote}".',
    "I'd push back a little on {kw}.",
    'I see it differently. "{quote}" assumes more than the evidence shows.',
    "I'm less convinced about {kw} than you are.",
    "That's where I part ways with you: {kw} cuts both ways.",
    'Respectfully, "{quote}" overstates the case.',
    "I don't think {kw} carries as much weight as you suggest.",
    "I'd challenge the idea that {kw} settles the question.",
    'Hmm, "{quote}" sounds right, but I doubt it holds up in practice.',
    "I have to disagree on {kw}, at least as you framed it.",
)

PARTIAL: Final = (
    'There\'s something to "{quote}", but it leaves out {kw2}.',
    "I partly agree on {kw}, though I'd frame it differently.",
    'You\'re half right: "{quote}" is true, yet {kw2} complicates it.',
    "I accept the point about {kw}, but not the conclusion you draw from it.",
    'Fair enough on "{quote}", although I\'d add a caveat about {kw2}.',
    "On {kw} we agree; on {kw2} I'm still not persuaded.",
    "That's true as far as it goes, but {kw2} matters too.",
)

PARAPHRASE: Final = (
    "If I understand you, the heart of it is {kw} versus {kw2}.",
    "So you're saying {kw} is what drives {kw2}?",
    "Your argument, as I read it, rests on {kw}.",
    "In other words, you see {kw} as the deciding factor.",
    "Let me restate that: {kw} first, and {kw2} follows from it.",
    "You seem to be treating {kw} as the starting point.",
)

DEVELOP: Final = (
    "Much of {topic} comes down to how we weigh {kw} against {kw2}.",
    "One thing that often gets overlooked is the role of {kw}.",
    "In practice, {kw} tends to matter more than people expect.",
    "Consider what happens to {kw} when {kw2} changes.",
    "History suggests that {kw} rarely moves on its own.",
    "The evidence on {kw} is more mixed than it first appears.",
    "A concrete example helps: think about how {kw} plays out for ordinary people.",
    "The trade-off between {kw} and {kw2} is where the real disagreement lies.",
    "If we get {kw} wrong, the rest of {topic} doesn't much matter.",
    "There's a short-term and a long-term story about {kw}, and they don't always match.",
    "I'd also separate {kw} from {kw2}; they're easy to conflate.",
    "Incentives around {kw} explain a lot of what we see.",
    "The people most affected by {kw} are rarely the ones deciding about it.",
    "Small changes in {kw} can have outsized effects on {kw2}.",
    "What worries me is that {kw} is hard to measure well.",
    "Any serious answer on {topic} has to account for {kw}.",
    "It's tempting to treat {kw} as a technical question, but it is also a question of values.",
    "The strongest version of the other side's case rests on {kw2}.",
    "We should be honest that nobody fully understands {kw} yet.",
    "Local context matters: {kw} looks very different from place to place.",
    "The costs of {kw} are visible now, while the benefits of {kw2} arrive later.",
    "I keep coming back to {kw}, because it connects so much of {topic}.",
    "Good data on {kw2} would settle more of this than any argument.",
    "There's a risk of overcorrecting on {kw}.",
    "The second-order effects of {kw} are where things get interesting.",
    "A useful test is to ask who benefits from {kw} and who pays for it.",
    "Framing {topic} as a choice between {kw} and {kw2} may itself be the mistake.",
    "Whatever we decide about {kw}, it should be reversible if we turn out to be wrong.",
)

PERSONA: Final = (
    "Speaking as {persona}, I tend to look at {kw} first.",
    "From where I sit as {persona}, {kw} is the part that keeps me up at night.",
    "As {persona}, I've learned to be careful with claims about {kw}.",
    "In my work as {persona}, {kw} comes up constantly.",
    "Wearing my hat as {persona}, I'd say {kw2} is underrated.",
)

QUESTIONS: Final = (
    "How do you see {kw} fitting into this?",
    "What would change your mind about {kw}?",
    "Do you think {kw2} matters as much as {kw}?",
    "Where would you draw the line on {kw}?",
    "What evidence would convince you either way on {kw}?",
    "Is there a version of {kw} you'd actually support?",
    "How would you explain {kw} to someone new to {topic}?",
    "What do you make of the argument about {kw2}?",
    "Who do you think gains the most from {kw}?",
    "Would you say the same if {kw2} were different?",
    "What's the strongest counterexample you can think of?",
    "Which part of {topic} do you think we're still missing?",
)

CLOSINGS: Final = (
    "I think we've covered the main ground on {topic}.",
    "To sum up, we agree on {kw} and still differ on {kw2}.",
    "Let's leave it there; this has been a useful conversation about {topic}.",
    "I think that's a good place to wrap up.",
    "In short, {kw} is where the real question lies, and we've both made our case.",
    "To sum up: {kw} matters, {kw2} complicates it, and the details decide.",
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
    "Thank you. I'll keep thinking about {kw}.",
)

ALL_BANKS: Final = (
    OPENERS, AGREE, DISAGREE, PARTIAL, PARAPHRASE, DEVELOP, PERSONA, QUESTIONS, CLOSINGS, THANKS,
    CLOSING_REPLIES,
)  # fmt: skip

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
