"""How a conversation ends: completed (scored, judged, stored, published) or failed
(recorded, dead-lettered, published), each once.

A completed conversation is scored with ``quality.v2`` (``chimera.quality.score``) and
gets its verdict: ``accepted``, or rejected with its reasons (the score's ``low_score`` and
``defect:<name>``; then, for one the score accepts, ``near_duplicate`` when the fleet's
index (``chimera.quality.near_duplicates``) holds a conversation it nearly repeats, named
in ``duplicate_of``).  Only an accepted conversation enters the index; a retried finalise
gives the same verdict (the same id with the same text is no duplicate of itself).

A conversation that ends before its ``min_turns``, for any reason (its time ran
out, most often), is not completed: it fails as ``TooFewTurns`` (dead-letter reason
``too_few_turns``), keeping its state so that a replay (``chimera dlq replay``)
resumes it with the turns it has.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from chimera.conversation.repository import ConversationRepository
from chimera.conversation.state import ConversationState
from chimera.conversation.store import Lease, StateStore
from chimera.errors import ChimeraError, TooFewTurns, Unrecoverable
from chimera.events.deadletters import DeadLetter, reason_of
from chimera.events.ids import output_event_id
from chimera.events.inbox import Inbox
from chimera.events.sink import EventSink
from chimera.models import ConversationCompleted, ConversationFailed, TopicSpec, TranscriptTurn
from chimera.quality.near_duplicates import NearDuplicateIndex
from chimera.quality.score import DEFAULT_MIN_QUALITY, QualityV2Report, score_v2
from chimera.settings import Settings

log = logging.getLogger(__name__)

#: The rejection reason of a conversation that nearly repeats one accepted before.
NEAR_DUPLICATE = "near_duplicate"


@dataclass(frozen=True)
class Verdict:
    """A finished conversation's quality report and whether it is kept."""

    report: QualityV2Report
    accepted: bool
    reasons: list[str]
    duplicate_of: str | None = None


def topic_text(topic: TopicSpec) -> str:
    """The stated topic as quality.v2 reads it: the title, then the description."""
    return "\n".join(p for p in (topic.title, topic.description) if p)


def transcript_text(turns: list[TranscriptTurn]) -> str:
    """What the near-duplicate index compares: the turns' text, in order."""
    return "\n".join(t.content for t in turns)


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
        self.near_duplicates = NearDuplicateIndex(store._redis, settings)

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
        verdict = self.verdict_of(state)
        report = verdict.report
        breakdown = report.model_dump(mode="json")
        self.repo.complete(
            state,
            score=report.score,
            breakdown=breakdown,
            accepted=verdict.accepted,
            rejection_reasons=verdict.reasons,
            duplicate_of=verdict.duplicate_of,
        )
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
                quality_version=report.version,
                accepted=verdict.accepted,
                rejection_reasons=tuple(verdict.reasons),
                duplicate_of=verdict.duplicate_of,
                ended_reason=state.ended_reason,
                metadata=state.metadata,
            )
        )
        self.store.delete(cid)
        log.info(
            "conversation %s completed: %d turns, quality %.2f (%s), %s",
            cid,
            len(state.turns),
            report.score,
            state.ended_reason,
            "accepted" if verdict.accepted else "rejected: " + ", ".join(verdict.reasons),
        )
        return True

    def verdict_of(self, state: ConversationState) -> Verdict:
        """Score ``state``'s transcript with quality.v2 (the threshold: its job's
        ``min_quality``, else the default) and, if the score accepts it, check it against
        the near-duplicate index (adding it when it is new)."""
        min_quality = self.repo.job_min_quality(state)
        report = score_v2(
            state.turns,
            topic=topic_text(state.topic),
            ended_reason=state.ended_reason,
            min_turns=state.min_turns,
            max_turns=state.max_turns,
            personas={p.speaker: p.persona for p in state.participants if p.persona},
            min_quality=DEFAULT_MIN_QUALITY if min_quality is None else min_quality,
        )
        if not report.accepted:
            return Verdict(report, False, list(report.reasons))
        match = self.near_duplicates.check_and_add(
            state.conversation_id, transcript_text(state.turns)
        )
        if match is None:
            return Verdict(report, True, [])
        return Verdict(report, False, [NEAR_DUPLICATE], duplicate_of=match.original_id)

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
