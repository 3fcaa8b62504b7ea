"""One trace per input event: the bridge, every task, LLM call, write and record it causes.

The bridge runs in a thread and the session's worker in this process, both exporting
to an in-memory collector (``spans``), so the whole trace can be read back.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from chimera.events.ids import conversation_id, run_id
from chimera.kafka.clients import make_producer
from chimera.settings import Settings
from tests.bridges import conftest as bridge_fixtures
from tests.bridges.conftest import CELERYCONFIG_DEPRECATION, read_topic
from tests.helpers import wait_for
from tests.tasks.conftest import Flow

pytestmark = pytest.mark.filterwarnings(CELERYCONFIG_DEPRECATION)

run_bridge = bridge_fixtures.run_bridge
_keep_current_celery_app = bridge_fixtures._keep_current_celery_app

#: The producer's span, as an upstream service would send it.
UPSTREAM_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
UPSTREAM_SPAN = "00f067aa0ba902b7"
UPSTREAM = f"00-{UPSTREAM_TRACE}-{UPSTREAM_SPAN}-01"


def send(settings: Settings, topic: str, key: str, value: Any, traceparent: str | None) -> None:
    headers = [("traceparent", traceparent.encode())] if traceparent else []
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    producer = make_producer(settings)
    try:
        producer.send(topic, key=key.encode(), value=raw, headers=headers).get(timeout=10)
    finally:
        producer.close()


def hex_id(n: int, width: int) -> str:
    return format(n, f"0{width}x")


def trace_of(spans: list[Any], trace_id: str) -> list[Any]:
    return [s for s in spans if hex_id(s.context.trace_id, 32) == trace_id]


def parsed(traceparent: str) -> tuple[str, str]:
    version, trace_id, span_id, flags = traceparent.split("-")
    assert version == "00" and int(flags, 16) & 1  # sampled
    return trace_id, span_id


def check_tree(spans: list[Any], root: Any) -> dict[int, Any]:
    """Every span but ``root`` has its parent in the trace; every span ended."""
    by_id = {s.context.span_id: s for s in spans}
    assert len(by_id) == len(spans)
    for s in spans:
        assert s.end_time is not None
        if s is not root:
            assert s.parent is not None and s.parent.span_id in by_id, f"{s.name} is orphaned"
    return by_id


def render(spans: list[Any], root: Any) -> str:
    """The span tree, one span a line, children in start order, with durations."""
    children: dict[int, list[Any]] = {}
    for t in spans:
        if t.parent is not None:
            children.setdefault(t.parent.span_id, []).append(t)
    keys = ("chimera.turn_index", "chimera.step", "gen_ai.usage.output_tokens", "db.operation.name")
    lines: list[str] = []

    def walk(t: Any, depth: int) -> None:
        shown = " ".join(f"{k.split('.')[-1]}={t.attributes[k]}" for k in keys if k in t.attributes)
        ms = (t.end_time - t.start_time) / 1e6
        lines.append(f"{'  ' * depth}{t.name} [{t.kind.name.lower()}] {ms:.1f} ms {shown}".rstrip())
        for c in sorted(children.get(t.context.span_id, []), key=lambda c: c.start_time):
            walk(c, depth + 1)

    walk(root, 0)
    return "\n".join(lines) + "\n"


def keep(name: str, tree: str) -> None:
    """Write a trace's tree to .chimera/traces/ (git-ignored) for people to read."""
    path = Path(__file__).resolve().parents[2] / ".chimera" / "traces" / f"{name}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tree)


def ancestors(span: Any, by_id: dict[int, Any]) -> list[str]:
    names = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


