"""How fast a job goes and when it should be done (pure: the figures read the counts).

The rate is the conversations accepted over a recent window (``RATE_WINDOW_S``, or
since the job started when that is shorter), per minute; the ETA is what is left of
the target at that rate.  A job with no target, or no accepted conversation in the
window, has no ETA.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from chimera.db.tables import JobStatus

#: Statuses a job never leaves.
FINAL = frozenset(
    {JobStatus.COMPLETED, JobStatus.CANCELLED, JobStatus.BUDGET_EXHAUSTED, JobStatus.FAILED}
)

#: The recent window over which the rate is taken.
RATE_WINDOW_S = 600.0
#: A job younger than this has no rate yet (a rate over a second or two means nothing).
MIN_SPAN_S = 5.0


def rate_per_min(accepted_in_window: int, window_s: float, running_s: float | None) -> float | None:
    """Accepted per minute over the last ``window_s`` seconds (or the ``running_s``
    seconds since the job started, if fewer); None while there is no span to speak of."""
    if window_s <= 0:
        raise ValueError(f"window_s must be positive, not {window_s}")
    span = window_s if running_s is None else min(window_s, max(0.0, running_s))
    if span < MIN_SPAN_S:
        return None
    return max(0, accepted_in_window) * 60.0 / span


def eta_s(accepted: int, target: int | None, per_min: float | None) -> float | None:
    """Seconds until ``target`` accepted at ``per_min``: 0 once reached; None without a
    target or a positive rate."""
    if target is None:
        return None
    if accepted >= target:
        return 0.0
    if per_min is None or per_min <= 0:
        return None
    return (target - accepted) * 60.0 / per_min


def duration(seconds: float | None) -> str:
    """``1h02m``, ``3m05s``, ``42s``; ``-`` for None."""
    if seconds is None or math.isnan(seconds):
        return "-"
    s = math.ceil(seconds)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    if h:
        return f"{h}h{m:02d}m"
    if m:
        return f"{m}m{sec:02d}s"
    return f"{sec}s"


def bar(done: int, target: int | None, width: int = 20) -> str:
    """``[#####---------------]`` (empty without a target)."""
    if target is None or target <= 0 or width <= 0:
        return ""
    filled = min(width, done * width // target)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def spent(cost_usd: Decimal | float, budget_usd: float | None) -> str:
    """``$1.2345`` or ``$1.2345/$10.00``."""
    head = f"${float(cost_usd):.4f}"
    return head if budget_usd is None else f"{head}/${float(budget_usd):.2f}"


def line(job: dict[str, Any]) -> str:
    """One progress line of a job as ``StoredJob.as_dict`` gives it."""
    fig = job["figures"]
    target = job["spec"].get("target")
    accepted = fig["accepted"]
    done = f"{accepted}/{target}" if target is not None else f"{accepted} ({job['fed']} published)"
    per_min = fig.get("accepted_per_min")
    rate = "-" if per_min is None else f"{per_min:.2f}/min"
    yld = fig.get("yield")
    parts = [
        job["status"],
        " ".join(p for p in (bar(accepted, target), f"accepted {done}") if p),
        f"rate {rate}",
        f"eta {duration(fig.get('eta_s'))}",
        f"spent {spent(fig['cost_usd'], job['spec'].get('budget_usd'))}",
        f"yield {'-' if yld is None else f'{yld:.2f}'}",
        f"running {fig['running']}",
    ]
    rejected = fig.get("rejected") or {}
    if rejected:
        parts.append("rejected " + ",".join(f"{k}={v}" for k, v in sorted(rejected.items())))
    return " | ".join(parts)
