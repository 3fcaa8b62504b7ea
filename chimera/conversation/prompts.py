"""What each speaker sees: its persona as the system prompt, its own past turns as
``assistant`` and everyone else's as ``user``; the opener is seeded by the topic."""

from __future__ import annotations

from chimera.conversation.state import ConversationState
from chimera.events.ids import job_of_event
from chimera.llm.types import CallMeta, LLMRequest, Message, Role

#: v2: a job's later passes over its topics ask for another angle (``opener``).
PROMPT_REF = "conversation.turn.v2"

DEFAULT_PERSONA = (
    "Think for yourself: agree where the others are right, push back where they are not, "
    "and bring in concrete examples."
)


def seat(state: ConversationState, turn_index: int) -> int:
    """The position of the participant who speaks turn ``turn_index``: turns are told
    apart by position, never by label (two participants may share one in old states)."""
    return turn_index % len(state.participants)


def system_prompt(state: ConversationState, turn_index: int) -> str:
    speaker = state.speaker_for(turn_index)
    me = seat(state, turn_index)
    others = [p.speaker for i, p in enumerate(state.participants) if i != me] or ["the others"]
    lines = [
        f"You are {speaker.speaker}, in a discussion with {', '.join(others)}.",
        f"Topic: {state.topic.title}",
    ]
    if state.topic.description:
        lines.append(state.topic.description)
    lines.append(speaker.persona or DEFAULT_PERSONA)
    lines.append(
        "Reply in a few sentences, in your own voice, to what was just said. "
        "When the discussion has run its course, wrap it up."
    )
    return "\n".join(lines)


def opener(state: ConversationState) -> str:
    """The first user message.  A job that cycles its topics (``metadata.job_cycle`` > 0)
    asks each later pass for another angle, so the same topic and pairing do not make the
    same conversation again (a near-duplicate, rejected)."""
    first = state.participants[0].speaker
    text = f"The topic is: {state.topic.title}. {first} opens the discussion."
    cycle = state.metadata.get("job_cycle")
    if isinstance(cycle, int) and not isinstance(cycle, bool) and cycle > 0:
        text += (
            f" This is discussion number {cycle + 1} on this topic: open with an angle"
            " other than the most obvious one."
        )
    return text


def messages_for(state: ConversationState, turn_index: int) -> tuple[Message, ...]:
    """The transcript so far from the speaker's side, starting with the opener and
    merging consecutive turns of the same role (APIs want roles to alternate)."""
    me = seat(state, turn_index)
    merged: list[tuple[Role, str]] = [("user", opener(state))]
    for turn in state.turns[:turn_index]:
        own = seat(state, turn.turn_index) == me
        role: Role = "assistant" if own else "user"
        text = turn.content if own else f"{turn.speaker}: {turn.content}"
        if merged[-1][0] == role:
            merged[-1] = (role, f"{merged[-1][1]}\n\n{text}")
        else:
            merged.append((role, text))
    if merged[-1][0] == "assistant":  # the speaker spoke last: ask it to go on
        merged.append(("user", "Please continue."))
    return tuple(Message(role=r, content=c) for r, c in merged)


def turn_request(
    state: ConversationState, turn_index: int, *, max_output_tokens: int
) -> LLMRequest:
    speaker = state.speaker_for(turn_index)
    return LLMRequest(
        provider=speaker.provider,
        endpoint=speaker.endpoint,
        model=speaker.model,
        system=system_prompt(state, turn_index),
        messages=messages_for(state, turn_index),
        # The participant's own cap within the configured one (a state may predate a change).
        max_output_tokens=min(speaker.max_tokens or max_output_tokens, max_output_tokens),
        temperature=speaker.temperature,
        top_p=speaker.top_p,
        meta=CallMeta(
            task="turn",
            owner_type="conversation",
            owner_id=state.conversation_id,
            step=str(turn_index),
            prompt_ref=PROMPT_REF,
            job_id=_job_of(state),
        ),
    )


def _job_of(state: ConversationState) -> str | None:
    """The conversation's job (its event id says so and its metadata agree), if any."""
    job = job_of_event(state.event_id)
    return job if job is not None and state.metadata.get("job_id") == job else None
