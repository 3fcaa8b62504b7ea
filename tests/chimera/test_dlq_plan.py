"""Dead-letter replay, decided from the topic alone: parsing, selection, history, commits."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from chimera.codec import payload_hash
from chimera.errors import ConfigError, NotFound
from chimera.events.deadletters import DeadLetter
from chimera.events.letters import DeadLetterRecord, Scan, input_topic_for, resolve_topic
from chimera.events.replay_plan import Candidate, Filters, advance
from chimera.events.replay_plan import plan as replay_plan
from chimera.settings import load_settings

TOPIC = "conversation.dlq"
#: Where the records of TOPIC are replayed to.
ROUTE = "conversation.new"


def record(
    partition: int,
    offset: int,
    event_id: str | None = "evt-1",
    *,
    reason: str = "llm_permanent",
    replay_count: int = 0,
    ts: int | None = None,
    payload: dict[str, Any] | None = None,
    extra: tuple[tuple[str, bytes], ...] = (("h", b"v"),),
    original_topic: str | None = ROUTE,
) -> DeadLetterRecord:
    """A dead letter as the bridge or a worker writes it, read back from the topic."""
    body = payload if payload is not None else {"event_id": event_id, "topic": "Cars?"}
    letter = DeadLetter(
        key=b"t-1",
        value=json.dumps(body).encode(),
        reason=reason,
        error_class="SafetyBlocked",
        error_message="blocked",
        original_topic=original_topic,
        original_partition=2,
        original_offset=17,
        event_id=event_id,
        attempts=3,
        replay_count=replay_count,
        headers=extra,
    )
    consumed = SimpleNamespace(
        topic=TOPIC,
        partition=partition,
        offset=offset,
        timestamp=ts if ts is not None else 1_000 * (offset + 1) + partition,
        key=letter.key,
        value=letter.value,
        headers=letter.record_headers(),
    )
    return DeadLetterRecord.from_record(consumed)


def plan(
    s: Scan, committed: dict[int, int | None], filters: Filters, max_replays: int
) -> list[Candidate]:
    """The plan of a run over TOPIC, whose route is ROUTE."""
    return replay_plan(s, committed, filters, max_replays, route=ROUTE)


def scan(*records: DeadLetterRecord, partitions: int = 2) -> Scan:
    ends = {p: 0 for p in range(partitions)}
    for r in records:
        ends[r.partition] = max(ends[r.partition], r.offset + 1)
    return Scan(TOPIC, tuple(sorted(records, key=lambda r: (r.partition, r.offset))), ends)


def test_a_record_is_read_with_its_dead_letter_headers() -> None:
    letter = record(1, 4, replay_count=2)
    assert (letter.event_id, letter.reason, letter.error_class) == (
        "evt-1",
        "llm_permanent",
        "SafetyBlocked",
    )
    assert (letter.attempts, letter.replay_count) == (3, 2)
    assert letter.origin == "conversation.new[2]@17"
    assert letter.where == "conversation.dlq[1]@4"
    assert letter.digest == payload_hash({"event_id": "evt-1", "topic": "Cars?"})
    view = letter.as_dict(now=letter.failed_at + 90)
    assert view["age_s"] == 90 and view["key"] == "t-1"
    assert ["x-dlq-reason", "llm_permanent"] in view["headers"]


def test_without_the_event_id_header_the_value_names_the_event() -> None:
    letter = record(0, 0, event_id=None, payload={"event_id": "evt-9", "topic": "x"})
    assert letter.event_id == "evt-9"
    assert record(0, 0, event_id=None, payload={"topic": "x"}).event_id is None


def test_replay_headers_are_the_original_ones_with_the_count_bumped() -> None:
    letter = record(0, 0, extra=(("h", b"v"), ("traceparent", b"00-ab-cd-01")))
    assert letter.replay_headers(1) == [
        ("h", b"v"),
        ("traceparent", b"00-ab-cd-01"),
        ("x-replay-count", b"1"),
    ]


def test_topics_resolve_by_role_or_configured_name() -> None:
    settings = load_settings(topic_conversation_dlq="conv.dead")
    assert resolve_topic(settings, "conversation.dlq") == "conv.dead"
    assert resolve_topic(settings, "conv.dead") == "conv.dead"
    assert resolve_topic(settings, "analysis.dlq") == "analysis.dlq"
    with pytest.raises(NotFound, match="not a dead-letter topic"):
        resolve_topic(settings, "conversation.new")
    assert input_topic_for(settings, "analysis.dlq") == settings.topic_analysis_tasks
    assert input_topic_for(settings, "conv.dead") == settings.topic_conversation_new


def test_each_dead_letter_topic_has_one_route_and_nothing_else_is_one() -> None:
    settings = load_settings(dlq_routes={"legacy.dlq": "analysis.tasks"})
    assert resolve_topic(settings, "legacy.dlq") == "legacy.dlq"
    assert input_topic_for(settings, "legacy.dlq") == "analysis.tasks"
    assert input_topic_for(settings, "conversation.dlq") == "conversation.new"
    for topic in ("conversation.new", "conversation.completed", "analysis.completed", "nope"):
        with pytest.raises(NotFound, match="not a dead-letter topic"):
            input_topic_for(settings, topic)
    # A route may not turn an input or output topic into a dead-letter topic.
    with pytest.raises(ConfigError, match=r"conversation\.new is an input or output topic"):
        load_settings(dlq_routes={"conversation.new": "analysis.tasks"})


def test_a_record_claiming_another_topic_is_refused_and_has_no_say_in_history() -> None:
    genuine = record(0, 0, "evt-a")
    # Forged later, same event and payload: it must neither supersede the genuine
    # record nor count as a replay of it.
    to_output = record(0, 1, "evt-a", original_topic="conversation.completed", replay_count=3)
    to_other_input = record(1, 0, "evt-b", original_topic="analysis.tasks")
    unlabelled = record(1, 1, "evt-c", original_topic=None)
    chosen = plan(scan(genuine, to_output, to_other_input, unlabelled), {}, Filters(), 3)
    by_where = {c.letter.where: c for c in chosen}
    assert (by_where[genuine.where].skip, by_where[genuine.where].replays) == (None, 0)
    assert by_where[genuine.where].refusal is None
    assert by_where[unlabelled.where].refusal is None  # no claim: it goes to the route
    for forged in (to_output, to_other_input):
        refusal = by_where[forged.where].refusal
        assert refusal is not None and f"is not {ROUTE}" in refusal
        assert repr(forged.original_topic) in refusal


def test_without_filters_only_records_past_the_committed_offsets_are_considered() -> None:
    records = [record(0, 0, "evt-a"), record(0, 1, "evt-b"), record(1, 0, "evt-c")]
    chosen = plan(scan(*records), {0: 1, 1: None}, Filters(), max_replays=3)
    assert [c.letter.event_id for c in chosen] == ["evt-c", "evt-b"]  # oldest first
    assert all(c.skip is None and c.replays == 0 for c in chosen)


def test_filters_search_from_the_beginning() -> None:
    records = [
        record(0, 0, "evt-a", reason="schema_invalid"),
        record(0, 1, "evt-b"),
        record(1, 0, "evt-c", reason="schema_invalid"),
    ]
    everything_committed = {0: 2, 1: 1}
    by_id = plan(scan(*records), everything_committed, Filters(event_id="evt-a"), 3)
    assert [c.letter.event_id for c in by_id] == ["evt-a"]
    by_reason = plan(scan(*records), everything_committed, Filters(reason="schema_invalid"), 3)
    assert [c.letter.event_id for c in by_reason] == ["evt-a", "evt-c"]
    both = plan(scan(*records), everything_committed, Filters("evt-c", "llm_permanent"), 3)
    assert both == []


def test_only_the_latest_dead_letter_of_an_event_is_replayed() -> None:
    first, again = record(0, 0, "evt-a"), record(1, 3, "evt-a", replay_count=1)
    chosen = plan(scan(first, again), {}, Filters(), max_replays=3)
    assert [(c.letter, c.skip is None) for c in chosen] == [(first, False), (again, True)]
    assert "superseded by a later dead letter of the event (conversation.dlq[1]@3)" in str(
        chosen[0].skip
    )
    assert chosen[1].replays == 1


def test_another_payload_under_the_same_id_has_its_own_history() -> None:
    original = record(0, 0, "evt-a")
    conflicting = record(
        0, 1, "evt-a", reason="conflicting_duplicate", payload={"event_id": "evt-a", "topic": "?"}
    )
    chosen = plan(scan(original, conflicting), {}, Filters(), max_replays=3)
    assert [c.skip for c in chosen] == [None, None]


@pytest.mark.parametrize(
    ("history", "replays"),
    [
        ([0], 0),
        ([2], 2),  # the header says so
        ([3], 3),
        ([0, 0], 1),  # re-dead-lettered without the header carried forward
        ([1, 0, 0], 2),
        ([0, 2], 2),
    ],
)
def test_an_events_replay_count_comes_from_its_history(history: list[int], replays: int) -> None:
    records = [record(0, i, "evt-a", replay_count=count) for i, count in enumerate(history)]
    latest = plan(scan(*records), {}, Filters(), max_replays=10)[-1]
    assert (latest.replays, latest.skip) == (replays, None)


def test_a_record_replayed_as_often_as_allowed_is_refused() -> None:
    (at_limit,) = plan(scan(record(0, 0, replay_count=3)), {}, Filters(), max_replays=3)
    assert at_limit.skip == "replayed 3 times already; the limit is 3 (CHIMERA_DLQ_MAX_REPLAYS)"
    (once,) = plan(scan(record(0, 0, replay_count=1)), {}, Filters(), max_replays=1)
    assert once.skip is not None and "replayed 1 time already" in once.skip
    (disabled,) = plan(scan(record(0, 0)), {}, Filters(), max_replays=0)
    assert disabled.skip is not None


def test_a_record_dead_lettered_without_its_original_is_never_replayed() -> None:
    """A record too large to dead-letter whole keeps only its headers: replaying its
    empty value would only fail again, so it is skipped with where to find it."""
    whole = DeadLetter(
        key=b"k",
        value=b"x" * 100,
        reason="event_too_large",
        error_class="EventTooLarge",
        error_message="too large",
        original_topic=ROUTE,
        original_partition=1,
        original_offset=9,
        event_id="evt-big",
    )
    bare = whole.without_original()
    consumed = SimpleNamespace(
        topic=TOPIC,
        partition=0,
        offset=0,
        timestamp=1_000,
        key=bare.key,
        value=bare.value,
        headers=bare.record_headers(),
    )
    letter = DeadLetterRecord.from_record(consumed)
    assert (
        letter.omitted == "key 1 bytes, value 100 bytes, 0 headers: too large to dead-letter whole"
    )
    (candidate,) = plan(scan(letter), {}, Filters(), max_replays=3)
    assert candidate.skip is not None
    assert "carries none of the original record" in candidate.skip
    assert "conversation.new[1]@9" in candidate.skip
    assert record(0, 1).omitted is None


def test_records_without_an_event_id_stand_alone() -> None:
    records = [record(0, 0, None, payload={"x": 1}), record(0, 1, None, payload={"x": 1})]
    assert [c.skip for c in plan(scan(*records), {}, Filters(), 3)] == [None, None]


def test_commits_move_over_an_unbroken_run_of_dealt_with_records() -> None:
    records = [record(0, 0), record(0, 1), record(0, 2), record(1, 5), record(1, 6)]
    s = scan(*records, partitions=3)
    # All dealt with: up to the end offsets; an empty partition is left alone.
    everything = {(r.partition, r.offset) for r in records}
    assert advance(s, {}, everything) == {0: 3, 1: 7}
    # A gap stops the commit where the first record not dealt with sits.
    assert advance(s, {}, {(0, 0), (0, 2), (1, 6)}) == {0: 1}
    # Records below the committed offset do not matter; nothing new, no commit.
    assert advance(s, {0: 2, 1: 7}, {(0, 2)}) == {0: 3}
    assert advance(s, {0: 3, 1: 7}, set()) == {}
