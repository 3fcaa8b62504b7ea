"""Admission (``chimera.conversation.admission``) against real Redis: the cap holds,
the line is served by priority then arrival, releases and beat's round admit the
next, and a lost release is pruned."""

from __future__ import annotations

from typing import Any

import pytest

from chimera.conversation.admission import Admission, running_cap
from chimera.events.ids import conversation_id


@pytest.fixture
def admission(redis_ns: Any, redis_client: Any) -> Admission:
    return Admission(redis_client, redis_ns.model_copy(update={"max_running_conversations": 2}))


def test_the_cap_holds_and_the_line_goes_by_priority_then_arrival(admission: Admission) -> None:
    assert admission.admit("e1").admitted
    assert admission.admit("e2").admitted
    for event_id, priority in [("e3", 0), ("e4", 5), ("e5", 0), ("e6", 5), ("e7", -1)]:
        ticket = admission.admit(event_id, priority=priority)
        assert not ticket.admitted and ticket.handoff == ()
    assert admission.waiting() == ["e4", "e6", "e3", "e5", "e7"]
    assert len(list(admission.running())) == 2

    served: list[str] = []
    running = ["e1", "e2"]
    while running:
        done = running.pop(0)
        handoff = admission.release(conversation_id(done))
        served += handoff
        running += handoff
        assert len(list(admission.running())) <= 2  # never more than the cap
    assert served == ["e4", "e6", "e3", "e5", "e7"]
    assert admission.waiting() == []


def test_an_admitted_event_asking_again_is_admitted_once(admission: Admission) -> None:
    assert admission.admit("e1").admitted
    assert admission.admit("e1").admitted  # a duplicate hand-off, a resume
    assert list(admission.running()) == [conversation_id("e1")]
    assert admission.admit("e2").admitted
    assert not admission.admit("e3").admitted
    assert not admission.admit("e3").admitted  # still in line, once
    assert admission.waiting() == ["e3"]
    assert admission.is_waiting("e3") and not admission.is_waiting("e1")


def test_the_next_in_line_is_admitted_when_its_turn_comes_in_the_same_call(
    admission: Admission,
) -> None:
    """An event arriving while there is room but others wait goes behind them."""
    for event_id in ("e1", "e2", "e3", "e4"):
        admission.admit(event_id)
    assert admission.release(conversation_id("e1")) == ("e3",)
    assert admission.admit("e3").admitted  # its start runs again: admitted
    assert not admission.admit("e5").admitted  # behind e4


def test_beat_prunes_lost_releases_and_admits_the_line(admission: Admission) -> None:
    for event_id in ("e1", "e2", "e3"):
        admission.admit(event_id)
    assert admission.admit_waiting() == ()  # no room
    over = {conversation_id("e1")}
    assert admission.prune(lambda cid: cid in over) == [conversation_id("e1")]
    assert admission.admit_waiting() == ("e3",)


def test_priority_out_of_bounds_is_refused_by_name(admission: Admission) -> None:
    with pytest.raises(ValueError, match="priority"):
        admission.admit("e1", priority=10**9)


def test_the_default_cap_is_derived_from_the_limits(redis_ns: Any) -> None:
    s = redis_ns.model_copy(
        update={
            "max_running_conversations": None,
            "rate_limit_requests_per_minute": 60,
            "conversation_timeout_seconds": 300,
            "max_conversation_turns": 10,
        }
    )
    assert running_cap(s) == 15
    assert running_cap(s.model_copy(update={"rate_limit_requests_per_minute": 1})) == 1
    assert running_cap(s.model_copy(update={"max_running_conversations": 7})) == 7
