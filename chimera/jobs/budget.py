"""Budgets that stop spending: a job's worst-case reservations, fleet-wide, in Redis.

Before each LLM call of a job's conversation, ``JobBudgets.reserve`` reserves the call's
worst case (its estimated input tokens and its ``max_output_tokens`` at the price table's
rates) in one Lua call, refused (``BudgetExhausted``) when spent + reserved + this call
would pass the job's ``budget_usd``.  After the call ``settle`` turns the reservation into
what the call cost (what accounting records: a failed call costs nothing).  So the final
spend stays within the budget plus what was in flight when it was reached.

Amounts are integers of nano-USD (exact in Lua's doubles up to millions of dollars).  The
``spent`` figure is a cache of the truth, the job's ``llm_calls`` cost: a key Redis lost is
rebuilt from Postgres on the next reservation (reservations lost with it are not counted
again: their settles never take ``reserved`` below zero).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import redis

from chimera.errors import BudgetExhausted
from chimera.jobs.control import JobControl
from chimera.llm.pricing import PriceTable
from chimera.llm.types import LLMRequest
from chimera.redis_errors import redis_errors
from chimera.settings import Settings

NANO = Decimal(1_000_000_000)

# KEYS: spend.  ARGV: amount, budget (-1: none).  {-1} spent unknown (rebuild first);
# {0, spent, reserved} refused; {1, spent, reserved} reserved.
_RESERVE = """
local spend = KEYS[1]
local amount, budget = tonumber(ARGV[1]), tonumber(ARGV[2])
local spent = redis.call('HGET', spend, 'spent')
if not spent then return {-1} end
spent = tonumber(spent)
local reserved = tonumber(redis.call('HGET', spend, 'reserved') or '0')
if budget >= 0 and spent + reserved + amount > budget then return {0, spent, reserved} end
reserved = redis.call('HINCRBY', spend, 'reserved', amount)
return {1, spent, reserved}
"""

# KEYS: spend.  ARGV: reserved amount, actual cost.  Returns actual - reserved.
_SETTLE = """
local spend = KEYS[1]
local amount, actual = tonumber(ARGV[1]), tonumber(ARGV[2])
local reserved = redis.call('HINCRBY', spend, 'reserved', -amount)
if reserved < 0 then redis.call('HSET', spend, 'reserved', 0) end
if redis.call('HEXISTS', spend, 'spent') == 1 then
  redis.call('HINCRBY', spend, 'spent', actual)
end
return actual - amount
"""


def nano(usd: Decimal | float) -> int:
    """``usd`` in whole nano-USD (rounded up: a reservation never undercounts)."""
    value = Decimal(str(usd)) * NANO
    return int(value.to_integral_value(rounding="ROUND_CEILING"))


@dataclass(frozen=True)
class Hold:
    """One call's reservation against its job's budget."""

    job_id: str
    amount: int


@dataclass(frozen=True)
class Spend:
    """A job's figures in Redis (nano-USD)."""

    spent: int
    reserved: int


class JobBudgets:
    """The LLM client's spend guard (``chimera.llm.calls.SpendGuard``) for jobs."""

    def __init__(
        self,
        client: redis.Redis,
        settings: Settings,
        control: JobControl,
        prices: PriceTable,
        spent_of: Callable[[str], Decimal],
    ) -> None:
        self._redis = client
        self._settings = settings
        self._control = control
        self._prices = prices
        self._spent_of = spent_of
        self._reserve = client.register_script(_RESERVE)
        self._settle = client.register_script(_SETTLE)

    def key(self, job_id: str) -> str:
        return self._settings.redis_key("job", f"{{{job_id}}}", "spend")

    # --- the guard ------------------------------------------------------------------------

    def reserve(self, request: LLMRequest, input_tokens: int) -> Hold | None:
        """Reserve the call's worst case, or ``BudgetExhausted``; None for a call of no job."""
        job_id = request.meta.job_id
        if job_id is None:
            return None
        state = self._control.state(job_id)
        if state is None:  # no such job (any more): nothing to hold it to
            return None
        worst = self._prices.cost(
            request.provider, request.model, input_tokens, request.max_output_tokens
        )
        budget = -1 if state.budget_usd is None else nano(state.budget_usd)
        return self.reserve_amount(job_id, nano(worst), budget)

    def settle(
        self, hold: object, input_tokens: int, output_tokens: int, request: LLMRequest
    ) -> None:
        """The reservation becomes what the call cost."""
        if not isinstance(hold, Hold):
            return
        actual = self._prices.cost(request.provider, request.model, input_tokens, output_tokens)
        self.settle_amount(hold, nano(actual))

    # --- the figures ------------------------------------------------------------------------

    def reserve_amount(self, job_id: str, amount: int, budget: int) -> Hold:
        """Reserve ``amount`` against ``budget`` (-1: none); ``BudgetExhausted`` if it
        does not fit."""
        for _ in (1, 2):
            with redis_errors("cannot reserve the job's budget", job_id=job_id):
                raw = self._reserve(keys=[self.key(job_id)], args=[amount, budget])
            if int(raw[0]) == 1:
                return Hold(job_id, amount)
            if int(raw[0]) == 0:
                raise BudgetExhausted(
                    f"job {job_id} would pass its budget: spent {int(raw[1]) / NANO:.6f}, "
                    f"reserved {int(raw[2]) / NANO:.6f}, this call up to {amount / NANO:.6f} USD",
                    job_id=job_id,
                )
            self.rebuild(job_id)
        raise AssertionError("unreachable")  # pragma: no cover

    def settle_amount(self, hold: Hold, actual: int) -> int:
        """Release ``hold`` and add ``actual`` to the spent figure; actual - reserved."""
        with redis_errors("cannot settle the job's budget", job_id=hold.job_id):
            return int(self._settle(keys=[self.key(hold.job_id)], args=[hold.amount, actual]))

    def rebuild(self, job_id: str) -> None:
        """The spent figure from the job's ``llm_calls`` (kept if another worker set it)."""
        spent = nano(self._spent_of(job_id))
        with redis_errors("cannot rebuild the job's budget", job_id=job_id):
            self._redis.hsetnx(self.key(job_id), "spent", spent)

    def figures(self, job_id: str) -> Spend | None:
        """The job's spent and reserved nano-USD in Redis; None if not there."""
        with redis_errors("cannot read the job's budget", job_id=job_id):
            raw = self._redis.hmget(self.key(job_id), ["spent", "reserved"])
        if raw[0] is None:
            return None
        return Spend(int(raw[0]), int(raw[1] or 0))
