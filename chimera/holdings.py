"""Which worker holds which broker message, and which workers are alive.

A Redis broker knows a delivered message only as an entry of its ``unacked`` hash: it
does not know who took it.  A worker that dies holding messages (the turn it was
running, the ones it had prefetched, the retries it was waiting out) leaves them there
until the visibility timeout (an hour by default) puts them back.  So each worker
records what it holds, and keeps a short liveness key while it runs:

- ``alive:<worker>``: set every third of ``CHIMERA_WORKER_LIVENESS_TTL_S``, expiring
  after it; ``workers`` lists every worker that has one or had one;
- ``held:<worker>``: the delivery tags it took and has not yet acknowledged;
- ``holder:<tag>``: who holds that message now.  A message put back and taken by
  another worker keeps its tag, so the newest holder's name is what counts.

A live worker's sweep (``tasks.recovery``) finds workers whose liveness key has
expired and puts their messages back at the head of the queue at once.  A worker killed
in the instant between the broker handing it a message and its record of it leaves an
*orphan*: unacknowledged, with no holder named.  One sweep per interval, fleet-wide,
puts back every message unacknowledged for longer than the liveness TTL that no worker
has named (a live worker names what it receives within milliseconds).  Each tag is
first *claimed*: a compare-and-set of its holder from the dead worker to the sweeper,
so two sweepers never put one message back twice, and a message already taken by a
live worker is never touched.  A worker that is only slow keeps its liveness key (a
thread of its own writes it) and is never swept; one cut off from Redis for longer
than the TTL is swept, and the conversation's fenced lease (``chimera.conversation
.store``) keeps it from overwriting the work of the worker that took its turn over.
"""

from __future__ import annotations

import os
import socket
import uuid

import redis

from chimera.redis_errors import redis_errors
from chimera.settings import Settings

KEY_WORKERS = "workers"
KEY_ALIVE = "alive"
KEY_HELD = "held"
KEY_HOLDER = "holder"
#: How long a sweeper's claim on a tag lasts: a sweeper that dies between the claim
#: and the put-back leaves the tag to the next sweeper after this long.
CLAIM_TTL_MS = 60_000

# KEYS: holder:<tag>, held:<worker>; ARGV: worker, tag
_DONE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('SREM', KEYS[2], ARGV[2])
return 1
"""

# KEYS: holder:<tag>, held:<dead>; ARGV: dead, tag, claimant, claim ttl ms
# 1: claimed, put it back; 0: someone else holds it (drop it from the dead worker's
# set) or another sweeper claimed it (left for the next sweep, in case that sweeper
# dies before putting it back: its claim expires).  A holder key that expired (after
# the visibility timeout) is the dead worker's still: nobody took the message since.
_CLAIM = """
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then
  if string.sub(cur, 1, 6) ~= 'claim:' then redis.call('SREM', KEYS[2], ARGV[2]) end
  return 0
