"""What each speaker sees."""

from __future__ import annotations

import itertools

from chimera.conversation.prompts import messages_for, system_prompt, turn_request
from chimera.conversation.state import ConversationState
from chimera.models import ConversationRequest, TranscriptTurn


def state_with(
    participants: list[dict[str, str]], turns: list[tuple[str, str]]
) -> ConversationState:
    request = ConversationRequest.model_validate(
        {
            "event_id": "e",
            "topic": {"title": "Should cities ban cars?", "description": "Urban policy."},
            "participants": participants,
        }
    )
    state = ConversationState.start("conv-1", request, timeout_s=60)
    for i, (speaker, text) in enumerate(turns):
        p = next(p for p in state.participants if p.speaker == speaker)
        state.turns.append(
            TranscriptTurn(
                turn_index=i, speaker=speaker, provider=p.provider, model=p.model, content=text
            )
        )
    return state


TWO = [
    {
        "provider": "anthropic",
        "model": "claude-sonnet-5-5",
        "name": "Ada",
        "persona": "A cautious planner.",
    },
    {"provider": "google", "model": "gemini-3.5-flash", "name": "Bo"},
]


def test_the_opener_is_seeded_by_the_topic() -> None:
    state = state_with(TWO, [])
    (only,) = messages_for(state, 0)
    assert (
        only.role == "user"
        and "Should cities ban cars?" in only.content
        and "Ada opens" in only.content
    )


def test_a_jobs_later_pass_over_a_topic_asks_for_another_angle() -> None:
    first = state_with(TWO, [])
    again = state_with(TWO, [])
    again.metadata["job_cycle"] = 2
    (opening,) = messages_for(first, 0)
    (later,) = messages_for(again, 0)
    assert later.content.startswith(opening.content)
    assert "discussion number 3 on this topic" in later.content
    assert "discussion number" not in opening.content


def test_own_turns_are_assistant_and_others_are_user() -> None:
    state = state_with(
        TWO, [("Ada", "Ban them."), ("Bo", "Too strict."), ("Ada", "Fine, limit them.")]
    )
    bo = messages_for(state, 3)
    assert [m.role for m in bo] == ["user", "assistant", "user"]
    assert bo[1].content == "Too strict."
    assert bo[2].content == "Ada: Fine, limit them."
    assert bo[0].content.endswith("Ada: Ban them.")  # merged into the opener: roles alternate


def test_three_speakers_keep_roles_alternating() -> None:
    three = [*TWO, {"provider": "openai", "model": "llama", "name": "Cy"}]
    state = state_with(three, [("Ada", "One."), ("Bo", "Two."), ("Cy", "Three."), ("Ada", "Four.")])
    messages = messages_for(state, 4)  # Bo speaks
    roles = [m.role for m in messages]
    assert roles[0] == "user" and roles[-1] == "user"
    assert all(a != b for a, b in itertools.pairwise(roles))
    assert "Cy: Three." in messages[-1].content and "Ada: Four." in messages[-1].content


def test_the_system_prompt_carries_persona_and_topic() -> None:
    state = state_with(TWO, [])
    prompt = system_prompt(state, 0)
    assert "You are Ada" in prompt and "Bo" in prompt and "A cautious planner." in prompt
    assert "Urban policy." in prompt


def test_the_request_goes_to_the_speakers_model_with_accounting() -> None:
    state = state_with(TWO, [("Ada", "Ban them.")])
    request = turn_request(state, 1, max_output_tokens=300)
    assert (request.provider, request.model) == ("google", "gemini-3.5-flash")
    assert request.meta.owner_id == "conv-1" and request.meta.step == "1"
    assert request.meta.prompt_ref == "conversation.turn.v2"


def test_a_participants_sampling_goes_into_its_turns_request() -> None:
    tuned = [
        {"provider": "openai", "model": "llama-3.3-70b", "temperature": 0.2, "top_p": 0.8},
        {"provider": "google", "model": "gemini-3.5-flash", "max_tokens": 50},
        {"provider": "google", "model": "gemini-3.5-flash", "max_tokens": 500},
    ]
    state = state_with(tuned, [])
    first, second, third = (turn_request(state, i, max_output_tokens=400) for i in range(3))
    assert (first.temperature, first.top_p, first.max_output_tokens) == (0.2, 0.8, 400)
    assert (second.temperature, second.top_p, second.max_output_tokens) == (None, None, 50)
    assert third.max_output_tokens == 400  # never above the configured cap
