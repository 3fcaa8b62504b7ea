"""Fleet-wide rate limits: requests, input tokens and output tokens per minute,
shared by every process through Redis.

A call counts in one or more sliding windows, each a log on the Redis server's
clock: a sorted set of reservations (score = admission time) and their token
counts.  With ``CHIMERA_LLM_LIMIT_SCOPE=provider`` (the default) every call to a
provider counts in the provider's window (RATE_LIMIT_REQUESTS_PER_MINUTE and the
provider's CHIMERA_LLM_LIMITS entry), whatever model it names, and a model with
its own ``provider/model`` entry counts in that model's window too; with ``model``
each model has one window, its entry over its provider's.  Admission is one Lua
script (atomic across the fleet): it drops what left each window, and either
records the reservation in all of them or answers how long to wait until enough
of every window has expired.  A window, unlike a token bucket, never lets more
than the limit through in any 60 s span, which is how providers count.

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

from chimera.batching import Batcher
from chimera.errors import ChimeraError, LLMBadRequest
from chimera.redis_client import ScriptCall, run_scripts
from chimera.redis_errors import redis_errors
from chimera.settings import Settings
from chimera.settings_values import ModelLimits

log = logging.getLogger(__name__)

#: KEYS: log, tok, tot of each window, then the model's penalty key.
#: ARGV: id, estimated in and out tokens, window ms, then rpm, itpm, otpm of each window.
#: Answers {1, 0} admitted, {0, ms} wait, {-1, w} never (window w's budget is too small).
_ACQUIRE = """
local id = ARGV[1]
local ein, eout, window = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local n = (#KEYS - 1) / 3
local pen = KEYS[#KEYS]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

for w = 0, n - 1 do
  local log, tok, tot = KEYS[3 * w + 1], KEYS[3 * w + 2], KEYS[3 * w + 3]
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
end

local until_ms = tonumber(redis.call('GET', pen) or '0')
if until_ms > now then return {0, until_ms - now} end

local wait = 0
for w = 0, n - 1 do
  local log, tok, tot = KEYS[3 * w + 1], KEYS[3 * w + 2], KEYS[3 * w + 3]
  local rpm, itpm = tonumber(ARGV[3 * w + 5]), tonumber(ARGV[3 * w + 6])
  local otpm = tonumber(ARGV[3 * w + 7])
  if (itpm > 0 and ein > itpm) or (otpm > 0 and eout > otpm) then return {-1, w} end

  local count = redis.call('ZCARD', log)
  local tin = tonumber(redis.call('HGET', tot, 'in') or '0')
  local tout = tonumber(redis.call('HGET', tot, 'out') or '0')
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
end
if wait > 0 then return {0, wait} end

for w = 0, n - 1 do
  local log, tok, tot = KEYS[3 * w + 1], KEYS[3 * w + 2], KEYS[3 * w + 3]
  redis.call('ZADD', log, now, id)
  redis.call('HSET', tok, id, ein .. ':' .. eout)
  redis.call('HINCRBY', tot, 'in', ein)
  redis.call('HINCRBY', tot, 'out', eout)
  for _, k in ipairs({log, tok, tot}) do redis.call('PEXPIRE', k, window * 2) end
end
return {1, 0}
"""

#: KEYS: tok, tot of each window the reservation holds.
_RECONCILE = """
local done = 0
for w = 0, #KEYS / 2 - 1 do
  local tok, tot = KEYS[2 * w + 1], KEYS[2 * w + 2]
  local v = redis.call('HGET', tok, ARGV[1])
  if v then
    local i, o = string.match(v, '^(%d+):(%d+)$')
    redis.call('HSET', tok, ARGV[1], ARGV[2] .. ':' .. ARGV[3])
    redis.call('HINCRBY', tot, 'in', tonumber(ARGV[2]) - tonumber(i))
    redis.call('HINCRBY', tot, 'out', tonumber(ARGV[3]) - tonumber(o))
    done = done + 1
  end
end
return done
"""

#: KEYS: log, tok, tot of each window the reservation holds.
_CANCEL = """
local done = 0
for w = 0, #KEYS / 3 - 1 do
  local log, tok, tot = KEYS[3 * w + 1], KEYS[3 * w + 2], KEYS[3 * w + 3]
  local v = redis.call('HGET', tok, ARGV[1])
  if v then
    local i, o = string.match(v, '^(%d+):(%d+)$')
    redis.call('HINCRBY', tot, 'in', 0 - tonumber(i))
    redis.call('HINCRBY', tot, 'out', 0 - tonumber(o))
    redis.call('HDEL', tok, ARGV[1])
    redis.call('ZREM', log, ARGV[1])
    done = done + 1
  end
end
return done
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
class Window:
    """One window a call counts in: its name (``openai`` or ``openai/m``), its Redis
    key base and its limits."""

    name: str
    base: str
    limits: ModelLimits

    @property
    def keys(self) -> list[str]:
        return [f"{self.base}:log", f"{self.base}:tok", f"{self.base}:tot"]


@dataclass(frozen=True)
class Reservation:
    #: Redis key bases of the windows the reservation is held in.
    bases: tuple[str, ...]
    id: str
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class AdmissionRequest:
    provider: str
    model: str
    windows: tuple[Window, ...]
    id: str
    input_tokens: int
    output_tokens: int
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

    def _base(self, provider: str, model: str | None = None) -> str:
        """The key base of a provider's window (``model`` None) or of a model's.

        One hash tag per call, so every key a script touches stays on one Redis
        Cluster slot: the provider under the provider scope, the model under the model
        scope (the keys per-model windows always had).
        """
        if self._settings.llm_limit_scope == "model":
            return self._settings.redis_key("llm", "rl", f"{{{provider}/{model}}}")
        base = self._settings.redis_key("llm", "rl", f"{{{provider}}}")
        return base if model is None else f"{base}:{model}"

    def windows(self, provider: str, model: str) -> tuple[Window, ...]:
        """The windows a call to ``provider/model`` counts in, under the configured scope."""
        settings, key = self._settings, f"{provider}/{model}"
        if settings.llm_limit_scope == "model":
            return (Window(key, self._base(provider, model), settings.limits_for(provider, model)),)
        limits: dict[str, int | None] = {"rpm": settings.rate_limit_requests_per_minute}
        if provider in settings.llm_limits:
            limits |= settings.llm_limits[provider].model_dump(exclude_unset=True)
        shared = Window(provider, self._base(provider), ModelLimits(**limits))
        if key not in settings.llm_limits:
            return (shared,)
        return shared, Window(key, self._base(provider, model), settings.llm_limits[key])

    def try_acquire(
        self, provider: str, model: str, input_tokens: int, output_tokens: int
    ) -> Admission:
        """Reserve one request and the estimated tokens now, or say how long to wait."""
        ask = self.request(provider, model, input_tokens, output_tokens)
        with redis_errors("rate limiter unavailable"):
            (raw,) = run_scripts(self._redis, [self.acquire_call(ask)])
        return self.admission(ask, raw)

    def request(
        self, provider: str, model: str, input_tokens: int, output_tokens: int
    ) -> AdmissionRequest:
        """What ``try_acquire`` sends; run it with others through ``acquire_call``."""
        windows = self.windows(provider, model)
        # A max_tokens above a whole budget must still be admissible.
        for otpm in (w.limits.otpm for w in windows if w.limits.otpm):
            output_tokens = min(output_tokens, otpm)
        rid = uuid.uuid4().hex
        keys = [k for w in windows for k in w.keys] + [f"{self._base(provider, model)}:penalty"]
        args: list[Any] = [rid, input_tokens, output_tokens, self._window_ms]
        for w in windows:
            args += [w.limits.rpm or 0, w.limits.itpm or 0, w.limits.otpm or 0]
        return AdmissionRequest(
            provider, model, windows, rid, input_tokens, output_tokens, keys, args
        )

    def acquire_call(self, ask: AdmissionRequest) -> ScriptCall:
        """``try_acquire`` as a script call, to batch with others; read it with ``admission``."""
        return ScriptCall(self._acquire, ask.keys, ask.args)

    def admission(self, ask: AdmissionRequest, raw: Any) -> Admission:
        """Read the script's answer (``[1, 0]`` admitted, ``[0, ms]`` wait, ``[-1, w]`` never)."""
        admitted, detail = int(raw[0]), int(raw[1])
        if admitted == -1:
            window = ask.windows[detail]
            raise LLMBadRequest(
                f"the request needs ~{ask.input_tokens} input tokens but {window.name} allows "
                f"{window.limits.itpm} per minute: it can never be sent",
                provider=ask.provider,
                model=ask.model,
            )
        if admitted == 1:
            bases = tuple(w.base for w in ask.windows)
            return Admission(Reservation(bases, ask.id, ask.input_tokens, ask.output_tokens), 0.0)
        return Admission(None, max(0.001, detail / 1000))

    def reconcile(self, reservation: Reservation, input_tokens: int, output_tokens: int) -> None:
        """Replace the estimate with the real usage (if still in the window)."""
        with redis_errors("rate limiter unavailable"):
            run_scripts(
                self._redis, [self._reconcile_call(reservation, input_tokens, output_tokens)]
            )

    def reconcile_soon(
        self, reservation: Reservation, input_tokens: int, output_tokens: int
    ) -> None:
        """``reconcile`` off the caller's path (within a few ms, batched).  Until it
        lands the reservation holds its estimate, which errs on the safe side."""
        self._deferred.submit(self._reconcile_call(reservation, input_tokens, output_tokens))

    def _reconcile_call(
        self, reservation: Reservation, input_tokens: int, output_tokens: int
    ) -> ScriptCall:
        keys = [k for base in reservation.bases for k in (f"{base}:tok", f"{base}:tot")]
        args = [reservation.id, max(0, input_tokens), max(0, output_tokens)]
        return ScriptCall(self._reconcile, keys, args)

    def _run_deferred(self, calls: list[ScriptCall]) -> None:
        try:
            with redis_errors("rate limiter unavailable"):
                run_scripts(self._redis, calls)
        except ChimeraError as exc:  # estimates stay in place: conservative, not wrong
            log.warning("could not reconcile %d reservations: %s", len(calls), exc)

    def flush(self, timeout_s: float = 5.0) -> bool:
        return self._deferred.flush(timeout_s)

    def close(self) -> None:
        self._deferred.close()

    def cancel(self, reservation: Reservation) -> None:
        """Give a reservation back whole: the call was never made."""
        keys = [f"{base}:{part}" for base in reservation.bases for part in ("log", "tok", "tot")]
        with redis_errors("rate limiter unavailable"):
            self._cancel(keys=keys, args=[reservation.id])

    def penalize(self, provider: str, model: str, seconds: float) -> None:
        """No process calls ``provider/model`` for ``seconds`` (a provider's retry-after)."""
        penalty_key = f"{self._base(provider, model)}:penalty"
        with redis_errors("rate limiter unavailable"):
            self._penalize(keys=[penalty_key], args=[max(1, math.ceil(seconds * 1000))])
