"""Fleet-wide rate limits: requests, input tokens and output tokens per minute,
per provider and model, shared by every process through Redis.

Each (provider, model) keeps a sliding-window log on the Redis server's clock:
a sorted set of reservations (score = admission time) and their token counts.
Admission is one Lua script (atomic across the fleet): it drops what left the
window, and either records the reservation or answers how long to wait until
enough of the window has expired.  A window, unlike a token bucket, never lets
more than the limit through in any 60 s span, which is how providers count.

Callers reserve an estimate before the call and ``reconcile`` the real usage
after it.  A provider's 429 ``retry-after`` becomes a fleet-wide ``penalize``:
no process calls that model again before the hint.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass
from typing import Any

import redis
from redis.exceptions import RedisError

from chimera.batching import Batcher
from chimera.errors import LLMBadRequest, RedisUnavailable
from chimera.redis_client import ScriptCall, run_scripts
from chimera.settings import ModelLimits, Settings

log = logging.getLogger(__name__)

_ACQUIRE = """
local log, tok, tot, pen = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id = ARGV[1]
local rpm, itpm, otpm = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ein, eout, window = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local old = redis.call('ZRANGEBYSCORE', log, '-inf', now - window)
for _, rid in ipairs(old) do
  local v = redis.call('HGET', tok, rid)
  if v then
    local i, o = string.match(v, '^(%d+):(%d+)$')
    redis.call('HINCRBY', tot, 'in', 0 - tonumber(i))
    redis.call('HINCRBY', tot, 'out', 0 - tonumber(o))
    redis.call('HDEL', tok, rid)
  end
end
if #old > 0 then redis.call('ZREMRANGEBYSCORE', log, '-inf', now - window) end

local until_ms = tonumber(redis.call('GET', pen) or '0')
if until_ms > now then return {0, until_ms - now} end

if (itpm > 0 and ein > itpm) or (otpm > 0 and eout > otpm) then return {-1, 0} end

local count = redis.call('ZCARD', log)
local tin = tonumber(redis.call('HGET', tot, 'in') or '0')
local tout = tonumber(redis.call('HGET', tot, 'out') or '0')
local wait = 0
if rpm > 0 and count + 1 > rpm then
  local e = redis.call('ZRANGE', log, count - rpm, count - rpm, 'WITHSCORES')
  wait = math.max(wait, tonumber(e[2]) + window - now)
end
local need_in = itpm > 0 and tin + ein - itpm or 0
local need_out = otpm > 0 and tout + eout - otpm or 0
if need_in > 0 or need_out > 0 then
  local entries = redis.call('ZRANGE', log, 0, -1, 'WITHSCORES')
  local freed_in, freed_out = 0, 0
  for k = 1, #entries, 2 do
    local i, o = string.match(redis.call('HGET', tok, entries[k]) or '0:0', '^(%d+):(%d+)$')
    freed_in = freed_in + tonumber(i)
    freed_out = freed_out + tonumber(o)
    if freed_in >= need_in and freed_out >= need_out then
      wait = math.max(wait, tonumber(entries[k + 1]) + window - now)
      break
    end
  end
end
if wait > 0 then return {0, wait} end

redis.call('ZADD', log, now, id)
redis.call('HSET', tok, id, ein .. ':' .. eout)
redis.call('HINCRBY', tot, 'in', ein)
redis.call('HINCRBY', tot, 'out', eout)
for _, k in ipairs({log, tok, tot}) do redis.call('PEXPIRE', k, window * 2) end
return {1, 0}
"""

_RECONCILE = """
local tok, tot = KEYS[1], KEYS[2]
local v = redis.call('HGET', tok, ARGV[1])
if not v then return 0 end
local i, o = string.match(v, '^(%d+):(%d+)$')
redis.call('HSET', tok, ARGV[1], ARGV[2] .. ':' .. ARGV[3])
redis.call('HINCRBY', tot, 'in', tonumber(ARGV[2]) - tonumber(i))
redis.call('HINCRBY', tot, 'out', tonumber(ARGV[3]) - tonumber(o))
return 1
"""

_CANCEL = """
local v = redis.call('HGET', KEYS[2], ARGV[1])
if not v then return 0 end
local i, o = string.match(v, '^(%d+):(%d+)$')
redis.call('HINCRBY', KEYS[3], 'in', 0 - tonumber(i))
redis.call('HINCRBY', KEYS[3], 'out', 0 - tonumber(o))
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
"""

_PENALIZE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ms > cur then redis.call('SET', KEYS[1], until_ms, 'PX', tonumber(ARGV[1])) end
return until_ms
"""


@dataclass(frozen=True)
class Reservation:
    key: str
    id: str
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class AdmissionRequest:
    provider: str
    model: str
    key: str
    id: str
    input_tokens: int
    output_tokens: int
    limits: ModelLimits
    keys: list[str]
    args: list[Any]


@dataclass(frozen=True)
class Admission:
    """The limiter's answer: a reservation, or how long to wait."""

    reservation: Reservation | None
    wait_s: float


