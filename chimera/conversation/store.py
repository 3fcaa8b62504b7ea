"""Conversation state in Redis, guarded by a lease with a fencing token.

- ``lease(cid)``: SET NX PX of a lock key, plus a fencing token from a counter
  (INCR) that only grows.  The holder extends it while a slow LLM call runs.
  Acquisition is idempotent per attempt: redis-py retries a command whose
  reply was lost, and a retried SET NX would otherwise see its own lock as
  someone else's (docs/reliability.md, "Locks").
- ``save(state, lease)`` is fenced: it writes only if no newer lease has been
  issued since ours (the token still equals the counter), so a holder paused
  past its TTL cannot overwrite state written by the next holder.
- A turn's LLM output is stored under its own key, first writer wins, before
  it is appended, so a re-run after a crash uses it instead of paying again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import redis

from chimera import tracing
from chimera.conversation.state import ConversationState
from chimera.errors import ChimeraError, LockNotAcquired, StaleLockToken
from chimera.models import TranscriptTurn
from chimera.redis_errors import redis_errors
from chimera.settings import Settings

log = logging.getLogger(__name__)

#: A busy lease is usually released within milliseconds (bookkeeping of the
#: previous step): wait that long before giving the task back to the queue.
LOCK_WAIT_S = 0.5
LOCK_POLL_S = 0.01
#: How long the lease keeper's thread waits without leases before it ends.
KEEPER_IDLE_S = 30.0

_ACQUIRE = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local owner, token = string.match(cur, '^([^:]+):(%d+)$')
  if owner == ARGV[1] then return tonumber(token) end  -- our own, retried
  return 0
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token, 'PX', tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3]))
return token
"""

