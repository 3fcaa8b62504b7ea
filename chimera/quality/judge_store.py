"""The LLM judge's reads and writes in Postgres: the stored conversation it judges, its
judgements (one per conversation and judge model: the first writer wins) and its pairwise
checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.dialects.postgresql import insert

from chimera.db.errors import database_errors
from chimera.db.tables import (
    Conversation,
    ConversationComparison,
    ConversationJudgement,
    ConversationTurn,
)
from chimera.errors import NotFound
from chimera.quality.judge_prompts import Subject


@dataclass(frozen=True)
class Judgement:
    """A ``conversation_judgements`` row as the judge reads it back."""

    id: int
    conversation_id: str
    judge_provider: str
    judge_model: str
    status: str
    reason: str | None
    overall: int | None
    rubric: dict[str, Any] | None


class JudgeStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def subject(self, cid: str) -> Subject | None:
        """The completed conversation ``cid`` with its turns; None if it is not completed."""
        c, t = Conversation, ConversationTurn
        with (
            database_errors("cannot read a conversation", conversation_id=cid),
            self._engine.connect() as conn,
        ):
            row = conn.execute(
                select(c.id, c.job_id, c.topic, c.participants, c.quality_score).where(
                    c.id == cid, c.status == "completed"
                )
            ).first()
            if row is None:
                return None
            turns = conn.execute(
                select(t.speaker, t.content, t.provider)
                .where(t.conversation_id == cid)
                .order_by(t.turn_index)
            ).all()
        return Subject(
            id=row.id,
            job_id=row.job_id,
            topic=row.topic or {},
            participants=list(row.participants or []),
            turns=[(s, text) for s, text, _ in turns],
            turn_routes=frozenset(p for _, _, p in turns),
            quality_score=row.quality_score,
        )

    def judgement(self, cid: str, provider: str, model: str) -> Judgement | None:
        """The judgement of ``cid`` by ``provider/model``, if recorded."""
        j = ConversationJudgement
        with (
            database_errors("cannot read a judgement", conversation_id=cid),
            self._engine.connect() as conn,
        ):
            row = conn.execute(
                select(
                    j.id,
                    j.conversation_id,
                    j.judge_provider,
                    j.judge_model,
                    j.status,
                    j.reason,
                    j.overall,
                    j.rubric,
                ).where(
                    j.conversation_id == cid, j.judge_provider == provider, j.judge_model == model
                )
            ).first()
        return None if row is None else Judgement(*row)

    def record(
        self,
        subject: Subject,
        provider: str,
        model: str,
        *,
        status: str,
        reason: str | None = None,
        prompt_ref: str | None = None,
        rubric: dict[str, Any] | None = None,
        overall: int | None = None,
    ) -> Judgement:
        """Record a judgement once; the one recorded (this or an earlier writer's)."""
        stmt = insert(ConversationJudgement).values(
            conversation_id=subject.id,
            job_id=subject.job_id,
            judge_provider=provider,
            judge_model=model,
            status=status,
            reason=None if reason is None else reason[:2_000],
            prompt_ref=prompt_ref,
            rubric=rubric,
            overall=overall,
        )
        stmt = stmt.on_conflict_do_nothing(constraint="uq_conversation_judgements_judge")
        with (
            database_errors("cannot store a judgement", conversation_id=subject.id),
            self._engine.begin() as conn,
        ):
            conn.execute(stmt)
        found = self.judgement(subject.id, provider, model)
        if found is None:  # its conversation was deleted meanwhile
            raise NotFound(f"conversation {subject.id} is gone", conversation_id=subject.id)
        return found

    def partner(self, judged: Judgement, job_id: str) -> str | None:
        """The conversation of ``job_id`` judged (by the same model) just before ``judged``:
        the same one on every retry."""
        j = ConversationJudgement
        with (
            database_errors("cannot read judgements", job_id=job_id),
            self._engine.connect() as conn,
        ):
            return conn.execute(
                select(j.conversation_id)
                .where(
                    j.job_id == job_id,
                    j.status == "judged",
                    j.judge_provider == judged.judge_provider,
                    j.judge_model == judged.judge_model,
                    j.id < judged.id,
                )
                .order_by(j.id.desc())
                .limit(1)
            ).scalar_one_or_none()

    def compared(self, a: str, b: str, provider: str, model: str) -> str | None:
        """The verdict of the pairwise check of ``a`` and ``b``, if recorded."""
        c = ConversationComparison
        with (
            database_errors("cannot read a comparison", conversation_id=b),
            self._engine.connect() as conn,
        ):
            return conn.execute(
                select(c.verdict).where(
                    c.conversation_a == a,
                    c.conversation_b == b,
                    c.judge_provider == provider,
                    c.judge_model == model,
                )
            ).scalar_one_or_none()

    def record_comparison(self, values: dict[str, Any]) -> None:
        """Record a pairwise check once (the first writer wins)."""
        stmt = insert(ConversationComparison).values(**values)
        stmt = stmt.on_conflict_do_nothing(constraint="uq_conversation_comparisons_pair")
        with (
            database_errors("cannot store a comparison", conversation_id=values["conversation_b"]),
            self._engine.begin() as conn,
        ):
            conn.execute(stmt)
