"""Rounds of periodic work: at most one of each kind per interval, fleet-wide.

Beat sends the topic drain, the job feeder and the reconciler every interval.  Two
beats running at once (a deploy that starts the new one before stopping the old, a
second stack pointed at the same Redis) would each send every round, so each kind of
work would run twice as often and two rounds could overlap: two drains processing the
same leftover item, two feeds publishing the same positions, two reconcilers re-driving
the same stuck event and counting two attempts for one.  Nothing would be lost or paid
twice (ids are derived, the inbox keeps one of each), but rates and re-drive counts
would double.

So a round first takes its kind's gate: one ``SET NX PX`` on ``<prefix>round:<name>``
for ``ROUND_GATE_SHARE`` of the interval, on the Redis server's clock.  A round that
finds the gate taken does nothing: another beat's round of the same kind ran less than
that long ago.  Rounds of one kind therefore start at least 0.8 intervals apart
whatever the number of beats, and one beat whose round was delayed a little keeps its
next one (a fifth of an interval of slack).  A round that lasts longer than the gate
may still overlap the next; every action is idempotent, so that costs time, not
correctness.
"""

from __future__ import annotations

import redis

from chimera.redis_errors import redis_errors
from chimera.settings import Settings

#: The gate's share of the interval (see the module docstring).
ROUND_GATE_SHARE = 0.8
KEY_ROUND = "round"


def take_round(client: redis.Redis, settings: Settings, name: str, interval_s: float) -> bool:
    """True when this round of ``name`` is the one to run; False when another ran less
    than ``ROUND_GATE_SHARE`` of ``interval_s`` ago.  ``RedisUnavailable`` when Redis
    cannot say (the caller skips the round, as for any outage)."""
    ttl_ms = max(1, int(interval_s * ROUND_GATE_SHARE * 1000))
    with redis_errors("cannot take the periodic round", round=name):
        return bool(client.set(settings.redis_key(KEY_ROUND, name), "1", nx=True, px=ttl_ms))