end
redis.call('SET', KEYS[1], 'claim:' .. ARGV[3], 'PX', tonumber(ARGV[4]))
return 1
"""

# KEYS: holder:<tag>, held:<dead>; ARGV: claimant, tag
_RESTORED = """
if redis.call('GET', KEYS[1]) == 'claim:' .. ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('SREM', KEYS[2], ARGV[2])
return 1
"""

# KEYS: held:<dead>, alive:<dead>, workers; ARGV: dead
_FORGET = """
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('SCARD', KEYS[1]) > 0 then return 0 end
redis.call('SREM', KEYS[3], ARGV[1])
return 1
"""


def new_worker_id() -> str:
    """A name no other worker process has had: host, pid and a random part."""
    return f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"


class Holdings:
    """One worker process's records of what it holds, and its view of the others."""

    def __init__(self, client: redis.Redis, settings: Settings, worker_id: str) -> None:
        self._redis = client
        self._settings = settings
        self.worker_id = worker_id
        self._ttl_ms = int(settings.worker_liveness_ttl_s * 1000)
        # Past the visibility timeout the broker puts the message back by itself.
        self._holder_ttl_s = settings.visibility_timeout_s
        self._done = client.register_script(_DONE)
        self._claim = client.register_script(_CLAIM)
        self._restored = client.register_script(_RESTORED)
        self._forget = client.register_script(_FORGET)

    def _key(self, *parts: str) -> str:
        return self._settings.redis_key(*parts)

    # --- this worker ---------------------------------------------------------------------

    def alive(self) -> None:
        """Say this worker is alive for the next ``worker_liveness_ttl_s``."""
        with redis_errors("cannot write the worker's liveness", worker=self.worker_id):
            pipe = self._redis.pipeline(transaction=False)
            pipe.set(self._key(KEY_ALIVE, self.worker_id), "1", px=self._ttl_ms)
            pipe.sadd(self._key(KEY_WORKERS), self.worker_id)
            pipe.execute()

    def leaving(self) -> None:
        """This worker stops: its remaining holdings are for the next sweep at once."""
        with redis_errors("cannot remove the worker's liveness", worker=self.worker_id):
            self._redis.delete(self._key(KEY_ALIVE, self.worker_id))

    def took(self, tag: str) -> None:
        """This worker received the message ``tag``."""
        with redis_errors("cannot record a held message", worker=self.worker_id):
            pipe = self._redis.pipeline(transaction=False)
            pipe.set(self._key(KEY_HOLDER, tag), self.worker_id, ex=self._holder_ttl_s)
            pipe.sadd(self._key(KEY_HELD, self.worker_id), tag)
            pipe.execute()

    def done(self, tag: str) -> None:
        """This worker acknowledged ``tag`` (or gave it back)."""
        with redis_errors("cannot clear a held message", worker=self.worker_id):
            self._done(
                keys=[self._key(KEY_HOLDER, tag), self._key(KEY_HELD, self.worker_id)],
                args=[self.worker_id, tag],
            )

    def held(self, worker_id: str | None = None) -> set[str]:
        """The tags ``worker_id`` (default: this worker) took and has not finished."""
        with redis_errors("cannot read held messages"):
            members = self._redis.smembers(self._key(KEY_HELD, worker_id or self.worker_id))
        return {m.decode() if isinstance(m, bytes) else str(m) for m in members}

    # --- the others ----------------------------------------------------------------------

    def dead_workers(self) -> list[str]:
        """Workers whose liveness key has expired (never this one)."""
        with redis_errors("cannot read the workers' liveness"):
            raw = self._redis.smembers(self._key(KEY_WORKERS))
            names = sorted(m.decode() if isinstance(m, bytes) else str(m) for m in raw)
            names = [n for n in names if n != self.worker_id]
            if not names:
                return []
            pipe = self._redis.pipeline(transaction=False)
            for name in names:
                pipe.exists(self._key(KEY_ALIVE, name))
            alive = pipe.execute()
        return [n for n, up in zip(names, alive, strict=True) if not up]

    def claim(self, dead: str, tag: str) -> bool:
        """Take ``tag`` over from ``dead`` to put it back; False if another holds it."""
        with redis_errors("cannot claim a dead worker's message", worker=dead):
            return bool(
                self._claim(
                    keys=[self._key(KEY_HOLDER, tag), self._key(KEY_HELD, dead)],
                    args=[dead, tag, self.worker_id, CLAIM_TTL_MS],
                )
            )

    def restored(self, tag: str, dead: str | None = None) -> None:
        """``tag``, claimed (from ``dead``, or as an orphan), is back in the queue."""
        held = self._key(KEY_HELD, dead or self.worker_id)
        with redis_errors("cannot clear a restored message", worker=dead or "-"):
            self._restored(keys=[self._key(KEY_HOLDER, tag), held], args=[self.worker_id, tag])

    def unnamed(self, tags: list[str]) -> list[str]:
        """Those of ``tags`` no worker has recorded (nor a sweeper claimed)."""
        if not tags:
            return []
        with redis_errors("cannot read the holders of messages"):
            pipe = self._redis.pipeline(transaction=False)
            for tag in tags:
                pipe.exists(self._key(KEY_HOLDER, tag))
            named = pipe.execute()
        return [tag for tag, known in zip(tags, named, strict=True) if not known]

    def claim_orphan(self, tag: str) -> bool:
        """Take ``tag``, which no worker named, to put it back; False if one named it since."""
        with redis_errors("cannot claim an orphaned message"):
            claim = f"claim:{self.worker_id}"
            return bool(
                self._redis.set(self._key(KEY_HOLDER, tag), claim, nx=True, px=CLAIM_TTL_MS)
            )

    def forget(self, dead: str) -> bool:
        """Drop ``dead`` from the workers once it holds nothing (and is still dead)."""
        with redis_errors("cannot forget a dead worker", worker=dead):
            return bool(
                self._forget(
                    keys=[
                        self._key(KEY_HELD, dead),
                        self._key(KEY_ALIVE, dead),
                        self._key(KEY_WORKERS),
                    ],
                    args=[dead],
                )
            )
