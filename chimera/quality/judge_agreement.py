"""How far the LLM judge agrees with the cheap score, per job (derived from the rows).

For a job: how many of its conversations were judged (and refused, failed), the judge's
mean overall, the Spearman correlation between the judge's overall and the conversations'
stored score (``SCORE``), the judge's cost (its ``llm_calls``), and, when pairwise checks
were run, the share of consistent verdicts that agree with the score's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import aliased

from chimera.db.tables import Conversation, ConversationComparison, ConversationJudgement, LLMCall
from chimera.quality.stats import spearman as rank_correlation

#: The stored score the judge is checked against (the conversation's quality score, of
#: whatever version finalise stores).
SCORE = Conversation.quality_score
#: Fewer pairs than this give no correlation.
MIN_PAIRS = 3


@dataclass(frozen=True)
class JudgeFigures:
    """The judge's figures for one job."""

    judged: int
    refused: int
    failed: int
    mean_overall: float | None
    #: Spearman between the judge's overall and the stored score (None: too few, or constant).
    spearman: float | None
    cost_usd: float
    pairwise_checks: int = 0
    pairwise_consistent: int = 0
    #: Consistent verdicts whose winner also scored higher / consistent verdicts between
    #: differently scored conversations (None: none).
    pairwise_agreement: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation; None with fewer than ``MIN_PAIRS`` pairs or a constant
    side."""
    return rank_correlation(xs, ys, min_pairs=MIN_PAIRS)


def judge_figures(conn: Connection, job_id: str) -> JudgeFigures | None:
    """The judge's figures for ``job_id`` (read in ``conn``'s transaction); None when
    none of its conversations was put to the judge."""
    j = ConversationJudgement
    rows = conn.execute(
        select(j.status, j.overall, SCORE)
        .join(Conversation, Conversation.id == j.conversation_id)
        .where(j.job_id == job_id)
    ).all()
    if not rows:
        return None
    by_status = {s: sum(1 for r in rows if r.status == s) for s in ("judged", "refused", "failed")}
    overall = [float(r.overall) for r in rows if r.overall is not None]
    scored = [(float(o), float(s)) for _, o, s in rows if o is not None and s is not None]
    cost = conn.execute(
        select(func.coalesce(func.sum(LLMCall.cost_usd), 0)).where(
            LLMCall.owner_type == "conversation",
            LLMCall.task == "judge",
            LLMCall.owner_id.in_(select(Conversation.id).where(Conversation.job_id == job_id)),
        )
    ).scalar_one()
    checks, consistent, agreement = _pairwise(conn, job_id)
    return JudgeFigures(
        judged=by_status["judged"],
        refused=by_status["refused"],
        failed=by_status["failed"],
        mean_overall=sum(overall) / len(overall) if overall else None,
        spearman=spearman([o for o, _ in scored], [s for _, s in scored]),
        cost_usd=float(Decimal(cost)),
        pairwise_checks=checks,
        pairwise_consistent=consistent,
        pairwise_agreement=agreement,
    )


def _pairwise(conn: Connection, job_id: str) -> tuple[int, int, float | None]:
    """(checks, consistent a/b verdicts, share of those agreeing with the score order)."""
    c = ConversationComparison
    a, b = aliased(Conversation), aliased(Conversation)
    score_a = getattr(a, SCORE.key)
    score_b = getattr(b, SCORE.key)
    rows = conn.execute(
        select(c.verdict, score_a, score_b)
        .join(a, a.id == c.conversation_a)
        .join(b, b.id == c.conversation_b)
        .where(c.job_id == job_id)
    ).all()
    consistent = [r for r in rows if r.verdict in ("a", "b")]
    ordered = [r for r in consistent if None not in (r[1], r[2]) and r[1] != r[2]]
    agree = sum(1 for v, sa, sb in ordered if (v == "a") == (sa > sb))
    return len(rows), len(consistent), (agree / len(ordered) if ordered else None)
