"""How a conversation ends: completed (scored, stored, published) or failed (recorded,
dead-lettered, published), each once.

A conversation that ends before its ``min_turns``, for any reason (its time ran
out, most often), is not completed: it fails as ``TooFewTurns`` (dead-letter reason
``too_few_turns``), keeping its state so that a replay (``chimera dlq replay``)
resumes it with the turns it has.
"""

from __future__ import annotations

import logging

from chimera.conversation.quality import score_conversation
from chimera.conversation.repository import ConversationRepository
from chimera.conversation.state import ConversationState
from chimera.conversation.store import Lease, StateStore
from chimera.errors import ChimeraError, TooFewTurns, Unrecoverable
from chimera.events.deadletters import DeadLetter, reason_of
from chimera.events.ids import output_event_id
from chimera.events.inbox import Inbox
from chimera.events.sink import EventSink
from chimera.models import ConversationCompleted, ConversationFailed
from chimera.settings import Settings

log = logging.getLogger(__name__)


class Closing:
    """The two ends of a conversation, on the engine's stores."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: StateStore,
        repo: ConversationRepository,
        inbox: Inbox,
        sink: EventSink,
    ) -> None:
        self.settings = settings
        self.store = store
        self.repo = repo
        self.inbox = inbox
        self.sink = sink

    def finalize(self, cid: str, lease: Lease) -> bool:
        """Score, persist and publish a finished conversation, under ``lease``; False if
        nothing to do, or if it ended too short (then it failed, ``TooFewTurns``)."""
        state = self.store.load(cid)
        if state is None or state.status == "failed":
            return False
        if len(state.turns) < state.min_turns:
            error = TooFewTurns(
                f"ended ({state.ended_reason or 'unknown'}) after {len(state.turns)} turns, "
                f"before its min_turns ({state.min_turns})",
                conversation_id=cid,
            )
            self._mark_failed(state, error, lease)
            self._record_failure(state, error, attempts=1)
            return False
        report = score_conversation(
            state.turns,
            ended_reason=state.ended_reason,
            min_turns=state.min_turns,
            max_turns=state.max_turns,
        )
        breakdown = report.model_dump(mode="json")
        self.repo.complete(state, score=report.score, breakdown=breakdown)
        self.sink.publish(
            ConversationCompleted(
                event_id=output_event_id(cid, "conversation.completed"),
                conversation_id=cid,
                source_event_id=state.event_id,
                topic=state.topic,
                turn_count=len(state.turns),
                transcript=tuple(state.turns),
                quality_score=report.score,
                quality=breakdown,
                ended_reason=state.ended_reason,
                metadata=state.metadata,
            )
        )
        self.store.delete(cid)
        log.info(
            "conversation %s completed: %d turns, quality %.2f (%s)",
            cid,
            len(state.turns),
            report.score,
            state.ended_reason,
        )
        return True

    def fail(self, cid: str, error: ChimeraError, *, attempts: int = 1) -> None:
        """Mark the conversation failed (state kept for replay) and dead-letter its event.

        The dead-letter reason is ``error``'s class's ``dlq_reason``; the records name
        the failure itself (an ``Unrecoverable``'s cause).
        """
        with self.store.lease(cid) as lease:
            state = self.store.load(cid)
            if state is None or state.status in ("completed", "failed"):
                return
            self._mark_failed(state, error, lease)
        self._record_failure(state, error, attempts=attempts)

    def _mark_failed(self, state: ConversationState, error: ChimeraError, lease: Lease) -> None:
        exc = error.cause if isinstance(error, Unrecoverable) else error
        state.status = "failed"
        state.error = f"{type(exc).__name__}: {exc}"
        self.store.save(state, lease)

    def _record_failure(
        self, state: ConversationState, error: ChimeraError, *, attempts: int
    ) -> None:
        cid = state.conversation_id
        reason = reason_of(error)
        exc = error.cause if isinstance(error, Unrecoverable) else error
        recorded = self.inbox.get(state.event_id)
        if recorded is not None:
            letter = DeadLetter.of_event(recorded, error, attempts=attempts)
            self.sink.dead_letter(self.settings.topic_conversation_dlq, letter)
        self.repo.failed(state, error=state.error or f"{type(exc).__name__}: {exc}")
        self.sink.publish(
            ConversationFailed(
                event_id=output_event_id(cid, "conversation.failed"),
                conversation_id=cid,
                source_event_id=state.event_id,
                topic=state.topic,
                turn_count=len(state.turns),
                transcript=tuple(state.turns),
                reason=reason,
                error_class=type(exc).__name__,
            )
        )
        log.warning("conversation %s failed (%s): %s", cid, reason, exc)
