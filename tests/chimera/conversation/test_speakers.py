"""Two participants of one model are two speakers: in the transcript, in what each is
shown (the simulator's recorded request bodies) and in the quality score."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from chimera.conversation.engine import ConversationEngine
from chimera.conversation.turns import Finish, Next, attempt_turn, conclude
from chimera.db.tables import ConversationTurn
from chimera.quality.score import QualityV2Report
from tests.chimera.conversation.test_turns import row, started

TWINS = [
    {"provider": "anthropic", "model": "claude-haiku-5-5"},
    {"provider": "anthropic", "model": "claude-haiku-5-5"},
]


def test_two_participants_of_one_model_see_each_other_as_others(
    engine: ConversationEngine,
    db: Any,
    sim_calls: Any,
) -> None:
    sim_calls.configure(record_bodies=True)
    _, cid = started(engine, min_turns=4, max_turns=4, participants=TWINS)
    assert [attempt_turn(engine, cid, i) for i in range(4)] == [Next(), Next(), Next(), Finish()]
    assert conclude(engine, cid, analyse=lambda c: None) is None

    with db.connect() as conn:
        turns = conn.execute(
            select(ConversationTurn)
            .where(ConversationTurn.conversation_id == cid)
            .order_by(ConversationTurn.turn_index)
        ).all()
    assert [t.speaker for t in turns] == ["claude-haiku-5-5", "claude-haiku-5-5 (2)"] * 2

    bodies = [c.body for c in sim_calls.calls().calls if c.status == 200]
    assert len(bodies) == 4
    # Turn 2 is the first participant again: its own turn 0 is its own (assistant), the
    # second participant's turn 1 is someone else's (user, under that speaker's label).
    messages = bodies[2]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == turns[0].content
    assert messages[2]["content"] == f"claude-haiku-5-5 (2): {turns[1].content}"
    assert "in a discussion with claude-haiku-5-5 (2)" in bodies[2]["system"]
    # Turn 3, the second participant: the first one's turns are the other's.
    messages = bodies[3]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0]["content"].endswith(f"claude-haiku-5-5: {turns[0].content}")
    assert messages[1]["content"] == turns[1].content
    assert (
        "You are claude-haiku-5-5 (2), in a discussion with claude-haiku-5-5."
        in (bodies[3]["system"])
    )

    # quality.v2 reads two speakers too (uptake is measured on replies to another one).
    report = QualityV2Report.model_validate(row(db, cid).quality_breakdown)
    assert [t.speaker for t in report.turns] == [t.speaker for t in turns]