class RateLimiter:
    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self._redis = client
        self._settings = settings
        self._window_ms = int((settings.llm_limit_window_s + settings.llm_window_margin_s) * 1000)
        self._acquire = client.register_script(_ACQUIRE)
        self._reconcile = client.register_script(_RECONCILE)
        self._penalize = client.register_script(_PENALIZE)
        self._cancel = client.register_script(_CANCEL)
        self._deferred: Batcher[ScriptCall] = Batcher(
            "chimera-llm-reconcile", self._run_deferred, interval_s=0.005, max_batch=200
        )

    def _keys(self, key: str) -> list[str]:
        # One hash tag, so the keys of a model stay on one Redis Cluster slot.
        base = self._settings.redis_key("llm", "rl", f"{{{key}}}")
        return [f"{base}:log", f"{base}:tok", f"{base}:tot", f"{base}:penalty"]

    def limits(self, provider: str, model: str) -> ModelLimits:
        return self._settings.limits_for(provider, model)

    def try_acquire(
        self, provider: str, model: str, input_tokens: int, output_tokens: int
    ) -> Admission:
        """Reserve one request and the estimated tokens now, or say how long to wait."""
        ask = self.request(provider, model, input_tokens, output_tokens)
        try:
            (raw,) = run_scripts(self._redis, [self.acquire_call(ask)])
        except RedisError as exc:
            raise RedisUnavailable(f"rate limiter unavailable: {exc}") from exc
        return self.admission(ask, raw)

    def request(
        self, provider: str, model: str, input_tokens: int, output_tokens: int
    ) -> AdmissionRequest:
        """What ``try_acquire`` sends; queue it on a pipeline with ``queue``."""
        limits = self.limits(provider, model)
        if limits.otpm:  # a max_tokens above the whole budget must still be admissible
            output_tokens = min(output_tokens, limits.otpm)
        key = f"{provider}/{model}"
        rid = uuid.uuid4().hex
        args = [rid, limits.rpm or 0, limits.itpm or 0, limits.otpm or 0]
        args += [input_tokens, output_tokens, self._window_ms]
        return AdmissionRequest(
            provider, model, key, rid, input_tokens, output_tokens, limits, self._keys(key), args
        )

    def acquire_call(self, ask: AdmissionRequest) -> ScriptCall:
        """``try_acquire`` as a script call, to batch with others; read it with ``admission``."""
        return ScriptCall(self._acquire, ask.keys, ask.args)

    def admission(self, ask: AdmissionRequest, raw: Any) -> Admission:
        """Read the script's answer (``[1, 0]`` admitted, ``[0, ms]`` wait, ``[-1, 0]`` never)."""
        admitted, wait_ms = int(raw[0]), int(raw[1])
        provider, model, limits = ask.provider, ask.model, ask.limits
        input_tokens, output_tokens, key, rid = ask.input_tokens, ask.output_tokens, ask.key, ask.id
        if admitted == -1:
            raise LLMBadRequest(
                f"the request needs ~{input_tokens} input tokens but {key} allows "
                f"{limits.itpm} per minute: it can never be sent",
                provider=provider,
                model=model,
            )
        if admitted == 1:
            return Admission(Reservation(key, rid, input_tokens, output_tokens), 0.0)
        return Admission(None, max(0.001, wait_ms / 1000))

    def reconcile(self, reservation: Reservation, input_tokens: int, output_tokens: int) -> None:
        """Replace the estimate with the real usage (if still in the window)."""
        try:
            run_scripts(
                self._redis, [self._reconcile_call(reservation, input_tokens, output_tokens)]
            )
        except RedisError as exc:
            raise RedisUnavailable(f"rate limiter unavailable: {exc}") from exc

    def reconcile_soon(
        self, reservation: Reservation, input_tokens: int, output_tokens: int
    ) -> None:
        """``reconcile`` off the caller's path (within a few ms, batched).  Until it
        lands the reservation holds its estimate, which errs on the safe side."""
        self._deferred.submit(self._reconcile_call(reservation, input_tokens, output_tokens))

    def _reconcile_call(
        self, reservation: Reservation, input_tokens: int, output_tokens: int
    ) -> ScriptCall:
        _, tok, tot, _ = self._keys(reservation.key)
        args = [reservation.id, max(0, input_tokens), max(0, output_tokens)]
        return ScriptCall(self._reconcile, [tok, tot], args)

    def _run_deferred(self, calls: list[ScriptCall]) -> None:
        try:
            run_scripts(self._redis, calls)
        except RedisError as exc:  # estimates stay in place: conservative, not wrong
            log.warning("could not reconcile %d reservations: %s", len(calls), exc)

    def flush(self, timeout_s: float = 5.0) -> bool:
        return self._deferred.flush(timeout_s)

    def close(self) -> None:
        self._deferred.close()

    def cancel(self, reservation: Reservation) -> None:
        """Give a reservation back whole: the call was never made."""
        log_key, tok, tot, _ = self._keys(reservation.key)
        try:
            self._cancel(keys=[log_key, tok, tot], args=[reservation.id])
        except RedisError as exc:
            raise RedisUnavailable(f"rate limiter unavailable: {exc}") from exc

    def penalize(self, provider: str, model: str, seconds: float) -> None:
        """No process calls ``provider/model`` for ``seconds`` (a provider's retry-after)."""
        penalty_key = self._keys(f"{provider}/{model}")[3]
        try:
            self._penalize(keys=[penalty_key], args=[max(1, math.ceil(seconds * 1000))])
        except RedisError as exc:
            raise RedisUnavailable(f"rate limiter unavailable: {exc}") from exc
