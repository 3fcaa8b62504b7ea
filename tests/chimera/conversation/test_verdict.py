"""Finalise's verdict on the real stores and the simulator: quality.v2 stored, accepted or
rejected with reasons, near-duplicates rejected against the index, the same answer twice."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert

from chimera.conversation.closing import NEAR_DUPLICATE, transcript_text
from chimera.conversation.engine import ConversationEngine
from chimera.conversation.turns import Finish, attempt_turn, dispatch
from chimera.db.tables import Job
from chimera.events.ids import conversation_id, job_event_id
from chimera.models import TranscriptTurn
from chimera.quality.score import QualityV2Report
from tests.chimera.conversation.test_turns import row, started, submit


def run_turns(engine: ConversationEngine, cid: str) -> None:
    """Every turn of ``cid`` until the conversation has ended (not finalised)."""
    i = 0
    while attempt_turn(engine, cid, i) != Finish():
        i += 1
        assert i < 20


def finished(engine: ConversationEngine, **fields: Any) -> str:
    _, cid = started(engine, **fields)
    run_turns(engine, cid)
    assert engine.finalize(cid)
    return cid


def test_a_finished_conversation_is_stored_with_its_v2_report_and_verdict(
    engine: ConversationEngine, db: Any
) -> None:
    cid = finished(engine, min_turns=4, max_turns=6)
    stored = row(db, cid)
    report = QualityV2Report.model_validate(stored.quality_breakdown)
    assert stored.status == "completed"
    assert report.version == "quality.v2" and stored.quality_score == report.score
    assert stored.accepted is True and report.accepted
    assert stored.rejection_reasons == [] and stored.duplicate_of is None
    # Accepted, so in the fleet's index: its own text finds it.
    turns = engine.repo.get(cid)
    assert turns is not None
    text = "\n".join(t.content for t in turns.turns)
    match = engine.closing.near_duplicates.find(text)
    assert match is not None and match.original_id == cid


def test_a_near_duplicate_is_rejected_pointing_to_the_first(
    engine: ConversationEngine, db: Any
) -> None:
    # The simulator's dialogue is deterministic: the same topic and pair, the same text.
    first = finished(engine, min_turns=4, max_turns=6)
    second = finished(engine, min_turns=4, max_turns=6)
    a, b = row(db, first), row(db, second)
    assert [t.content for t in engine.repo.get(first).turns] == [  # type: ignore[union-attr]
        t.content
        for t in engine.repo.get(second).turns  # type: ignore[union-attr]
    ]
    assert a.accepted is True and a.duplicate_of is None
    assert b.status == "completed" and b.accepted is False
    assert b.rejection_reasons == [NEAR_DUPLICATE] and b.duplicate_of == first
    # The score still says what it is; only the verdict differs.
    assert QualityV2Report.model_validate(b.quality_breakdown).accepted
    assert b.quality_score == a.quality_score
    # The duplicate was not added: the original stays the one the index names.
    match = engine.closing.near_duplicates.find(transcript_text(_turns(engine, second)))
    assert match is not None and match.original_id == first


def test_a_retried_finalise_stores_the_same_verdict(engine: ConversationEngine, db: Any) -> None:
    first = finished(engine, min_turns=4, max_turns=6)
    # A finalise that judged (the index holds what it added), then died before storing:
    # its retry judges again and comes to the same verdict, for a new conversation (the
    # same id with the same text is no duplicate of itself) and for a near-duplicate.
    for topic, original in (("Should schools start later?", None), (None, first)):
        fields = {"min_turns": 4, "max_turns": 6} | ({"topic": topic} if topic else {})
        _, cid = started(engine, **fields)
        run_turns(engine, cid)
        state = engine.store.load(cid)
        assert state is not None
        once, twice = (engine.closing.verdict_of(state) for _ in range(2))
        assert (once.accepted, once.reasons, once.duplicate_of) == (
            twice.accepted,
            twice.reasons,
            twice.duplicate_of,
        )
        assert engine.finalize(cid)
        stored = row(db, cid)
        assert (stored.accepted, stored.rejection_reasons, stored.duplicate_of) == (
            once.accepted,
            once.reasons,
            once.duplicate_of,
        )
        assert stored.duplicate_of == original
        assert stored.accepted is (original is None)


def test_the_jobs_min_quality_is_the_threshold(engine: ConversationEngine, db: Any) -> None:
    jid = "job-0123456789abcdef01234567"
    with db.begin() as conn:
        conn.execute(insert(Job).values(id=jid, name="strict", spec={"min_quality": 0.99}))
    event_id = submit(
        engine,
        event_id=job_event_id(jid, 0),
        job_id=jid,
        metadata={"job_id": jid},
        min_turns=4,
        max_turns=6,
    )
    assert dispatch(engine, event_id) is not None
    cid = conversation_id(event_id)
    run_turns(engine, cid)
    assert engine.finalize(cid)
    stored = row(db, cid)
    assert stored.job_id == jid and stored.quality_score < 0.99
    assert stored.accepted is False and stored.rejection_reasons[0] == "low_score"
    # Rejected on its score: never added to the index.
    assert engine.closing.near_duplicates.find(transcript_text(_turns(engine, cid))) is None


def _turns(engine: ConversationEngine, cid: str) -> list[TranscriptTurn]:
    found = engine.repo.get(cid)
    assert found is not None
    return [
        TranscriptTurn(
            turn_index=t.turn_index,
            speaker=t.speaker,
            provider=t.provider,
            model=t.model,
            content=t.content,
        )
        for t in found.turns
    ]
