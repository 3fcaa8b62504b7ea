"""Kafka traffic cut and delayed under a running stack.

The stack's broker is a Tansu of the test's own that advertises a proxy's address,
so every client (the bridge's consumer and producer, the workers' producers) goes
through the proxy, which can drop and refuse connections or hold every chunk.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.helpers import wait_for
from tests.reliability.harness import invariants
from tests.reliability.harness.results import record

pytestmark = [pytest.mark.subprocess_worker, pytest.mark.timeout(400)]


def test_kafka_cut_then_slowed_every_event_done_once_and_committed(
    make_stack: Any, proxied_kafka: Any, sim_calls: Any, request: pytest.FixtureRequest
) -> None:
    """A cut longer than the group's session timeout: the bridge loses its connections,
    the workers cannot publish turn events.  Then every
    chunk is held 150 ms.  Nothing is lost or done twice, and the group ends with no lag."""
    settings, broker = proxied_kafka
    sim_calls.configure(ttft_ms=200)
    stack = make_stack(base=settings)
    stack.start_all()
    ids = stack.produce_conversations(4, min_turns=4, max_turns=4) + stack.produce_analyses(2)
    wait_for(lambda: sim_calls.calls().count(status=200) >= 4, timeout_s=90, what="work")
    baseline = stack.rss()
    broker.proxy.cut()
    cut_at = time.monotonic()
    time.sleep(8)  # past the session timeout (6 s): the group drops the bridge
    broker.proxy.restore()
    restored_at = time.monotonic()
    cut_s = restored_at - cut_at
    ids += stack.produce_conversations(2, min_turns=2, max_turns=2)
    broker.proxy.delay(0.15)
    ids += stack.produce_analyses(1)
    stack.wait_settled(ids, timeout_s=300)
    recovery_s = time.monotonic() - restored_at
    broker.proxy.restore()

    wait_for(lambda: invariants.consumer_lag(stack) == 0, timeout_s=60, what="no lag")
    report = invariants.check(
        stack, sim_calls, event_ids=ids, allowed_dead_letters=set(), rss_baseline=baseline
    )
    bridge_log = next(p for p in stack.processes if p.name == "bridge0").log()
    worker_log = next(p for p in stack.processes if p.name == "worker0").log()
    assert "Kafka unavailable" in bridge_log, bridge_log[-3000:]
    record(
        "kafka traffic cut (8 s) then delayed (150 ms per chunk)",
        request.node.name,
        happened="the bridge held intake and backed off, then resumed in the same group "
        "membership; workers retried their publishes; every event done once, no lag",
        cut_s=round(cut_s, 1),
        recovery_s=round(recovery_s, 1),
        proxy_connections=broker.proxy.accepted,
        bridge_assignments=bridge_log.count("partitions assigned"),
        worker_kafka_errors=worker_log.count("KafkaUnavailable"),
        **report.as_dict(),
    )
