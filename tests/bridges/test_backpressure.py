"""The queue depth on the real Redis broker, and the hysteresis between the marks."""

from __future__ import annotations

import pytest

from bridges.backpressure import Backpressure, queue_depth
from bridges.bridge import celery_app
from chimera.errors import RedisUnavailable
from chimera.settings import Settings
from tests.bridges.conftest import broker_redis, queue_keys
from tests.helpers import free_port


def test_the_depth_counts_every_priority_under_the_key_prefix(bridge_settings: Settings) -> None:
    app = celery_app(bridge_settings)
    try:
        assert queue_depth(app) == 0
        app.send_task("x.plain", ignore_result=True)
        for priority in (0, 4, 7, 9):
            app.send_task("x.prioritised", ignore_result=True, priority=priority)
        assert queue_depth(app) == 5
    finally:
        app.close()
    # kombu spread them over the prefixed list and its priority sub-lists ...
    client = broker_redis(bridge_settings)
    try:
        lengths = [client.llen(key) for key in queue_keys(bridge_settings)]
    finally:
        client.close()
    assert lengths == [2, 1, 1, 1]
    # ... so the prefixed list alone (what a plain LLEN sees) misses three of them.
    assert lengths[0] < 5


def test_an_unreachable_broker_is_redis_unavailable(bridge_settings: Settings) -> None:
    app = celery_app(bridge_settings)
    app.conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"
    try:
        with pytest.raises(RedisUnavailable, match="depth of Celery queue"):
            queue_depth(app)
    finally:
        app.close()


def test_intake_pauses_above_the_high_mark_and_resumes_at_the_low_one() -> None:
    bp = Backpressure(high_water=10, low_water=4)
    assert [bp.update(d) for d in (0, 10, 11, 9, 5, 4, 3, 10, 11)] == [
        False,  # below
        False,  # at the high mark: not above it
        True,  # above: pause
        True,  # between the marks: stay paused
        True,
        False,  # at the low mark: resume
        False,
        False,  # between the marks: stay running
        True,
    ]
    assert bp.depth == 11
