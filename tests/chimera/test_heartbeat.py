"""Heartbeat keys on the real Redis."""

from __future__ import annotations

from typing import Any

from chimera import heartbeat
from tests.helpers import wait_for


def test_a_heartbeat_is_readable_and_expires(redis_client: Any, redis_ns: Any) -> None:
    heartbeat.beat(redis_client, redis_ns, "worker", instance="w1", ttl_s=1, queue="q")
    heartbeat.beat(redis_client, redis_ns, "worker", instance="w2", ttl_s=30)
    beats = heartbeat.read(redis_client, redis_ns, "worker")
    assert sorted(b.instance for b in beats) == ["w1", "w2"]
    w1 = next(b for b in beats if b.instance == "w1")
    assert w1.info["queue"] == "q"
    assert w1.age_s < 5
    assert 0 < redis_client.pttl(redis_ns.redis_key("heartbeat", "worker", "w1")) <= 1_000
    wait_for(
        lambda: [b.instance for b in heartbeat.read(redis_client, redis_ns, "worker")] == ["w2"],
        what="w1's heartbeat to expire",
    )


def test_components_do_not_see_each_others_beats(redis_client: Any, redis_ns: Any) -> None:
    heartbeat.beat(redis_client, redis_ns, "beat")
    heartbeat.beat(redis_client, redis_ns, "bridge", instance="b1")
    assert [b.component for b in heartbeat.read(redis_client, redis_ns, "beat")] == ["beat"]
    assert [b.instance for b in heartbeat.read(redis_client, redis_ns, "bridge")] == ["b1"]
