"""What the bridge did, for its heartbeat and its one summary line at exit."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bridges.records import Outcome, Result


@dataclass
class Stats:
    started_at: float = field(default_factory=time.monotonic)
    consumed: int = 0
    handed_off: int = 0
    #: Hand-offs of duplicates still ``received`` (also counted in ``handed_off``).
    handed_off_again: int = 0
    duplicates: int = 0
    dead_lettered: Counter[str] = field(default_factory=Counter)
    #: Transient failures (a record, a poll or a commit that had to be retried).
    errors: int = 0

    def add(self, result: Result) -> None:
        self.consumed += 1
        if result.outcome in (Outcome.HANDED_OFF, Outcome.HANDED_OFF_AGAIN):
            self.handed_off += 1
            self.handed_off_again += result.outcome is Outcome.HANDED_OFF_AGAIN
        elif result.outcome is Outcome.DUPLICATE:
            self.duplicates += 1
        else:
            self.dead_lettered[result.reason or "unknown"] += 1

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self.started_at

    def as_dict(self) -> dict[str, Any]:
        return {
            "consumed": self.consumed,
            "handed_off": self.handed_off,
            "handed_off_again": self.handed_off_again,
            "duplicates": self.duplicates,
            "dead_lettered": dict(self.dead_lettered),
            "errors": self.errors,
            "uptime_s": round(self.uptime_s, 1),
        }

    def summary(self) -> str:
        dead = ",".join(f"{k}:{v}" for k, v in sorted(self.dead_lettered.items())) or "0"
        return (
            f"consumed={self.consumed} handed_off={self.handed_off} "
            f"(again={self.handed_off_again}) duplicates={self.duplicates} "
            f"dead_lettered={sum(self.dead_lettered.values())} ({dead}) "
            f"errors={self.errors} uptime={self.uptime_s:.1f}s"
        )
