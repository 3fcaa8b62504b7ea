"""The verdict through the real worker: the same event again under a new id is a
near-duplicate of the first conversation, stored and published as rejected."""

from __future__ import annotations

from typing import Any

from chimera.quality.score import QualityV2Report
from tests.tasks.conftest import Flow


def test_a_replayed_event_under_a_new_id_is_rejected_as_a_near_duplicate(
    flow: Flow, sim_calls: Any
) -> None:
    fields = {"topic": "Should towns tax second homes?", "min_turns": 4, "max_turns": 6}
    first = flow.submit(flow.event(**fields))
    original = flow.wait(first)
    again = flow.submit(flow.event(**fields))  # the simulator says the same again
    copy = flow.wait(again)
    assert [t.content for t in flow.turns(first)] == [t.content for t in flow.turns(again)]

    assert original.accepted is True and original.rejection_reasons == []
    assert copy.status == "completed" and copy.accepted is False
    assert copy.rejection_reasons == ["near_duplicate"] and copy.duplicate_of == first
    assert QualityV2Report.model_validate(copy.quality_breakdown).accepted  # the score is fine

    topic = flow.settings.topic_conversation_completed
    (published,) = flow.values(flow.messages(topic, again, count=1))
    assert published["quality_version"] == "quality.v2"
    assert published["accepted"] is False
    assert published["rejection_reasons"] == ["near_duplicate"]
    assert published["duplicate_of"] == first
    (kept,) = flow.values(flow.messages(topic, first, count=1))
    assert kept["accepted"] is True and kept["rejection_reasons"] == []