_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
-- No state (finished, or never made): the fence counter this lease's acquisition
-- incremented guards nothing, and would outlive the conversation by the state TTL.
if redis.call('EXISTS', KEYS[3]) == 0 then redis.call('DEL', KEYS[2]) end
return 1
"""

_SAVE = """
if tonumber(redis.call('GET', KEYS[2]) or '0') ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', tonumber(ARGV[3]))
return 1
"""


@dataclass(frozen=True)
class Lease:
    conversation_id: str
    owner: str
    token: int

    @property
    def value(self) -> str:
        return f"{self.owner}:{self.token}"


class _LeaseKeeper:
    """One thread per process extends every lease held in it, each a third of its TTL
    after it was taken or last extended (a thread per lease cost a thread start and
    join on every turn)."""

    def __init__(self, extend: Callable[[Lease], bool]) -> None:
        self._extend = extend
        self._due: dict[Lease, tuple[float, float]] = {}  # lease -> (next at, every)
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def hold(self, lease: Lease, every_s: float) -> None:
        with self._cond:
            self._due[lease] = (time.monotonic() + every_s, every_s)
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()  # a forked child starts its own
                self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
                self._thread.start()
            self._cond.notify()

    def drop(self, lease: Lease) -> None:
        with self._cond:
            self._due.pop(lease, None)

    def _held(self, lease: Lease) -> bool:
        with self._cond:
            return lease in self._due

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._due:  # idle: wait a while for work, else end (hold restarts it)
                    self._cond.wait(timeout=KEEPER_IDLE_S)
                    if not self._due:
                        self._thread = None
                        return
                now = time.monotonic()
                due = [lease for lease, (at, _) in self._due.items() if at <= now]
                if not due:
                    soonest = min(at for at, _ in self._due.values())
                    self._cond.wait(timeout=max(soonest - now, 0.001))
                    continue
                for lease in due:
                    self._due[lease] = (now + self._due[lease][1], self._due[lease][1])
            for lease in due:  # outside the lock: a round trip each
                if not self._extend(lease) and self._held(lease):
                    log.warning("lost the lease of %s while working", lease.conversation_id)
                    self.drop(lease)


class StateStore:
    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self._redis = client
        self._settings = settings
        self._acquire = client.register_script(_ACQUIRE)
        self._extend = client.register_script(_EXTEND)
        self._release = client.register_script(_RELEASE)
        self._save = client.register_script(_SAVE)
        #: State outlives the conversation's time budget, then expires by itself.
        self.state_ttl_ms = int((settings.conversation_timeout_seconds * 2 + 3_600) * 1000)
        #: Short, because the holder extends it every third of it while it works: a
        #: dead holder's lease frees the conversation within one TTL.
        self.lease_ttl_ms = int(settings.conversation_lock_ttl_s * 1000)
        self._keeper = _LeaseKeeper(self.extend)

    def _key(self, cid: str, *parts: str) -> str:
        return self._settings.redis_key("conv", f"{{{cid}}}", *parts)

    # --- state ---------------------------------------------------------------------------

    def create(self, state: ConversationState) -> bool:
        """Store a new conversation's state; False if it already exists."""
        with redis_errors("cannot store state", conversation_id=state.conversation_id):
            return bool(
                self._redis.set(
                    self._key(state.conversation_id, "state"),
                    state.model_dump_json(),
                    nx=True,
                    px=self.state_ttl_ms,
                )
            )

    def load(self, cid: str) -> ConversationState | None:
        with redis_errors("cannot load state", conversation_id=cid):
            raw = self._redis.get(self._key(cid, "state"))
        return ConversationState.model_validate_json(raw) if raw else None

    def save(self, state: ConversationState, lease: Lease) -> None:
        """Write ``state`` unless a newer lease was issued since ``lease`` (fenced)."""
        cid = state.conversation_id
        state.updated_at = time.time()
        with redis_errors("cannot save state", conversation_id=cid):
            ok = self._save(
                keys=[self._key(cid, "state"), self._key(cid, "fence")],
                args=[lease.token, state.model_dump_json(), self.state_ttl_ms],
            )
        if not ok:
            raise StaleLockToken(
                f"lease {lease.token} was superseded; the state write was refused",
                conversation_id=cid,
            )

    def hold(self, cid: str, seconds: float) -> None:
        """Mark the conversation active for ``seconds`` (a turn waits to retry).  Best
        effort: without the mark the reconciler may resume the chain early, which the
        lease and the stored outputs make safe, not free."""
        with contextlib.suppress(ChimeraError), redis_errors("cannot mark it active"):
            self._redis.set(self._key(cid, "active"), "1", px=max(1, int(seconds * 1000)))

    def active(self, cid: str) -> bool:
        """True while a turn holds the lease or waits to retry."""
        with redis_errors("cannot read the lease", conversation_id=cid):
            return bool(self._redis.exists(self._key(cid, "lock"), self._key(cid, "active")))

    def delete(self, cid: str) -> None:
        """Forget a finished conversation's state, lock, fence and stored outputs."""
        with redis_errors("cannot delete state", conversation_id=cid):
            keys = [self._key(cid, "state"), self._key(cid, "fence"), self._key(cid, "active")]
            keys += list(self._redis.scan_iter(match=self._key(cid, "turn", "*"), count=100))
            self._redis.delete(*keys)

    # --- turn outputs ----------------------------------------------------------------------

    def put_output(self, cid: str, turn: TranscriptTurn) -> TranscriptTurn:
        """Keep a turn's output (first writer wins); returns the one kept."""
        key = self._key(cid, "turn", str(turn.turn_index))
        with redis_errors("cannot store a turn", conversation_id=cid):
            if self._redis.set(key, turn.model_dump_json(), nx=True, px=self.state_ttl_ms):
                return turn
            raw = self._redis.get(key)
        return TranscriptTurn.model_validate_json(raw) if raw else turn

    def get_output(self, cid: str, turn_index: int) -> TranscriptTurn | None:
        with redis_errors("cannot load a turn", conversation_id=cid):
            raw = self._redis.get(self._key(cid, "turn", str(turn_index)))
        return TranscriptTurn.model_validate_json(raw) if raw else None

    # --- the lease ---------------------------------------------------------------------------

    def acquire(self, cid: str, *, wait_s: float = 0.0) -> Lease:
        """Take the conversation's lease, polling for up to ``wait_s``; else raise
        ``LockNotAcquired`` (retryable: the task re-queues rather than hold a slot)."""
        owner = uuid.uuid4().hex
        deadline = time.monotonic() + wait_s
        while True:
            with redis_errors("cannot take the lock", conversation_id=cid):
                token = int(
                    self._acquire(
                        keys=[self._key(cid, "lock"), self._key(cid, "fence")],
                        args=[owner, self.lease_ttl_ms, self.state_ttl_ms],
                    )
                )
            if token:
                return Lease(cid, owner, token)
            if time.monotonic() >= deadline:
                raise LockNotAcquired("another worker holds this conversation", conversation_id=cid)
            time.sleep(LOCK_POLL_S)

    def extend(self, lease: Lease) -> bool:
        try:
            with redis_errors("cannot extend the lease"):
                return bool(
                    self._extend(
                        keys=[self._key(lease.conversation_id, "lock")],
                        args=[lease.value, self.lease_ttl_ms],
                    )
                )
        except ChimeraError:
            return False

    def release(self, lease: Lease) -> None:
        cid = lease.conversation_id
        keys = [self._key(cid, "lock"), self._key(cid, "fence"), self._key(cid, "state")]
        try:
            with redis_errors("cannot release the lock"):
                self._release(keys=keys, args=[lease.value])
        except ChimeraError as exc:  # it expires by itself
            log.warning("could not release the lock of %s: %s", lease.conversation_id, exc)

    @contextlib.contextmanager
    def lease(self, cid: str, *, wait_s: float = LOCK_WAIT_S) -> Iterator[Lease]:
        """Hold the lease for the block, extended every third of its TTL while it runs
        (a span from taking it to releasing it: what ran under the lock is its child)."""
        attributes = tracing.REDIS | {"chimera.conversation_id": cid}
        with tracing.span("conversation lock", attributes=attributes) as span:
            lease = self.acquire(cid, wait_s=wait_s)
            if span.is_recording():
                span.set_attribute("chimera.fence_token", lease.token)
            self._keeper.hold(lease, self.lease_ttl_ms / 3000)
            try:
                yield lease
            finally:
                self._keeper.drop(lease)
                self.release(lease)
