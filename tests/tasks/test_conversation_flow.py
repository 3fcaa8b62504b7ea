"""A conversation from inbox to Postgres and Kafka, through the real worker and the simulator."""

from __future__ import annotations

import itertools
from typing import Any

from chimera.events.ids import conversation_id
from chimera.quality.score import QualityV2Report
from tests.tasks.conftest import Flow


def test_a_conversation_runs_to_completion(flow: Flow, sim_calls: Any) -> None:
    event = flow.event(min_turns=5, max_turns=10)
    cid = flow.submit(event)
    row = flow.wait(cid)
    turns = flow.turns(cid)
    assert 5 <= row.turn_count == len(turns) <= 10
    assert [t.turn_index for t in turns] == list(range(len(turns)))
    speakers = [t.speaker for t in turns]
    assert all(a != b for a, b in itertools.pairwise(speakers))  # they alternate
    assert {t.provider for t in turns} == {"anthropic", "google"}
    assert all(t.content.strip() and t.output_tokens > 0 for t in turns)
    assert 0 < row.quality_score <= 1
    report = QualityV2Report.model_validate(row.quality_breakdown)
    assert report.version == "quality.v2" and report.score == row.quality_score
    assert set(report.breakdown) >= {"diversity", "relevance", "uptake", "length", "ending"}
    assert row.accepted is report.accepted and row.rejection_reasons == report.reasons
    assert flow.event_status(event["event_id"]) == "done"

    # One LLM call per turn, accounted.
    calls = flow.llm_calls(cid, count=len(turns))
    assert len(calls) == len(turns) and all(c.status == "ok" for c in calls)
    assert sim_calls.calls().total == len(turns)

    # Published: started + requested/completed per turn + completed.
    (done,) = flow.values(flow.messages(flow.settings.topic_conversation_completed, cid, count=1))
    assert done["event_type"] == "conversation.completed"
    assert done["turn_count"] == len(turns)
    assert done["quality_version"] == "quality.v2" and done["quality_score"] == row.quality_score
    assert done["accepted"] is row.accepted
    assert done["rejection_reasons"] == row.rejection_reasons
    assert [t["content"] for t in done["transcript"]] == [t.content for t in turns]
    responses = flow.values(
        flow.messages(flow.settings.topic_conversation_response, cid, count=len(turns))
    )
    assert sorted(r["turn_index"] for r in responses) == list(range(len(turns)))
    lifecycle = flow.values(
        flow.messages(flow.settings.topic_conversation_turn, cid, count=len(turns) + 1)
    )
    assert [m["event_type"] for m in lifecycle].count("conversation.started") == 1


def test_the_same_event_handed_off_three_times_is_one_conversation(
    flow: Flow, sim_calls: Any
) -> None:
    event = flow.event(min_turns=2, max_turns=4)
    cid = flow.submit(event, handoffs=3)
    flow.wait(cid)
    turns = flow.turns(cid)
    assert len(flow.llm_calls(cid, count=len(turns))) == len(turns)
    assert sim_calls.calls().total == len(turns)
    assert len(flow.messages(flow.settings.topic_conversation_completed, cid, count=1)) == 1


def test_a_permanent_llm_error_fails_and_dead_letters(flow: Flow, sim_calls: Any) -> None:
    sim_calls.add_fault("bad_request", provider="google", count=1)
    event = flow.event(min_turns=3, max_turns=4)
    cid = flow.submit(event)
    row = flow.wait(cid, status="failed")
    assert "LLMBadRequest" in row.error
    assert flow.event_status(event["event_id"]) == "dead_lettered"
    assert sim_calls.calls().total == 2  # turn 0 (anthropic) ok, turn 1 (google) refused once
    (letter,) = flow.messages(flow.settings.topic_conversation_dlq, event["event_id"], count=1)
    headers = {k: v.decode() for k, v in letter.headers}
    assert headers["x-dlq-reason"] == "llm_permanent"
    assert headers["x-error-class"] == "LLMBadRequest"
    assert headers["x-event-id"] == event["event_id"]
    (failed,) = flow.values(flow.messages(flow.settings.topic_conversation_completed, cid, count=1))
    assert failed["event_type"] == "conversation.failed" and failed["turn_count"] == 1


def test_a_retryable_error_is_retried_without_paying_twice(flow: Flow, sim_calls: Any) -> None:
    sim_calls.add_fault("overloaded", provider="anthropic", count=1)
    event = flow.event(min_turns=2, max_turns=2)
    cid = flow.submit(event)
    flow.wait(cid)
    calls = flow.llm_calls(cid, count=3)
    assert [c.status for c in calls] == ["error", "ok", "ok"]
    assert [c.attempt for c in calls][:2] == [1, 2]
    assert len(flow.turns(cid)) == 2


def test_retries_go_past_celerys_default_cap_of_three(flow: Flow, sim_calls: Any) -> None:
    """CHIMERA_TURN_MAX_RETRIES (8) bounds a turn's LLM retries, not Celery's default 3."""
    sim_calls.add_fault("overloaded", provider="anthropic", count=4)
    event = flow.event(min_turns=2, max_turns=2)
    cid = flow.submit(event)
    flow.wait(cid)
    calls = flow.llm_calls(cid, count=6)
    assert [c.status for c in calls] == ["error"] * 4 + ["ok", "ok"]
    assert [c.attempt for c in calls][:5] == [1, 2, 3, 4, 5]
    assert len(flow.turns(cid)) == 2


def test_ids_are_derived_from_the_event() -> None:
    assert conversation_id("evt-1") == conversation_id("evt-1") != conversation_id("evt-2")


def test_an_answer_holding_a_nul_character_is_stored_without_it(flow: Flow, sim_calls: Any) -> None:
    """Postgres text holds no U+0000: left in, the conversation could never be stored."""
    sim_calls.add_fault("nul", provider="anthropic", count=1)
    event = flow.event(min_turns=2, max_turns=2)
    cid = flow.submit(event)
    flow.wait(cid, timeout_s=30)
    turns = flow.turns(cid)
    assert len(turns) == 2 and all("\x00" not in t.content for t in turns)
    assert sim_calls.calls().total == 2  # stored at once, not retried
    (done,) = flow.values(flow.messages(flow.settings.topic_conversation_completed, cid, count=1))
    assert done["transcript"][0]["content"] == turns[0].content