def test_a_conversation_event_is_one_trace_from_its_record_to_every_llm_call(
    flow: Flow, kafka_topics: Settings, run_bridge: Any, sim_calls: Any, spans: Any
) -> None:
    s = kafka_topics.model_copy(
        update={"kafka_consumer_group_id": f"tr-{kafka_topics.topic_conversation_new}"}
    )
    event = flow.event(min_turns=3, max_turns=4)
    cid = conversation_id(event["event_id"])
    send(s, s.topic_conversation_new, event["event_id"], event, UPSTREAM)
    bridge = run_bridge(s)
    flow.wait(cid)
    turns = flow.turns(cid)
    (done,) = flow.messages(flow.settings.topic_conversation_completed, cid, count=1)
    bridge.stop()

    # The trace is the producer's: the bridge continued it.
    wait_for(
        lambda: any(s.name == "run/chimera.conversation.finalize" for s in spans.finished()),
        what="the finalize span",
    )
    trace = trace_of(spans.finished(), UPSTREAM_TRACE)
    (record,) = [t for t in trace if t.name == f"{s.topic_conversation_new} process"]
    assert record.kind is SpanKind.CONSUMER
    assert record.parent.span_id == int(UPSTREAM_SPAN, 16) and record.parent.is_remote
    assert record.attributes["chimera.event_id"] == event["event_id"]
    assert record.attributes["chimera.outcome"] == "handed_off"
    by_id = check_tree(trace, record)
    keep("conversation", render(trace, record))

    names = Counter(t.name for t in trace)
    assert names["run/chimera.conversation.start"] == 1
    assert names["run/chimera.conversation.turn"] == len(turns)
    assert names["run/chimera.conversation.finalize"] == 1
    for write in ("inbox.mark", "conversations.started", "conversations.complete"):
        assert names[write] >= 1, write
    # The bridge records a poll's records together: that write links to each record.
    (batch,) = [
        t
        for t in spans.finished()
        if t.name.endswith("records recorded")
        and any(link.context.span_id == record.context.span_id for link in t.links)
    ]
    assert [
        t.name for t in spans.finished() if t.parent and t.parent.span_id == batch.context.span_id
    ] == ["inbox.accept"]

    # Each turn task: the conversation's ids, the lock, and under it one LLM call.
    runs = sorted(
        (t for t in trace if t.name == "run/chimera.conversation.turn"),
        key=lambda t: t.attributes["chimera.turn_index"],
    )
    assert [r.attributes["chimera.turn_index"] for r in runs] == list(range(len(turns)))
    assert all(r.attributes["chimera.conversation_id"] == cid for r in runs)
    llm = [t for t in trace if t.name.startswith("chat ")]
    assert len(llm) == len(turns) == sim_calls.calls().total
    for call in llm:
        assert call.kind is SpanKind.CLIENT
        lock, turn_run = by_id[call.parent.span_id], None
        assert (
            lock.name == "conversation lock" and lock.attributes["chimera.conversation_id"] == cid
        )
        turn_run = by_id[lock.parent.span_id]
        assert turn_run.name == "run/chimera.conversation.turn"
        step = int(call.attributes["chimera.step"])
        assert turn_run.attributes["chimera.turn_index"] == step
        assert call.attributes["gen_ai.provider.name"] == turns[step].provider
        assert call.attributes["gen_ai.usage.output_tokens"] == turns[step].output_tokens
        assert call.status.status_code is not StatusCode.ERROR
        # From the LLM call up to the Kafka record, through every earlier turn.
        assert ancestors(call, by_id)[-1] == record.name

    # The published record names the span that produced it, in the same trace.
    headers = dict(done.headers)
    trace_id, span_id = parsed(headers["traceparent"].decode())
    assert trace_id == UPSTREAM_TRACE
    publisher = by_id[int(span_id, 16)]
    assert publisher.name == f"{flow.settings.topic_conversation_completed} publish"
    assert "run/chimera.conversation.finalize" in ancestors(publisher, by_id)
    assert json.loads(done.value)["traceparent"] == headers["traceparent"].decode()


