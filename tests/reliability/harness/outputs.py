"""The output topics after a fault, checked against the stored results.

Output events are published at least once: a step that is run again (a
redelivery, a retry after a lost ack) publishes its event again.  What must hold:

- every finished result has its output record: a completed conversation its
  ``conversation.completed`` and a ``turn.completed`` for each of its turns, a
  failed one its ``conversation.failed``, every recorded analysis run its
  ``analysis.completed``;
- a record published more than once carries the same ``event_id`` each time, the
  deterministic one of its (owner, type, turn), so consumers drop the copies by id.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import select

from chimera.db.tables import AnalysisRun, Conversation
from chimera.events.ids import conversation_id, output_event_id, run_id
from chimera.events.letters import read_dead_letters
from chimera.kafka.clients import make_consumer
from tests.reliability.harness.stack import Stack

#: (source event id, event type, turn index or None): one output fact.
Fact = tuple[str, str, int | None]


def published(stack: Stack, ids: list[str]) -> tuple[dict[Fact, Counter[str]], list[str]]:
    """The event ids each output fact of ``ids`` was published under (with how many
    records each), and the records that are no output event at all."""
    s = stack.settings
    wanted = set(ids)
    facts: dict[Fact, Counter[str]] = defaultdict(Counter)
    unreadable: list[str] = []
    topics = (s.topic_conversation_response, s.topic_conversation_completed)
    for topic in (*topics, s.topic_analysis_completed):
        for record in _records(stack, topic):
            try:
                value = json.loads(record.value or b"null")
                source, event_type = value["source_event_id"], value["event_type"]
                event_id = value["event_id"]
            except (ValueError, TypeError, KeyError):
                unreadable.append(f"{topic}[{record.partition}]@{record.offset}")
                continue
            if source in wanted:
                facts[(source, event_type, value.get("turn_index"))][event_id] += 1
    return facts, unreadable


def expected(stack: Stack, ids: list[str]) -> set[Fact]:
    """The output facts the stored results of ``ids`` must have been published as."""
    with stack.engine.connect() as conn:
        conversations = conn.execute(
            select(Conversation.event_id, Conversation.status, Conversation.turn_count).where(
                Conversation.event_id.in_(ids)
            )
        ).all()
        runs = conn.execute(select(AnalysisRun.event_id).where(AnalysisRun.event_id.in_(ids)))
        facts: set[Fact] = {(event_id, "analysis.completed", None) for (event_id,) in runs}
    for event_id, status, turn_count in conversations:
        if status == "completed":
            facts.add((event_id, "conversation.completed", None))
            facts |= {(event_id, "turn.completed", i) for i in range(turn_count or 0)}
        elif status == "failed":
            facts.add((event_id, "conversation.failed", None))
    return facts


def check_outputs(stack: Stack, ids: list[str], report: Any) -> None:
    """Assert the output topics hold every finished result once, by id (see the module)."""
    facts, unreadable = published(stack, ids)
    report.output_records = sum(sum(c.values()) for c in facts.values())
    report.output_duplicates = sum(sum(c.values()) - 1 for c in facts.values())
    problems = [f"not an output event: {where}" for where in unreadable]
    for fact in sorted(expected(stack, ids) - set(facts), key=str):
        problems.append(f"{fact[0]}: no {fact[1]} record" + _turn(fact))
    for fact, event_ids in sorted(facts.items(), key=str):
        source, event_type, index = fact
        owner = run_id(source) if event_type == "analysis.completed" else conversation_id(source)
        want = output_event_id(owner, event_type, index)
        if set(event_ids) != {want}:
            problems.append(
                f"{source}: {event_type}{_turn(fact)} published as {sorted(event_ids)}, "
                f"not only {want}"
            )
    assert not problems, "output invariants broken:\n" + "\n".join(problems)


def _turn(fact: Fact) -> str:
    return "" if fact[2] is None else f" (turn {fact[2]})"


def _records(stack: Stack, topic: str) -> list[Any]:
    consumer = make_consumer(stack.settings, fetch_max_wait_ms=50)
    try:
        return list(read_dead_letters(consumer, topic).records)  # reads any topic to its end
    finally:
        consumer.close()
