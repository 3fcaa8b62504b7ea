"""Output events: what Chimera publishes on its `*.turn`, `*.response` and
`*.completed` topics.

Each carries a deterministic ``event_id`` (``chimera.events.ids.output_event_id``, so
a re-published event can be deduplicated downstream), its ``event_type``, the
``conversation_id``, when it occurred and the W3C trace context of the work that
produced it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from chimera import defaults as d
from chimera.models.base import EventId, Identifier
from chimera.models.conversation import TopicSpec
from chimera.models.participants import Participant, Provider
from chimera.models.transcript import TranscriptTurn

EventType = Literal[
    "conversation.requested",
    "conversation.started",
    "turn.requested",
    "turn.completed",
    "turn.failed",
    "conversation.completed",
    "conversation.failed",
]

#: The topic (by its role, i.e. default name) each output event type goes to.
TOPIC_ROLE: dict[str, str] = {
    "conversation.started": d.TOPIC_CONVERSATION_TURN,
    "turn.requested": d.TOPIC_CONVERSATION_TURN,
    "turn.completed": d.TOPIC_CONVERSATION_RESPONSE,
    "turn.failed": d.TOPIC_CONVERSATION_RESPONSE,
    "conversation.completed": d.TOPIC_CONVERSATION_COMPLETED,
    "conversation.failed": d.TOPIC_CONVERSATION_COMPLETED,
    "analysis.completed": d.TOPIC_ANALYSIS_COMPLETED,
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class OutputEvent(BaseModel):
    """Fields every output event carries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: EventId
    event_type: str
    schema_version: int = 1
    conversation_id: Identifier
    occurred_at: datetime = Field(default_factory=utcnow)
    source_event_id: EventId | None = None
    traceparent: str | None = None
    tracestate: str | None = None
    #: Fields left empty because the event would not fit one Kafka record (Postgres keeps
    #: their content); absent on every event that fits.
    omitted: tuple[str, ...] | None = None

    @property
    def topic_role(self) -> str:
        return TOPIC_ROLE[self.event_type]

    @property
    def key(self) -> str:
        """The Kafka key: all of one conversation's events share a partition."""
        return self.conversation_id


class ConversationStarted(OutputEvent):
    event_type: Literal["conversation.started"] = "conversation.started"
    topic: TopicSpec
    participants: tuple[Participant, ...]
    min_turns: int
    max_turns: int


class TurnRequested(OutputEvent):
    event_type: Literal["turn.requested"] = "turn.requested"
    turn_index: int = Field(ge=0)
    speaker: str
    provider: Provider
    model: str


class TurnCompleted(OutputEvent):
    event_type: Literal["turn.completed"] = "turn.completed"
    turn_index: int = Field(ge=0)
    speaker: str
    provider: Provider
    model: str
    text: str
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    latency_ms: float = Field(ge=0)


class TurnFailed(OutputEvent):
    event_type: Literal["turn.failed"] = "turn.failed"
    turn_index: int = Field(ge=0)
    speaker: str
    provider: Provider
    model: str
    error_class: str
    error_message: str
    retryable: bool
    attempt: int = Field(ge=1)


class ConversationCompleted(OutputEvent):
    event_type: Literal["conversation.completed"] = "conversation.completed"
    status: Literal["completed"] = "completed"
    topic: TopicSpec
    turn_count: int = Field(ge=0)
    transcript: tuple[TranscriptTurn, ...]
    quality_score: float | None = Field(default=None, ge=0, le=1)
    quality: dict[str, Any] = Field(default_factory=dict)
    #: The scorer that wrote ``quality_score`` and ``quality`` (``quality.v2``).
    quality_version: str | None = None
    #: Kept for a dataset, or rejected for ``rejection_reasons`` (None: not judged).
    accepted: bool | None = None
    rejection_reasons: tuple[str, ...] = ()
    #: The earlier conversation this one nearly repeats (rejected ``near_duplicate``).
    duplicate_of: str | None = None
    ended_reason: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class ConversationFailed(OutputEvent):
    event_type: Literal["conversation.failed"] = "conversation.failed"
    status: Literal["failed"] = "failed"
    topic: TopicSpec
    turn_count: int = Field(ge=0)
    transcript: tuple[TranscriptTurn, ...] = ()
    reason: str
    error_class: str | None = None


class AnalysisCompleted(OutputEvent):
    """Published on `analysis.completed`; ``conversation_id`` is the context id."""

    event_type: Literal["analysis.completed"] = "analysis.completed"
    run_id: Identifier
    status: Literal["ok", "partial", "failed"]
    bundle: dict[str, Any]
    worker_statuses: dict[str, Any]


AnyOutputEvent = Annotated[
    ConversationStarted
    | TurnRequested
    | TurnCompleted
    | TurnFailed
    | ConversationCompleted
    | ConversationFailed
    | AnalysisCompleted,
    Field(discriminator="event_type"),
]

#: Parses any output event by its ``event_type``.
output_event_adapter: TypeAdapter[AnyOutputEvent] = TypeAdapter(AnyOutputEvent)
