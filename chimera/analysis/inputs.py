"""What an analysis reads: the request's segments, or a stored conversation's transcript,
cut to the input token budget (and saying so) rather than sent past the model's context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Engine, select

from chimera.db.errors import database_errors
from chimera.db.tables import ConversationTurn
from chimera.errors import ContextNotFound
from chimera.llm.calls import CHARS_PER_TOKEN
from chimera.models.analysis import AnalysisFields, Segment

#: Room kept in the budget for the instructions and the output schema.
PROMPT_OVERHEAD_TOKENS = 1_500
ELLIPSIS = " …"


@dataclass(frozen=True)
class AnalysisInput:
    context_id: str
    language: str
    #: The segments sent (the last one possibly cut short).
    segments: tuple[Segment, ...]
    source: Literal["segments", "conversation"]
    total_chars: int
    budget_tokens: int
    truncated: bool

    @property
    def text(self) -> str:
        return "\n\n".join(f"{s.speaker}: {s.text}" for s in self.segments)

    @property
    def speakers(self) -> list[str]:
        return list(dict.fromkeys(s.speaker for s in self.segments))

    def describe(self) -> dict[str, Any]:
        """What the result says about its input."""
        sent = sum(len(s.text) for s in self.segments)
        return {
            "source": self.source,
            "segments": len(self.segments),
            "chars": self.total_chars,
            "chars_sent": sent,
            "truncated": self.truncated,
            "budget_tokens": self.budget_tokens,
        }


def stored_segments(engine: Engine, context_id: str) -> tuple[Segment, ...]:
    """The transcript of the stored conversation ``context_id``."""
    query = (
        select(ConversationTurn.speaker, ConversationTurn.content)
        .where(ConversationTurn.conversation_id == context_id)
        .order_by(ConversationTurn.turn_index)
    )
    with database_errors(f"cannot read conversation {context_id}"), engine.connect() as conn:
        rows = conn.execute(query).all()
    segments = tuple(Segment(speaker=r.speaker, text=r.content) for r in rows if r.content.strip())
    if not segments:
        raise ContextNotFound(
            f"no segments given and no stored conversation {context_id!r} to analyse "
            "(it does not exist or has not completed)",
            context_id=context_id,
        )
    return segments


def resolve_input(
    request: AnalysisFields, engine: Engine | None, *, budget_tokens: int
) -> AnalysisInput:
    """The input of ``request``: its segments, else its stored context, within the budget."""
    if request.segments is not None:
        segments, source = request.segments, "segments"
    else:
        if engine is None:
            raise ContextNotFound("segments are required here", context_id=request.context_id)
        segments, source = stored_segments(engine, request.context_id), "conversation"
    kept, truncated = fit(segments, budget_tokens)
    return AnalysisInput(
        context_id=request.context_id,
        language=request.language,
        segments=kept,
        source=source,  # type: ignore[arg-type]
        total_chars=sum(len(s.text) for s in segments),
        budget_tokens=budget_tokens,
        truncated=truncated,
    )


def fit(segments: tuple[Segment, ...], budget_tokens: int) -> tuple[tuple[Segment, ...], bool]:
    """The leading segments that fit ``budget_tokens`` (the last one cut at a word)."""
    room = max(budget_tokens - PROMPT_OVERHEAD_TOKENS, budget_tokens // 4) * CHARS_PER_TOKEN
    kept: list[Segment] = []
    for segment in segments:
        cost = len(segment.speaker) + len(segment.text) + 4
        if cost <= room:
            kept.append(segment)
            room -= cost
            continue
        head = segment.text[: max(0, room - len(segment.speaker) - 4 - len(ELLIPSIS))]
        head = head.rsplit(" ", 1)[0] if " " in head else head
        if head.strip():
            kept.append(Segment(speaker=segment.speaker, text=head.rstrip() + ELLIPSIS))
        return tuple(kept) or segments[:0], True
    return tuple(kept), False
