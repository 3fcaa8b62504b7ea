"""`python -m bridges` as a real process: signals, memory, a Redis outage."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from typing import Any

import psutil
import pytest
from sqlalchemy import text

from chimera.settings import Settings
from tests.bridges.conftest import committed, conversation, end_offsets, produce, queued, read_topic
from tests.helpers import free_port, wait_for


def dispatched(db: Any) -> int:
    with db.connect() as conn:
        return int(
            conn.execute(text("SELECT count(*) FROM events WHERE status = 'dispatched'")).scalar()
        )


def test_sigterm_mid_stream_commits_leaves_and_a_new_bridge_finishes_exactly_once(
    bridge_settings: Settings, db: Any, bridge_process: Any, run_bridge: Any, drainer: Any
) -> None:
    s = bridge_settings
    n = 2_000
    meta = produce(
        s, s.topic_conversation_new, [(f"t-{i}", conversation(f"evt-{i}")) for i in range(n)]
    )
    first = bridge_process(s)

    def at(count: int) -> float:
        wait_for(
            lambda: first.assert_alive() or dispatched(db) >= count,
            timeout_s=60,
            what=f"{count} events",
        )
        return psutil.Process(first.pid).memory_info().rss / 2**20

    rss_early = at(300)
    started = time.monotonic()
    rss_late = at(1_500)
    rate = 1_200 / (time.monotonic() - started)
    print(
        f"\nbridge: {rate:.0f} events/s; RSS {rss_early:.1f} MiB after 300 events, {rss_late:.1f} MiB after 1500"
    )
    # Measured: +0.1 MiB.  A sender subscribing to results would keep growing.
    assert rss_late - rss_early < 3, "the bridge's memory grows with the events it hands off"

    first.signal(signal.SIGTERM)
    assert first.wait() == 0, first.log()
    summaries = [line for line in first.log().splitlines() if " stopped: consumed=" in line]
    assert len(summaries) == 1, first.log()
    assert "SIGTERM: intake stopped" in first.log()
    done_by_first = sum(o or 0 for o in committed(s, s.topic_conversation_new).values())
    assert f"consumed={done_by_first} handed_off={done_by_first} " in summaries[0]
    # The record in flight was finished and committed; nothing after it was taken.
    assert dispatched(db) == done_by_first

    second = run_bridge(s)
    second.wait_for(lambda: dispatched(db) == n, what="the rest")
    stats = second.stop()
    assert stats.consumed == n - done_by_first  # resumed at the committed offsets
    assert stats.duplicates == 0
    messages = drainer.stop()
    assert len(messages) == n and len({m.id for m in messages}) == n  # one hand-off each
    assert committed(s, s.topic_conversation_new) == end_offsets(meta)


def test_sigkill_after_hand_off_before_commit_hands_off_at_most_one_poll_again(
    bridge_settings: Settings, db: Any, bridge_process: Any, run_bridge: Any, drainer: Any
) -> None:
    # The next member waits out the dead one's session: keep it short.
    s = bridge_settings.model_copy(
        update={"kafka_session_timeout_ms": 3_000, "kafka_heartbeat_interval_ms": 1_000}
    )
    n = 600
    produce(s, s.topic_conversation_new, [(f"t-{i}", conversation(f"evt-{i}")) for i in range(n)])
    first = bridge_process(s)
    wait_for(lambda: first.assert_alive() or dispatched(db) >= 100, timeout_s=60, what="100 events")
    first.signal(signal.SIGKILL)
    first.wait()
    recorded = dispatched(db)
    done_by_first = sum(o or 0 for o in committed(s, s.topic_conversation_new).values())
    assert done_by_first <= recorded  # never committed past an unfinished record

    second = run_bridge(s)  # joins once the dead member's session has expired
    second.wait_for(lambda: dispatched(db) == n, what="the rest", timeout_s=60)
    stats = second.stop()
    # Records the first bridge finished but had not committed come back, and are
    # recognised: a row marked dispatched gets no second hand-off; a row left `received`
    # is handed off again.
    assert stats.consumed == n - done_by_first
    assert stats.duplicates + stats.handed_off == stats.consumed
    ids = Counter(m.id for m in drainer.stop())
    assert len(ids) == n
    # A poll's hand-offs are marked dispatched together, after them: a kill in between
    # leaves at most that poll's events handed off twice, with the same task ids (the
    # hand-off task does nothing for an event already started), never more than twice.
    assert sum(ids.values()) - n <= stats.handed_off_again <= s.kafka_max_poll_records
    assert max(ids.values()) <= 2


@pytest.fixture
def private_redis(tmp_path: Any) -> Any:
    """A redis-server of this test's own, which the test may stop and restart."""

    class PrivateRedis:
        port = free_port()
        proc: subprocess.Popen[bytes] | None = None

        def start(self) -> None:
            argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
            argv += ["--save", "", "--appendonly", "no", "--dir", str(tmp_path)]
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            import redis

            client = redis.Redis(port=self.port)
            wait_for(lambda: _pings(client), timeout_s=10, what="redis-server")
            client.close()

        def stop(self) -> None:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)

    server = PrivateRedis()
    server.start()
    yield server
    server.stop()


def _pings(client: Any) -> bool:
    import redis

    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def test_a_redis_outage_holds_intake_and_is_logged_once(
    bridge_settings: Settings, db: Any, bridge_process: Any, private_redis: Any
) -> None:
    s = bridge_settings.model_copy(update={"redis_port": private_redis.port})
    topic = s.topic_conversation_new
    before = produce(s, topic, [(f"t-{i}", conversation(f"evt-{i}")) for i in range(5)])
    bridge = bridge_process(s)
    wait_for(lambda: bridge.assert_alive() or dispatched(db) == 5, timeout_s=60, what="5 events")
    wait_for(lambda: committed(s, topic) == end_offsets(before), what="their offsets")

    private_redis.stop()
    after = produce(s, topic, [(f"t-{i}", conversation(f"evt-{i}")) for i in range(5, 10)])
    time.sleep(2)  # several back-off rounds
    bridge.assert_alive()
    assert committed(s, topic) == end_offsets(before)  # nothing committed while it is away
    assert read_topic(s, s.topic_conversation_dlq) == []  # and nothing dead-lettered
    assert dispatched(db) == 5

    private_redis.start()  # back, and empty
    wait_for(lambda: dispatched(db) == 10, timeout_s=30, what="the events held back")
    assert sorted(m.args[0] for m in queued(s)) == [f"evt-{i}" for i in range(5, 10)]
    bridge.signal(signal.SIGTERM)
    assert bridge.wait() == 0, bridge.log()
    log = bridge.log()
    assert log.count("Redis unavailable") <= 2, log  # the hand-offs' outage, and the heartbeat's
    assert log.count("holding intake") == 1, log
    assert log.count("Redis is back") >= 1, log
    assert committed(s, topic) == end_offsets(before + after)
