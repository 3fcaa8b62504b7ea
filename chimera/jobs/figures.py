"""A job's figures, derived from its conversations and their LLM calls (never kept twice)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, case, func, literal, select

from chimera.db.tables import Conversation, LLMCall

#: Why a finished conversation was not accepted.
BELOW_QUALITY = "below_quality"
FAILED = "failed"


@dataclass(frozen=True)
class Figures:
    """How far a job got."""

    started: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    llm_calls: int = 0

    @property
    def finished(self) -> int:
        return self.completed + self.failed

    @property
    def cost_per_accepted_usd(self) -> Decimal | None:
        return self.cost_usd / self.accepted if self.accepted else None

    @property
    def yield_(self) -> float | None:
        """Accepted / finished (None before anything finished)."""
        return self.accepted / self.finished if self.finished else None

    def as_dict(self) -> dict[str, Any]:
        per = self.cost_per_accepted_usd
        return {
            "started": self.started,
            "running": self.running,
            "completed": self.completed,
            "failed": self.failed,
            "accepted": self.accepted,
            "rejected": dict(self.rejected),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "llm_calls": self.llm_calls,
            "cost_usd": float(self.cost_usd),
            "cost_per_accepted_usd": None if per is None else float(per),
            "yield": self.yield_,
        }


def figures(conn: Connection, job_id: str, min_quality: float | None) -> Figures:
    """The figures of ``job_id`` (read in ``conn``'s transaction)."""
    c = Conversation
    completed = c.status == "completed"
    good = completed if min_quality is None else and_(completed, c.quality_score >= min_quality)

    def count(cond: Any) -> Any:
        return func.count(case((cond, literal(1))))

    row = conn.execute(
        select(
            func.count(),
            count(c.status.in_(("pending", "running"))),
            count(completed),
            count(c.status == "failed"),
            count(good),
        ).where(c.job_id == job_id)
    ).one()
    started, running, done, failed, accepted = (int(v) for v in row)
    calls = conn.execute(
        select(
            func.coalesce(func.sum(LLMCall.input_tokens), 0),
            func.coalesce(func.sum(LLMCall.output_tokens), 0),
            func.coalesce(func.sum(LLMCall.cost_usd), 0),
            func.count(),
        ).where(
            LLMCall.owner_type == "conversation",
            LLMCall.owner_id.in_(select(c.id).where(c.job_id == job_id)),
        )
    ).one()
    rejected = {k: v for k, v in ((BELOW_QUALITY, done - accepted), (FAILED, failed)) if v}
    return Figures(
        started=started,
        running=running,
        completed=done,
        failed=failed,
        accepted=accepted,
        rejected=rejected,
        input_tokens=int(calls[0]),
        output_tokens=int(calls[1]),
        cost_usd=Decimal(calls[2]),
        llm_calls=int(calls[3]),
    )
