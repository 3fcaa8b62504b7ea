"""Per-model rate limits the simulator enforces itself: requests, input tokens and output tokens
per minute.

**Sliding 60-second window log**, not a token bucket: every admitted request is remembered with
its tokens for 60 s, and a request is refused when admitting it would put the last 60 s over a
limit.  A log is exact and easy to reason about in tests ("the 4th call within a minute at
rpm=3 gets a 429"); ``retry-after`` is when enough old requests leave the window, rounded up to
whole seconds.  Output tokens are not known up front, so the output limit refuses a request
only once the tokens already produced in the window reach it (Anthropic also settles output
after the fact).  A request larger than a token limit by itself can never be admitted.

Models without limits are not tracked at all.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

WINDOW_S = 60.0


class Limits(BaseModel):
    """Per-minute limits of one model; ``None`` means unlimited."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rpm: int | None = Field(default=None, ge=1, description="requests per minute")
    itpm: int | None = Field(default=None, ge=1, description="input tokens per minute")
    otpm: int | None = Field(default=None, ge=1, description="output tokens per minute")

    @property
    def unlimited(self) -> bool:
        return self.rpm is None and self.itpm is None and self.otpm is None


@dataclass(frozen=True)
class Quota:
    """One limit's state after a decision, for ``*-limit``/``*-remaining``/``*-reset`` headers."""

    name: str  # "requests", "input_tokens", "output_tokens"
    limit: int
    remaining: int
    reset_s: float  # until the window holds nothing of this kind


@dataclass
class _Event:
    at: float
    input_tokens: int
    output_tokens: int = 0


@dataclass
class Admission:
    allowed: bool
    retry_after_s: float = 0.0
    exceeded: str | None = None  # which quota refused the request
    quotas: tuple[Quota, ...] = ()
    _event: _Event | None = field(default=None, repr=False)
    _window: _Window | None = field(default=None, repr=False)

    @property
    def retry_after_whole_s(self) -> int:
        """The wait in whole seconds, rounded up, at least 1 (what ``retry-after`` says)."""
        return max(1, math.ceil(self.retry_after_s))


@dataclass
class _Window:
    events: deque[_Event] = field(default_factory=deque)
    input_tokens: int = 0
    output_tokens: int = 0

    def purge(self, now: float) -> None:
        while self.events and self.events[0].at <= now - WINDOW_S:
            old = self.events.popleft()
            self.input_tokens -= old.input_tokens
            self.output_tokens -= old.output_tokens

    def wait_until_sum_below(self, now: float, attr: str, total: int, allowed: int) -> float:
        """Seconds until the window's ``attr`` total drops to ``allowed`` or less."""
        for event in self.events:
            if total <= allowed:
                break
            total -= getattr(event, attr)
            if total <= allowed:
                return event.at + WINDOW_S - now
        return WINDOW_S


class RateLimiter:
    """Thread-safe sliding-window limits, one window per model."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}

    def admit(self, model: str, limits: Limits, input_tokens: int) -> Admission:
        """Admit a request (remembering it) or say why not and when to retry."""
        if limits.unlimited:
            return Admission(allowed=True)
        with self._lock:
            now = self._clock()
            window = self._windows.setdefault(model, _Window())
            window.purge(now)
            refusal = self._refusal(window, limits, input_tokens, now)
            if refusal is not None:
                exceeded, wait = refusal
                return Admission(
                    False, max(wait, 0.001), exceeded, self._quotas(window, limits, now)
                )
            event = _Event(now, input_tokens)
            window.events.append(event)
            window.input_tokens += input_tokens
            return Admission(True, 0.0, None, self._quotas(window, limits, now), event, window)

    def record_output(self, admission: Admission, output_tokens: int) -> None:
        """Charge the output tokens of an admitted request to its window."""
        event, window = admission._event, admission._window
        if event is None or window is None:
            return
        with self._lock:
            event.output_tokens += output_tokens
            if window.events and event.at >= window.events[0].at:
                window.output_tokens += output_tokens

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()

    @staticmethod
    def _refusal(
        window: _Window, limits: Limits, input_tokens: int, now: float
    ) -> tuple[str, float] | None:
        events = window.events
        if limits.rpm is not None and len(events) + 1 > limits.rpm:
            return "requests", events[len(events) - limits.rpm].at + WINDOW_S - now
        if limits.itpm is not None and window.input_tokens + input_tokens > limits.itpm:
            if input_tokens > limits.itpm:
                return "input_tokens", WINDOW_S
            allowed = limits.itpm - input_tokens
            return "input_tokens", window.wait_until_sum_below(
                now, "input_tokens", window.input_tokens, allowed
            )
        if limits.otpm is not None and window.output_tokens >= limits.otpm:
            allowed = limits.otpm - 1
            return "output_tokens", window.wait_until_sum_below(
                now, "output_tokens", window.output_tokens, allowed
            )
        return None

    @staticmethod
    def _quotas(window: _Window, limits: Limits, now: float) -> tuple[Quota, ...]:
        reset = window.events[-1].at + WINDOW_S - now if window.events else 0.0
        out = []
        if limits.rpm is not None:
            out.append(
                Quota("requests", limits.rpm, max(0, limits.rpm - len(window.events)), reset)
            )
        if limits.itpm is not None:
            out.append(
                Quota("input_tokens", limits.itpm, max(0, limits.itpm - window.input_tokens), reset)
            )
        if limits.otpm is not None:
            out.append(
                Quota(
                    "output_tokens", limits.otpm, max(0, limits.otpm - window.output_tokens), reset
                )
            )
        return tuple(out)
