"""A running conversation's state, as kept in Redis between turns."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chimera.models import ConversationRequest, Participant, TopicSpec, TranscriptTurn

Status = Literal["running", "ending", "completed", "failed"]


class ConversationState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversation_id: str
    event_id: str
    topic: TopicSpec
    participants: tuple[Participant, ...]
    min_turns: int
    max_turns: int
    metadata: dict[str, Any] = Field(default_factory=dict)
    turns: list[TranscriptTurn] = Field(default_factory=list)
    status: Status = "running"
    ended_reason: str | None = None
    error: str | None = None
    created_at: float = Field(default_factory=time.time)
    #: When its time runs out; None until its first turn (or the first after a
    #: replay's restart) starts: time queued behind the limit or admission is not
    #: counted.  States written before this always hold a deadline.
    deadline_at: float | None = None
    #: The time budget, counted from the first turn (``begin``).
    timeout_s: float | None = None
    updated_at: float = Field(default_factory=time.time)
    chain_sent: bool = False

    @classmethod
    def start(
        cls, conversation_id: str, event: ConversationRequest, timeout_s: float
    ) -> ConversationState:
        now = time.time()
        return cls(
            conversation_id=conversation_id,
            event_id=event.event_id,
            topic=event.topic,
            participants=event.participants,
            min_turns=event.min_turns,
            max_turns=event.max_turns,
            metadata=event.metadata,
            created_at=now,
            timeout_s=timeout_s,
        )

    def begin(self) -> bool:
        """Start the clock, if not started yet; whether this call started it."""
        if self.deadline_at is not None or self.timeout_s is None:
            return False
        self.deadline_at = time.time() + self.timeout_s
        return True

    def restart_clock(self, timeout_s: float) -> None:
        """A new budget, counted again from the next turn that starts."""
        self.deadline_at = None
        self.timeout_s = timeout_s

    def speaker_for(self, turn_index: int) -> Participant:
        """Participants take turns in order."""
        return self.participants[turn_index % len(self.participants)]

    @property
    def next_turn(self) -> int:
        return len(self.turns)

    @property
    def expired(self) -> bool:
        return self.deadline_at is not None and time.time() > self.deadline_at
