"""An event naming a model the operator did not configure, through the whole stack.

The bridge refuses it at validation: it is dead-lettered ``schema_invalid`` with the
field named, and nothing is written or paid for, while a worker is there to run it
and an event beside it (the default participants) completes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from chimera.db.tables import Conversation, Event, LLMCall
from chimera.events.ids import conversation_id
from tests.bridges.conftest import read_topic

UNLISTED = "gpt-unlisted-1"


def test_an_unconfigured_model_is_dead_lettered_before_any_llm_call(
    make_stack: Any, sim_calls: Any
) -> None:
    stack = make_stack()
    stack.start_all()
    participants = [
        {"provider": "anthropic", "model": "claude-sonnet-5-5"},
        {"provider": "openai", "model": UNLISTED},
    ]
    [bad] = stack.produce_conversations(1, participants=participants)
    [good] = stack.produce_conversations(1, min_turns=2, max_turns=2)
    dlq = stack.settings.topic_conversation_dlq
    [letter] = read_topic(stack.settings, dlq, at_least=1, timeout_s=60)
    stack.wait_settled([good])

    headers = {k: v.decode() for k, v in letter.headers}
    assert headers["x-dlq-reason"] == "schema_invalid"
    assert headers["x-event-id"] == bad
    assert (
        f'participants.1.model: model "{UNLISTED}" is not configured for openai (allowed: '
        in headers["x-error-message"]
    )
    # Nothing written for it, nothing paid: the event beside it ran on the default models.
    with stack.engine.connect() as conn:
        assert conn.scalar(select(func.count()).where(Event.event_id == bad)) == 0
        rows = conn.scalar(select(func.count()).where(Conversation.id == conversation_id(bad)))
        assert rows == 0
        assert conn.scalar(select(func.count()).where(LLMCall.model == UNLISTED)) == 0
        assert conn.scalar(select(Event.status).where(Event.event_id == good)) == "done"
    calls = sim_calls.calls()
    assert calls.count(model=UNLISTED) == 0
    assert calls.total >= 2
