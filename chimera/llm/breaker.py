"""A circuit breaker per provider and model, shared by every process through Redis.

closed --(N consecutive retryable failures)--> open --(cooldown over)-->
half-open: exactly one caller (the probe) is let through; its success closes
the breaker, its failure opens it again.  A probe that dies without reporting
releases its slot after a TTL.  Only retryable failures count: a 400 says the
provider is up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from chimera.redis_client import ScriptCall, run_scripts
from chimera.redis_errors import redis_errors
from chimera.settings import Settings

_ALLOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then
  -- 3: closed with failures counted, so a success must be reported to reset them
  if redis.call('HEXISTS', KEYS[1], 'failures') == 1 then return {3, 0} end
  return {1, 0}
end
if state == 'open' then
  local opened_until = tonumber(redis.call('HGET', KEYS[1], 'opened_until') or '0')
  if now < opened_until then return {0, opened_until - now} end
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_until', now + tonumber(ARGV[1]))
  return {2, 0}
end
local probe_until = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or '0')
if now < probe_until then return {0, probe_until - now} end
redis.call('HSET', KEYS[1], 'probe_until', now + tonumber(ARGV[1]))
return {2, 0}
"""

_RECORD = """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if ARGV[1] == 'release' then
  if state == 'half_open' then redis.call('HSET', KEYS[1], 'probe_until', 0) end
  return state
end
if ARGV[1] == 'success' then
  if state ~= 'closed' or redis.call('HEXISTS', KEYS[1], 'failures') == 1 then
    redis.call('DEL', KEYS[1])
  end
  return 'closed'
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if state == 'half_open' or (state == 'closed' and failures >= tonumber(ARGV[2])) then
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_until', now + tonumber(ARGV[3]))
  redis.call('HDEL', KEYS[1], 'probe_until')
  return 'open'
end
return state
"""

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(frozen=True)
class Permit:
    """Leave to call: ``probe`` when this call decides whether the breaker closes;
    ``clean`` when it is closed with no failure counted (a success changes nothing)."""

    allowed: bool
    probe: bool = False
    retry_after_s: float = 0.0
    clean: bool = False


class CircuitBreaker:
    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self._redis = client
        self._settings = settings
        self._allow = client.register_script(_ALLOW)
        self._record = client.register_script(_RECORD)
        # A probe that never reports (its process died) frees the slot after this.
        self._probe_ttl_ms = int((settings.llm_timeout_s + 5) * 1000)

    def _key(self, provider: str, model: str) -> str:
        return self._settings.redis_key("llm", "breaker", provider, model)

    def allow(self, provider: str, model: str) -> Permit:
        """Ask leave to call."""
        with redis_errors("circuit breaker unavailable"):
            (raw,) = run_scripts(self._redis, [self.allow_call(provider, model)])
        return self.permit(raw)

    def allow_call(self, provider: str, model: str) -> ScriptCall:
        """``allow`` as a script call, to batch with others; read it with ``permit``."""
        return ScriptCall(self._allow, [self._key(provider, model)], [self._probe_ttl_ms])

    @staticmethod
    def permit(raw: Any) -> Permit:
        verdict, wait_ms = int(raw[0]), int(raw[1])
        if verdict == 0:
            return Permit(False, retry_after_s=wait_ms / 1000)
        return Permit(True, probe=verdict == 2, clean=verdict == 1)

    def record(self, provider: str, model: str, *, success: bool) -> str:
        """Report an outcome; returns the breaker's state after it."""
        return self._report(provider, model, "success" if success else "failure")

    def release(self, provider: str, model: str) -> None:
        """Give a probe permit back unused (the call never reached the provider)."""
        self._report(provider, model, "release")

    def _report(self, provider: str, model: str, outcome: str) -> str:
        with redis_errors("circuit breaker unavailable"):
            state = self._record(
                keys=[self._key(provider, model)],
                args=[
                    outcome,
                    self._settings.breaker_failure_threshold,
                    int(self._settings.breaker_cooldown_s * 1000),
                ],
            )
        return state.decode() if isinstance(state, bytes) else str(state)

    def state(self, provider: str, model: str) -> str:
        with redis_errors("circuit breaker unavailable"):
            value = self._redis.hget(self._key(provider, model), "state")
        return str(value) if value else CLOSED
