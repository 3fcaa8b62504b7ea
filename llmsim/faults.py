"""Injectable faults: "the next N calls get F" (queued) and "a fraction p of calls get F" (rates).

A queued fault is consumed by the next matching call, first in first out, and takes precedence
over rates; rates are tried in the order they were added, each an independent draw from the
simulator's seeded random generator.  A fault may be narrowed to one provider and/or one model.
Faults apply to generation calls that pass authentication and validation, never to the admin API
or token counting.

Kinds (the rendering per provider is in each ``*_api`` module):

=============  ===============================================================================
rate_limit     429 with ``retry-after: retry_after_s`` (Gemini: RetryInfo ``retryDelay``)
spend_cap      429 without retry-after; Anthropic ``error.details.error_code =
               "enforced_spend_limit_reached"``, OpenAI ``insufficient_quota``
server_error   500
unavailable    503
overloaded     Anthropic 529 ``overloaded_error``; Gemini and OpenAI 503 "overloaded"
timeout        waits ``delay_s`` (default: the config's ``timeout_fault_delay_s``), then answers
reset          closes the connection with a TCP RST, no response
truncated      200 whose JSON body is cut in half (a stream stops half way, cleanly)
safety         Anthropic ``stop_reason: "refusal"``; Gemini blocked prompt; OpenAI
               ``finish_reason: "content_filter"``
bad_request    400;  unauthorized 401;  forbidden 403
empty          200 with empty text and no usage
=============  ===============================================================================

``status`` overrides the HTTP status of the error kinds (e.g. ``overloaded`` with 529 for Gemini).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FaultKind = Literal[
    "rate_limit",
    "spend_cap",
    "server_error",
    "unavailable",
    "overloaded",
    "timeout",
    "reset",
    "truncated",
    "safety",
    "bad_request",
    "unauthorized",
    "forbidden",
    "empty",
    "nul",
]
#: Faults answered with an error status instead of a completion.
ERROR_KINDS: frozenset[str] = frozenset(
    {
        "rate_limit",
        "spend_cap",
        "server_error",
        "unavailable",
        "overloaded",
        "bad_request",
        "unauthorized",
        "forbidden",
    }
)
PROVIDERS = ("anthropic", "google", "openai")
_PROVIDER_ALIASES = {"gemini": "google", "claude": "anthropic"}


class FaultSpec(BaseModel):
    """One fault to inject: ``count`` calls (queued) or a ``rate`` of calls; default one call."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: FaultKind
    count: int | None = Field(default=None, ge=1)
    rate: float | None = Field(default=None, gt=0, le=1)
    provider: Literal["anthropic", "google", "openai"] | None = None
    model: str | None = None
    retry_after_s: float = Field(
        default=1.0, ge=0, description="rate_limit: the retry-after to send"
    )
    delay_s: float | None = Field(default=None, ge=0, description="timeout: how long to stall")
    status: int | None = Field(
        default=None, ge=400, le=599, description="override the error status"
    )

    @field_validator("provider", mode="before")
    @classmethod
    def _alias(cls, value: Any) -> Any:
        return _PROVIDER_ALIASES.get(value, value) if isinstance(value, str) else value

    @model_validator(mode="before")
    @classmethod
    def _one_call_by_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("count") is None and data.get("rate") is None:
            return {**data, "count": 1}
        return data

    @model_validator(mode="after")
    def _count_or_rate(self) -> FaultSpec:
        if self.count is not None and self.rate is not None:
            raise ValueError(
                "give either count (the next N calls) or rate (a fraction of calls), not both"
            )
        return self

    def matches(self, provider: str, model: str) -> bool:
        return (self.provider is None or self.provider == provider) and (
            self.model is None or self.model == model
        )


@dataclass
class _Queued:
    spec: FaultSpec
    remaining: int


class FaultInjector:
    """Thread-safe store of queued and rate faults; :meth:`draw` picks the fault for a call."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._queued: list[_Queued] = []
        self._rates: list[FaultSpec] = []
        self._rng = random.Random(seed)  # noqa: S311 - reproducible fault draws, not secrets

    def add(self, spec: FaultSpec) -> None:
        with self._lock:
            if spec.rate is not None:
                self._rates.append(spec)
            else:
                self._queued.append(_Queued(spec, spec.count or 1))

    def clear(self) -> int:
        """Remove every fault; returns how many were active."""
        with self._lock:
            n = len(self._queued) + len(self._rates)
            self._queued.clear()
            self._rates.clear()
            return n

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._rng = random.Random(seed)  # noqa: S311 - as above

    def draw(self, provider: str, model: str) -> FaultSpec | None:
        """The fault this call gets, if any (consuming one use of a queued fault)."""
        with self._lock:
            for i, queued in enumerate(self._queued):
                if queued.spec.matches(provider, model):
                    queued.remaining -= 1
                    if queued.remaining <= 0:
                        del self._queued[i]
                    return queued.spec
            for spec in self._rates:
                if spec.matches(provider, model) and self._rng.random() < (spec.rate or 0.0):
                    return spec
        return None

    def active(self) -> list[dict[str, Any]]:
        """The faults still in effect, as JSON: queued ones with their remaining count."""
        with self._lock:
            queued = [
                {**q.spec.model_dump(exclude_none=True), "remaining": q.remaining}
                for q in self._queued
            ]
            return queued + [s.model_dump(exclude_none=True) for s in self._rates]