def test_a_dead_letter_points_into_the_trace_of_its_event(
    flow: Flow, kafka_topics: Settings, run_bridge: Any, sim_calls: Any, spans: Any
) -> None:
    sim_calls.add_fault("bad_request", provider="anthropic", count=1)
    s = kafka_topics.model_copy(
        update={"kafka_consumer_group_id": f"tr-{kafka_topics.topic_conversation_new}"}
    )
    event = flow.event(min_turns=2, max_turns=2)
    cid = conversation_id(event["event_id"])
    send(s, s.topic_conversation_new, event["event_id"], event, None)  # no upstream trace
    send(s, s.topic_conversation_new, "poison", b"{not json", UPSTREAM)
    bridge = run_bridge(s)
    flow.wait(cid, status="failed")
    (letter,) = flow.messages(flow.settings.topic_conversation_dlq, event["event_id"], count=1)
    (poison,) = read_topic(s, s.topic_conversation_dlq, at_least=1)
    bridge.stop()

    # The worker's dead letter: a new trace, begun at the bridge, holding the failed call.
    trace_id, span_id = parsed(dict(letter.headers)["traceparent"].decode())
    wait_for(lambda: trace_of(spans.finished(), trace_id), what="the event's trace")
    trace = trace_of(spans.finished(), trace_id)
    (record,) = [t for t in trace if t.name == f"{s.topic_conversation_new} process"]
    assert record.parent is None
    by_id = check_tree(trace, record)
    publisher = by_id[int(span_id, 16)]
    assert publisher.name == f"{flow.settings.topic_conversation_dlq} publish"
    assert publisher.attributes["chimera.dlq_reason"] == "llm_permanent"
    (call,) = [t for t in trace if t.name.startswith("chat ")]
    assert call.status.status_code is StatusCode.ERROR
    assert call.attributes["error.type"] == "LLMBadRequest"

    # The bridge's dead letter of the poison record continues the producer's trace.
    trace_id, span_id = parsed(dict(poison.headers)["traceparent"].decode())
    assert trace_id == UPSTREAM_TRACE
    upstream = {t.context.span_id: t for t in trace_of(spans.finished(), UPSTREAM_TRACE)}
    dlq_publish = upstream[int(span_id, 16)]
    process = upstream[dlq_publish.parent.span_id]
    assert process.attributes["chimera.outcome"] == "dead_lettered"
    assert process.attributes["chimera.dlq_reason"] == "invalid_json"
    assert process.parent.span_id == int(UPSTREAM_SPAN, 16)


def test_an_analysis_event_is_one_trace_through_the_chord(
    flow: Flow, kafka_topics: Settings, run_bridge: Any, sim_calls: Any, spans: Any
) -> None:
    s = kafka_topics.model_copy(
        update={"kafka_consumer_group_id": f"tr-{kafka_topics.topic_analysis_tasks}"}
    )
    event = flow.analysis_event()
    send(s, s.topic_analysis_tasks, event["context_id"], event, UPSTREAM)
    bridge = run_bridge(s)
    flow.wait_run(run_id(event["event_id"]))
    flow.wait_event(event["event_id"], "done")
    bridge.stop()

    wait_for(
        lambda: any(t.name == "run/chimera.analysis.aggregate" for t in spans.finished()),
        what="the aggregate span",
    )
    trace = trace_of(spans.finished(), UPSTREAM_TRACE)
    (record,) = [t for t in trace if t.name == f"{s.topic_analysis_tasks} process"]
    by_id = check_tree(trace, record)
    keep("analysis", render(trace, record))
    names = Counter(t.name for t in trace)
    assert names["run/chimera.analysis.start"] == 1
    assert names["run/chimera.analysis.part"] == 4
    assert names["run/chimera.analysis.aggregate"] == 1
    assert names["analysis_runs.record"] == 1
    # Each part holds its LLM call; the callback hangs under one of the parts.
    calls = [t for t in trace if t.name.startswith("chat ")]
    assert len(calls) == 4 == sim_calls.calls().total
    assert all("run/chimera.analysis.part" in ancestors(c, by_id) for c in calls)
    (aggregate,) = [t for t in trace if t.name == "run/chimera.analysis.aggregate"]
    assert "run/chimera.analysis.part" in ancestors(aggregate, by_id)


def test_log_lines_name_the_trace_and_span_they_were_written_in(spans: Any) -> None:
    from chimera import tracing
    from chimera.logs import ContextFilter, JsonFormatter

    def line() -> dict[str, Any]:
        record = logging.makeLogRecord({"msg": "turn done", "levelname": "INFO"})
        ContextFilter().filter(record)
        return dict(json.loads(JsonFormatter().format(record)))

    assert "trace_id" not in line()  # no span: nothing to name
    with tracing.span("step") as span:
        ids = line()
    context = span.get_span_context()
    assert ids["trace_id"] == hex_id(context.trace_id, 32)
    assert ids["span_id"] == hex_id(context.span_id, 16)
