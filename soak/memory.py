"""Memory slope: RSS against events settled, least squares per process lifetime (a
restart starts a new lifetime), in MB per 1,000 events."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from soak.monitor import Sample

#: A lifetime's first samples are start-up (imports, pools, caches), not a trend.
WARMUP_S = 60.0
MIN_SAMPLES = 5
MIN_SPAN_EVENTS = 50


def _slope(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def memory_slopes(samples: list[Sample]) -> dict[str, Any]:
    """Per component and lifetime: MB per 1,000 events (settled; accepted for the bridge)."""
    lifetimes: dict[tuple[str, int], list[tuple[float, float, float]]] = defaultdict(list)
    for s in samples:
        for name, (pid, mb) in s.rss_mb.items():
            x = s.accepted if name == "bridge" else s.settled
            lifetimes[(name, pid)].append((s.at, float(x), mb))
    out: dict[str, Any] = {}
    for (name, pid), points in sorted(lifetimes.items()):
        entry = out.setdefault(name, {"lifetimes": [], "slope_mb_per_1000_events": None})
        steady = [p for p in points if p[0] - points[0][0] >= WARMUP_S]
        life: dict[str, Any] = {
            "pid": pid,
            "samples": len(points),
            "seconds": round(points[-1][0] - points[0][0], 1),
            "first_mb": round(points[0][2], 1),
            "last_mb": round(points[-1][2], 1),
            "peak_mb": round(max(p[2] for p in points), 1),
            "slope_mb_per_1000_events": None,
        }
        if steady:
            span = steady[-1][1] - steady[0][1]
            life["events"] = int(span)
            if len(steady) >= MIN_SAMPLES and span >= MIN_SPAN_EVENTS:
                slope = _slope([p[1] / 1000 for p in steady], [p[2] for p in steady])
                life["slope_mb_per_1000_events"] = round(slope, 3)
        entry["lifetimes"].append(life)
    for entry in out.values():
        measured = [lf for lf in entry["lifetimes"] if lf["slope_mb_per_1000_events"] is not None]
        weight = sum(lf["events"] for lf in measured)
        if weight:
            entry["slope_mb_per_1000_events"] = round(
                sum(lf["slope_mb_per_1000_events"] * lf["events"] for lf in measured) / weight, 3
            )
    return out
