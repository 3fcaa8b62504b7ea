"""The conversation engine: start, one turn at a time, finalise or fail.

Every step is idempotent, so a Celery task that runs it twice (redelivery,
retry, a racing worker) changes nothing the second time:

- ``start`` creates the state once (SET NX) and the row once;
- ``run_turn`` works under the conversation's lease, skips a turn that exists,
  reuses a stored LLM output instead of calling again, and writes fenced;
- ``finalize`` persists in one transaction (insert-or-ignore) and then deletes
  the state; a second run finds no state and does nothing (one that ended before
  its ``min_turns`` fails instead: ``chimera.conversation.closing``);
- ``fail`` records the failure and dead-letters the event once.

Output events carry deterministic ids (one per conversation, type and turn), so
a re-published event is a duplicate downstream, never a new fact.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from chimera.codec import limits_from, validate_event
from chimera.conversation.admission import Admission
from chimera.conversation.closing import Closing
from chimera.conversation.ending import detect_end
from chimera.conversation.prompts import turn_request
from chimera.conversation.reconcile import StuckConversations
from chimera.conversation.repository import ConversationRepository
from chimera.conversation.state import ConversationState
from chimera.conversation.store import StateStore
from chimera.errors import ChimeraError, LockNotAcquired, NotFound
from chimera.events.deadletters import DeadLetter
from chimera.events.ids import conversation_id, output_event_id
from chimera.events.inbox import FINAL, IN_FLIGHT, EventStatus, Inbox, InboxEvent
from chimera.events.reconcile import Decision
from chimera.events.sink import EventSink
from chimera.llm.client import LLMClient
from chimera.models import (
    ConversationRequest,
    ConversationStarted,
    Participant,
    TranscriptTurn,
    TurnCompleted,
    TurnFailed,
    TurnRequested,
)
from chimera.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TurnOutcome:
    """What a turn task should do next."""

    turn_index: int
    #: This run appended the turn (an LLM call, or a stored output reused).
    appended: bool = False
    #: The conversation is over: stop the chain and finalise.
    finished: bool = False
    #: The state is gone (finished or lost): stop the chain, do nothing else.
    gone: bool = False
    reason: str | None = None


class TurnNotReady(LockNotAcquired):
    """Raised when a turn arrives before the one it follows; retry later."""


class Abandoned(ChimeraError):
    """Raised (recorded) when the reconciler gives up on an event."""

    dlq_reason: ClassVar[str] = "retries_exhausted"


class ConversationEngine:
    def __init__(
        self,
        settings: Settings,
        *,
        store: StateStore,
        llm: LLMClient,
        repo: ConversationRepository,
        inbox: Inbox,
        sink: EventSink,
        admission: Admission | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.llm = llm
        self.repo = repo
        self.inbox = inbox
        self.sink = sink
        self.closing = Closing(settings, store=store, repo=repo, inbox=inbox, sink=sink)
        #: The cap on conversations running at once (on the state's Redis by default).
        self.admission = admission or Admission(store._redis, settings)

    # --- start -----------------------------------------------------------------------------

    def start(self, event_id: str) -> ConversationState | None:
        """The state of the event's conversation, created if new; None if already over."""
        recorded = self.inbox.get(event_id)
        if recorded is None:
            raise NotFound("no such event in the inbox", event_id=event_id)
        request = validate_event(
            ConversationRequest, recorded.payload, context={"limits": limits_from(self.settings)}
        )
        cid = conversation_id(event_id)
        state = self.store.load(cid)
        if recorded.status in IN_FLIGHT and self.repo.status(cid) == "failed":
            # A failed conversation's row and its event's dead_lettered status are
            # written in one transaction: an event back in flight beside a failed row
            # was replayed (`chimera dlq replay`).  Run it again, keeping its turns.
            state = self._restart(cid, state, request)
        if state is None:
            if self.repo.status(cid) in ("completed", "failed"):
                return None
            fresh = ConversationState.start(
                cid, request, self.settings.conversation_timeout_seconds
            )
            if self.store.create(fresh):
                self.repo.started(fresh)
                self.sink.publish(
                    ConversationStarted(
                        event_id=output_event_id(cid, "conversation.started"),
                        conversation_id=cid,
                        source_event_id=event_id,
                        topic=fresh.topic,
                        participants=fresh.participants,
                        min_turns=fresh.min_turns,
                        max_turns=fresh.max_turns,
                    )
                )
                log.info("conversation %s started for event %s", cid, event_id)
            state = self.store.load(cid)
        self.inbox.mark(event_id, EventStatus.DISPATCHED)
        return state

    def _restart(
        self, cid: str, state: ConversationState | None, request: ConversationRequest
    ) -> ConversationState | None:
        """Back to running with a new time budget (counted from its next turn) and no
        chain sent; the turns done
        before the failure are kept (their outputs are stored), so only what
        failed is paid for again.  A state that expired starts over."""
        timeout_s = self.settings.conversation_timeout_seconds
        if state is None:
            fresh = ConversationState.start(cid, request, timeout_s)
            state = fresh if self.store.create(fresh) else self.store.load(cid)
        else:
            with self.store.lease(cid) as lease:
                state = self.store.load(cid)
                if state is not None and state.status == "failed":
                    state.status = "running"
                    state.error = None
                    state.ended_reason = None
                    state.chain_sent = False
                    state.restart_clock(timeout_s)
                    self.store.save(state, lease)
        if state is not None:
            # Also when a racing (or earlier, interrupted) start restarted the state.
            self.repo.restarted(state)
            log.info(
                "conversation %s restarted for replayed event %s at turn %d",
                cid,
                state.event_id,
                state.next_turn,
            )
        return state

    def mark_chain_sent(self, cid: str) -> None:
        """Best effort: if a turn holds the lease, a later hand-off may send the chain
        again, which is harmless (same task ids, idempotent turns)."""
        try:
            with self.store.lease(cid) as lease:
                state = self.store.load(cid)
                if state is not None and not state.chain_sent:
                    state.chain_sent = True
                    self.store.save(state, lease)
        except LockNotAcquired:
            log.info("conversation %s: chain sent, lease busy; not marked", cid)

    # --- one turn ----------------------------------------------------------------------------

    def run_turn(self, cid: str, turn_index: int, *, attempt: int = 1) -> TurnOutcome:
        with self.store.lease(cid) as lease:
            state = self.store.load(cid)
            if state is None:
                return TurnOutcome(turn_index, gone=True)
            if state.status != "running":
                return TurnOutcome(
                    turn_index,
                    finished=state.status == "ending",
                    gone=state.status in ("completed", "failed"),
                )
            if turn_index < state.next_turn:
                return TurnOutcome(turn_index)  # done before: nothing to do
            if turn_index > state.next_turn:
                raise TurnNotReady(
                    f"turn {turn_index} waits for turn {state.next_turn}", conversation_id=cid
                )
            if state.begin():  # its first turn (since a restart): the clock starts now
                self.store.save(state, lease)
            if state.expired:
                state.status, state.ended_reason = "ending", "timeout"
                self.store.save(state, lease)
                log.info("conversation %s ran out of time at turn %d", cid, turn_index)
                return TurnOutcome(turn_index, finished=True, reason="timeout")

            turn = self.store.get_output(cid, turn_index) or self._call(state, turn_index, attempt)
            self.sink.publish(
                TurnCompleted(
                    **_turn_fields(state, "turn.completed", turn_index, turn),
                    text=turn.content,
                    input_tokens=turn.input_tokens,
                    output_tokens=turn.output_tokens,
                    latency_ms=turn.latency_ms,
                )
            )
            state.turns.append(turn)
            decision = detect_end(state.turns, min_turns=state.min_turns, max_turns=state.max_turns)
            if decision is not None:
                state.status, state.ended_reason = "ending", decision.reason
            self.store.save(state, lease)
            return TurnOutcome(
                turn_index,
                appended=True,
                finished=decision is not None,
                reason=decision.reason if decision else None,
            )

    def _call(self, state: ConversationState, turn_index: int, attempt: int) -> TranscriptTurn:
        cid, speaker = state.conversation_id, state.speaker_for(turn_index)
        self.sink.publish(
            TurnRequested(**_turn_fields(state, "turn.requested", turn_index, speaker)),
            wait=False,  # confirmed with the turn's completion (same key, same partition)
        )
        request = turn_request(
            state, turn_index, max_output_tokens=self.settings.turn_max_output_tokens
        )
        try:
            response = self.llm.complete(request, attempt=attempt)
        except ChimeraError as exc:
            self.sink.publish(
                TurnFailed(
                    **_turn_fields(state, "turn.failed", turn_index, speaker),
                    error_class=type(exc).__name__,
                    error_message=exc.message,
                    retryable=exc.retryable,
                    attempt=attempt,
                )
            )
            raise
        turn = TranscriptTurn(
            turn_index=turn_index,
            speaker=speaker.speaker,
            provider=speaker.route,  # openai:<endpoint> for a named endpoint
            model=response.model,
            content=response.text.strip(),
            input_tokens=response.usage.input_tokens,
            output_tokens=response.usage.output_tokens,
            latency_ms=response.latency_ms,
        )
        # Kept before anything else can fail: a re-run uses it instead of paying again.
        return self.store.put_output(cid, turn)

    def waiting_to_retry(self, cid: str, delay_s: float, *, for_capacity: bool = False) -> None:
        """A turn runs again in ``delay_s``: the conversation is slow, not stuck.

        ``for_capacity``: it waits for the fleet's limiter, a breaker or a provider's
        retry-after, time the conversation itself did not use: its deadline moves on by
        the wait, so a backlog at the limit never cuts a conversation short.
        """
        if for_capacity:
            with contextlib.suppress(LockNotAcquired), self.store.lease(cid) as lease:
                state = self.store.load(cid)
                if state is not None and state.deadline_at is not None:
                    state.deadline_at += delay_s
                    self.store.save(state, lease)
        self.store.hold(cid, delay_s + self.settings.task_time_limit_s)

    # --- the end ----------------------------------------------------------------------------------

    def completed(self, cid: str) -> bool:
        """Whether the conversation is finalised (by this run or an earlier one)."""
        return self.repo.status(cid) == "completed"

    def finalize(self, cid: str) -> bool:
        """Score, persist and publish a finished conversation; False if nothing to do, or
        if it ended before its ``min_turns`` (then it failed: ``chimera.conversation.closing``).

        Under the lease: a duplicate finalise waits, then finds the state gone.
        """
        with self.store.lease(cid) as lease:
            return self.closing.finalize(cid, lease)

    # --- the reconciler's questions ---------------------------------------------------------

    def running(self) -> int:
        """Conversations started and not yet completed or failed."""
        return self.repo.running_count()

    def judge_stuck(self, event: InboxEvent) -> Decision:
        """What the reconciler (``chimera.events.reconcile``) should do with this event."""
        return StuckConversations(
            self.settings, store=self.store, repo=self.repo, admission=self.admission
        )(event)

    def over(self, cid: str) -> bool:
        """Whether the conversation is completed or failed (its admission can go)."""
        return self.repo.status(cid) in ("completed", "failed")

    def abandon(self, event_id: str, why: str) -> None:
        """Give up on an event the reconciler could not get done: fail or dead-letter it."""
        self.give_up(event_id, Abandoned(why, event_id=event_id))

    def give_up(self, event_id: str, error: ChimeraError) -> None:
        """End an event for good on ``error``: its conversation failed, or, before it
        has one, the event dead-lettered (once)."""
        cid = conversation_id(event_id)
        if self.store.load(cid) is not None:
            self.fail(cid, error)
            return
        recorded = self.inbox.get(event_id)
        if recorded is None or recorded.status in FINAL:
            return
        letter = DeadLetter.of_event(recorded, error, attempts=recorded.attempts)
        self.sink.dead_letter(self.settings.topic_conversation_dlq, letter)
        self.inbox.mark(
            event_id, EventStatus.DEAD_LETTERED, error=f"{type(error).__name__}: {error.message}"
        )

    def fail(self, cid: str, error: ChimeraError, *, attempts: int = 1) -> None:
        """Mark the conversation failed (state kept for replay) and dead-letter its event,
        with ``error``'s class's ``dlq_reason``."""
        self.closing.fail(cid, error, attempts=attempts)


def _turn_fields(
    state: ConversationState,
    event_type: str,
    turn_index: int,
    who: Participant | TranscriptTurn,
) -> dict[str, Any]:
    """What every turn event carries: its deterministic id, whose turn, which model (and
    the speaker's provider: a turn event names no endpoint, its transcript turn does)."""
    return {
        "event_id": output_event_id(state.conversation_id, event_type, turn_index),
        "conversation_id": state.conversation_id,
        "source_event_id": state.event_id,
        "turn_index": turn_index,
        "speaker": who.speaker,
        "provider": state.speaker_for(turn_index).provider,
        "model": who.model,
    }
