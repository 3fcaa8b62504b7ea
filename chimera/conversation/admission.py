"""Admission: a fleet-wide cap on conversations running at once.

A conversation runs only once admitted; while ``CHIMERA_MAX_RUNNING_CONVERSATIONS``
run, a new one waits, without holding a worker, in a Redis sorted set ordered by
its ``priority`` (higher first), then arrival.  Two sorted sets, one Lua call per
step (so two workers never admit past the cap):

- ``<prefix>admission:running``: the conversation ids admitted, scored by when the
  entry lapses (a lost release cannot hold a place for ever);
- ``<prefix>admission:waiting``: the event ids waiting, scored by rank; beside it a
  hash from event id to conversation id and a counter of arrivals.

When a running conversation ends (completed or failed) its place is released and
the next waiting events are admitted: the caller hands them off (their start task
runs again and finds them admitted).  Beat admits too, after pruning the running
entries whose conversation is over (``prune``), so a lost release strands nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import redis

from chimera import metrics
from chimera.events.ids import conversation_id
from chimera.redis_errors import redis_errors
from chimera.settings import Settings

log = logging.getLogger(__name__)

#: Ranks are ``-priority * RANK_SPAN + arrival``: exact in a double while |priority|
#: <= PRIORITY_BOUND and fewer than RANK_SPAN arrivals were ever counted.
RANK_SPAN = 2**40
PRIORITY_BOUND = 1_000

# KEYS: running, waiting, cids, seq.  ARGV: now_ms, ttl_ms, cap, event_id ("" to only
# admit), cid, priority.  Returns {own: 1 admitted / 0 waiting, running, waiting,
# admitted event ids...}.
_ADMIT = """
local running, waiting, cids, seq = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, ttl, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local event_id, cid, priority = ARGV[4], ARGV[5], tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', running, '-inf', now)
local own = 0
if event_id ~= '' then
  if redis.call('ZSCORE', running, cid) then
    own = 1
  elseif not redis.call('ZSCORE', waiting, event_id) then
    local n = redis.call('INCR', seq)
    redis.call('ZADD', waiting, -priority * 1099511627776 + n, event_id)
    redis.call('HSET', cids, event_id, cid)
  end
end
local admitted = {}
while redis.call('ZCARD', running) < cap do
  local head = redis.call('ZRANGE', waiting, 0, 0)
  if #head == 0 then break end
  local eid = head[1]
  local hcid = redis.call('HGET', cids, eid)
  redis.call('ZREM', waiting, eid)
  redis.call('HDEL', cids, eid)
  if hcid then
    redis.call('ZADD', running, now + ttl, hcid)
    if eid == event_id then own = 1 else admitted[#admitted + 1] = eid end
  end
end
local out = {own, redis.call('ZCARD', running), redis.call('ZCARD', waiting)}
for _, eid in ipairs(admitted) do out[#out + 1] = eid end
return out
"""


@dataclass(frozen=True)
class Ticket:
    """The answer to an admission: whether the event runs now, and the other waiting
    events admitted meanwhile (to be handed off by the caller)."""

    admitted: bool
    handoff: tuple[str, ...] = ()


def running_cap(settings: Settings) -> int:
    """``CHIMERA_MAX_RUNNING_CONVERSATIONS``, or the cap derived from the limits: the
    running conversations' turns fit in half their time budget at one provider's
    request limit."""
    if settings.max_running_conversations is not None:
        return settings.max_running_conversations
    calls = settings.rate_limit_requests_per_minute * settings.conversation_timeout_seconds / 60
    return max(1, int(calls // (2 * settings.max_conversation_turns)))


class Admission:
    """The cap, its running set and its waiting line, in Redis."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self._redis = client
        self._settings = settings
        self.cap = running_cap(settings)
        key = settings.redis_key
        self._keys = [
            key("admission", "running"),
            key("admission", "waiting"),
            key("admission", "cids"),
            key("admission", "seq"),
        ]
        self._script = client.register_script(_ADMIT)

    @property
    def _ttl_ms(self) -> int:
        """How long a running entry holds its place without a release: longer than a
        conversation can run (its budget twice, and a task's time limit)."""
        s = self._settings
        return int((2 * s.conversation_timeout_seconds + s.task_time_limit_s) * 1000)

    def admit(self, event_id: str, *, priority: int = 0) -> Ticket:
        """Admit the event's conversation if there is room (or it was admitted
        before), else put it in line; with it, the waiting ones admitted meanwhile."""
        if not -PRIORITY_BOUND <= priority <= PRIORITY_BOUND:
            raise ValueError(f"priority must be within ±{PRIORITY_BOUND}, got {priority}")
        return self._run(event_id, conversation_id(event_id), priority)

    def admit_waiting(self) -> tuple[str, ...]:
        """Admit waiting events while there is room; the ones admitted, to hand off."""
        return self._run("", "", 0).handoff

    def release(self, cid: str) -> tuple[str, ...]:
        """The conversation is over: free its place; the waiting events admitted into it."""
        with redis_errors("cannot release the admission", conversation_id=cid):
            removed = self._redis.zrem(self._keys[0], cid)
        if removed:
            log.info("conversation %s released its admission", cid)
        return self.admit_waiting()

    def prune(self, over: Callable[[str], bool]) -> list[str]:
        """Drop the running entries whose conversation is ``over`` (a release was lost)."""
        gone = [cid for cid in self.running() if over(cid)]
        if gone:
            with redis_errors("cannot prune the admissions"):
                self._redis.zrem(self._keys[0], *gone)
            log.warning("admission: %d running entries were over, released", len(gone))
        return gone

    def running(self) -> Iterable[str]:
        """The conversation ids admitted and not released."""
        with redis_errors("cannot read the admissions"):
            raw = self._redis.zrange(self._keys[0], 0, -1)
        return [m.decode() if isinstance(m, bytes) else str(m) for m in raw]

    def waiting(self) -> list[str]:
        """The event ids waiting, in admission order."""
        with redis_errors("cannot read the admission line"):
            raw = self._redis.zrange(self._keys[1], 0, -1)
        return [m.decode() if isinstance(m, bytes) else str(m) for m in raw]

    def is_waiting(self, event_id: str) -> bool:
        with redis_errors("cannot read the admission line", event_id=event_id):
            return self._redis.zscore(self._keys[1], event_id) is not None

    def _run(self, event_id: str, cid: str, priority: int) -> Ticket:
        with redis_errors("cannot admit", event_id=event_id or None):
            now_ms = int(self._time() * 1000)
            raw = self._script(
                keys=self._keys,
                args=[now_ms, self._ttl_ms, self.cap, event_id, cid, priority],
            )
        own, n_running, n_waiting, *handoff = raw
        metrics.CONVERSATIONS_RUNNING.set(int(n_running))
        metrics.CONVERSATIONS_WAITING.set(int(n_waiting))
        ids = tuple(h.decode() if isinstance(h, bytes) else str(h) for h in handoff)
        return Ticket(bool(own), ids)

    def _time(self) -> float:
        """The Redis server's clock (the same for every worker)."""
        seconds, micros = self._redis.time()
        return float(seconds) + float(micros) / 1e6
