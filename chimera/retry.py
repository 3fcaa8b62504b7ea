"""The retry delay: one pure function, table-tested."""

from __future__ import annotations

import random


def compute_backoff(
    attempt: int,
    *,
    base_s: float = 1.0,
    cap_s: float = 60.0,
    jitter: float = 0.25,
    server_hint_s: float | None = None,
    rand: random.Random | None = None,
) -> float:
    """Return the seconds to wait before retry number ``attempt`` (1-based).

    Exponential (``base_s * 2 ** (attempt - 1)``) capped at ``cap_s``, then spread
    by up to ``jitter`` of itself (full jitter would retry storms too early).  A
    server hint (``retry-after``) wins when it is longer than our own delay, but
    it is capped too: a ``retry-after: 3600`` must not park a task for an hour.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    if base_s < 0 or cap_s < 0 or not 0 <= jitter <= 1:
        raise ValueError("base_s and cap_s must be >= 0 and jitter in [0, 1]")
    delay = min(cap_s, base_s * 2.0 ** min(attempt - 1, 62))
    if jitter:
        r = float((rand or random).random())
        delay = delay * (1 - jitter) + delay * jitter * r
    if server_hint_s is not None and server_hint_s > delay:
        delay = min(server_hint_s, cap_s)
    return delay
