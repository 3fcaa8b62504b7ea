"""What a conversation task does next: the decisions of its start, its turns and its end.

A Celery task is an adapter: it passes ids to one function here and maps the answer
onto Celery (send a chain, ``self.retry``, stop the chain, send the finalise step).
Every choice about the work itself is made here, where it can be tested without a
worker: which failure ends the conversation and why, when the LLM retries are
spent and how long to wait, whether a finished conversation is analysed.  A
failure that ends the conversation is recorded (``ConversationEngine.fail``) before
the answer is returned, with the dead-letter reason of its error class.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from chimera import defaults as d
from chimera.conversation.admission import PRIORITY_BOUND
from chimera.conversation.engine import ConversationEngine
from chimera.crashes import CrashCounter
from chimera.decisions import RetryLLM, RetryPlumbing, RetryWait, llm_again
from chimera.errors import (
    BudgetExhausted,
    ChimeraError,
    CrashLoop,
    DataRejected,
    JobCancelled,
    LLMPermanent,
    LLMRefused,
    LLMRetryable,
    LockNotAcquired,
    RetriesExhausted,
    ServiceUnavailable,
    StaleLockToken,
    Unrecoverable,
)
from chimera.events.ids import conversation_id
from chimera.jobs.control import PARK_HOLD_S
from chimera.jobs.gate import JobGate, job_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChainToSend:
    """The turns still to run (then the finalise step), as one chain; with the events
    admitted meanwhile (``handoff``), to hand off."""

    conversation_id: str
    turns: range
    handoff: tuple[str, ...] = ()


@dataclass(frozen=True)
class Queued:
    """The running conversations are at their cap: the event waits in line for
    admission (``chimera.conversation.admission``), without a worker; the events in
    ``handoff`` were admitted meanwhile and are to be handed off."""

    event_id: str
    handoff: tuple[str, ...] = ()


@dataclass(frozen=True)
class HandOff:
    """Nothing to send for this event; the events admitted meanwhile, to hand off."""

    event_ids: tuple[str, ...]


@dataclass(frozen=True)
class Next:
    """The turn is done (now or before): the chain goes on."""


@dataclass(frozen=True)
class Finish:
    """The conversation is over: stop the chain and send the finalise step."""


@dataclass(frozen=True)
class Stop:
    """The conversation is gone (finalised, failed or lost): stop the chain, nothing else."""


@dataclass(frozen=True)
class Parked:
    """The conversation's job is paused or out of budget: stop the chain, keep the state
    (its event waits in the job's parked set until the job runs again)."""


@dataclass(frozen=True)
class Failed:
    """The conversation failed for good and is recorded so: stop the chain."""

    error: ChimeraError


TurnDecision = Next | Finish | Stop | Parked | Failed | RetryLLM | RetryWait | RetryPlumbing

#: Plumbing trouble a turn waits out: the lock busy (or the turn before not done yet),
#: a lease that lapsed under a write, a dependency away.
_PLUMBING = (LockNotAcquired, StaleLockToken, ServiceUnavailable)


def dispatch(
    engine: ConversationEngine,
    event_id: str,
    *,
    resume: bool = False,
    gate: JobGate | None = None,
) -> ChainToSend | Queued | HandOff | None:
    """Admit and start the event's conversation; the chain to send, ``Queued`` when
    the running ones are at their cap, or nothing to send (None, or only the events
    admitted meanwhile): the conversation is over, or its chain went out before
    (unless ``resume``: the reconciler re-sends a chain that was lost)."""
    cid = conversation_id(event_id)
    job = _job_of_event(engine, event_id) if gate is not None else None
    # Not started, and its job drains or is over: it never will be.
    if (
        gate is not None
        and job is not None
        and gate.start(job) == "drop"
        and engine.store.load(cid) is None
    ):
        status = gate.status(job)
        log.info("conversation %s not started: its job %s is %s", cid, job, status)
        engine.give_up(
            event_id, JobCancelled(f"its job is {status}", event_id=event_id, job_id=job)
        )
        return _hand_off(release(engine, cid))
    ticket = engine.admission.admit(event_id, priority=_priority(engine, event_id))
    if not ticket.admitted:
        log.info("conversation %s waits for admission (event %s)", cid, event_id)
        return Queued(event_id, ticket.handoff)
    try:
        state = engine.start(event_id)
    except DataRejected as exc:  # a store refused the event's data: no retry can help
        engine.give_up(event_id, exc)
        return _hand_off(ticket.handoff + release(engine, cid))
    if state is None or state.status in ("completed", "failed"):
        return _hand_off(ticket.handoff + release(engine, cid))
    if state.chain_sent and not resume:
        return _hand_off(ticket.handoff)
    # Marked first, so its first turn does not find the lease taken by this marking.
    # If sending fails after it, the state makes no progress and the reconciler
    # resumes the chain.
    engine.mark_chain_sent(cid)
    if job is not None:
        engine.store.hold(cid, 0.001)  # a parked one's mark lapses: it runs again
    return ChainToSend(cid, range(state.next_turn, state.max_turns), ticket.handoff)


def release(engine: ConversationEngine, cid: str) -> tuple[str, ...]:
    """The conversation is over (completed or failed): free its admission; the waiting
    events admitted into the room, to hand off.  Best effort: with Redis away, beat's
    ``admit_waiting`` frees it later."""
    try:
        return engine.admission.release(cid)
    except ServiceUnavailable as exc:
        log.warning("conversation %s: admission not released (beat will): %s", cid, exc)
        return ()


def admit_waiting(engine: ConversationEngine) -> tuple[str, ...]:
    """Beat's admission round: free the places of conversations that are over (a
    release was lost), then admit waiting events while there is room; those, to hand off."""
    engine.admission.prune(engine.over)
    return engine.admission.admit_waiting()


def _priority(engine: ConversationEngine, event_id: str) -> int:
    """The event's ``priority`` (validated by the bridge; 0 when absent)."""
    recorded = engine.inbox.get(event_id)
    value = recorded.payload.get("priority") if recorded is not None else None
    if isinstance(value, int) and not isinstance(value, bool):
        return max(-PRIORITY_BOUND, min(PRIORITY_BOUND, value))
    return 0


def _job_of_event(engine: ConversationEngine, event_id: str) -> str | None:
    recorded = engine.inbox.get(event_id)
    metadata = recorded.payload.get("metadata") if recorded is not None else None
    return job_of(event_id, metadata if isinstance(metadata, dict) else None)


def _hand_off(event_ids: tuple[str, ...]) -> HandOff | None:
    return HandOff(event_ids) if event_ids else None


def attempt_turn(
    engine: ConversationEngine,
    cid: str,
    turn_index: int,
    *,
    attempt: int = 1,
    crashes: int = 0,
    waits: int = 0,
    gate: JobGate | None = None,
) -> TurnDecision:
    """Run turn ``turn_index`` once (LLM attempt ``attempt``); what to do next.

    ``attempt`` counts LLM attempts only; waiting for the lock, the limiter, the
    breaker or a provider's ``retry-after`` is not one (``waits`` counts those in a
    row: ``chimera.decisions.llm_wait``); the conversation's deadline bounds them.  A turn
    whose earlier runs died with their worker ``crashes`` times fails the conversation
    instead of running again.  A retryable LLM failure is retried while
    ``CHIMERA_TURN_MAX_RETRIES`` allows; anything else that will not pass fails it.
    """
    if CrashCounter.exhausted(crashes):
        return _crash_loop(engine, cid, turn_index, crashes)
    if gate is not None:
        stopped = job_boundary(engine, gate, cid, turn_index, attempt)
        if stopped is not None:
            return stopped
    try:
        outcome = engine.run_turn(cid, turn_index, attempt=attempt)
    except BudgetExhausted as exc:  # no call made: not an attempt, not a failure
        return _out_of_budget(engine, gate, cid, turn_index, exc)
    except ChimeraError as exc:
        return _after_failure(engine, cid, turn_index, exc, attempt, waits=waits)
    if outcome.gone:
        return Stop()
    return Finish() if outcome.finished else Next()


def _out_of_budget(
    engine: ConversationEngine,
    gate: JobGate | None,
    cid: str,
    turn_index: int,
    exc: BudgetExhausted,
) -> Parked | RetryPlumbing:
    """The call did not fit the job's budget: the job moves to ``budget_exhausted`` and
    the conversation parks."""
    log.info("conversation %s turn %d: %s", cid, turn_index, exc.message)
    if gate is None:
        return RetryPlumbing(exc)
    try:
        gate.exhausted(exc.job_id)
    except ServiceUnavailable as down:
        return RetryPlumbing(down)
    return park(engine, gate, cid, exc.job_id)


def job_boundary(
    engine: ConversationEngine, gate: JobGate, cid: str, turn_index: int, attempt: int
) -> Parked | Failed | RetryPlumbing | None:
    """At a turn boundary, what the conversation's job says: None to run the turn; parked
    (paused, out of budget) or cancelled (ended, failed with reason ``cancelled``)."""
    try:
        state = engine.store.load(cid)
        job = job_of(state.event_id, state.metadata) if state is not None else None
        if job is None or state is None or state.status != "running":
            return None
        verdict = gate.turn(job)
        if verdict == "park":
            return park(engine, gate, cid, job)
        if verdict == "cancel":
            error = JobCancelled(f"its job {job} was cancelled", conversation_id=cid, job_id=job)
            log.info("conversation %s cancelled before turn %d", cid, turn_index)
            engine.fail(cid, error, attempts=attempt)
            return Failed(error)
    except (LockNotAcquired, ServiceUnavailable) as exc:
        return RetryPlumbing(exc)
    return None


def park(engine: ConversationEngine, gate: JobGate, cid: str, job: str) -> Parked | RetryPlumbing:
    """Stop the conversation at this boundary, its state kept: no chain counts as sent
    (the hand-off that resumes it sends one), its clock stops (the time left is counted
    again from its next turn), the reconciler leaves it alone, and its event waits in
    the job's parked set."""
    try:
        with engine.store.lease(cid) as lease:
            state = engine.store.load(cid)
            if state is None or state.status != "running":
                return Parked()
            state.chain_sent = False
            if state.deadline_at is not None:
                state.restart_clock(max(1.0, state.deadline_at - time.time()))
            engine.store.save(state, lease)
        engine.store.hold(cid, PARK_HOLD_S)
        gate.park(job, state.event_id)
    except (LockNotAcquired, ServiceUnavailable) as exc:
        return RetryPlumbing(exc)
    log.info("conversation %s parked: its job %s is %s", cid, job, gate.status(job))
    return Parked()


def _crash_loop(
    engine: ConversationEngine, cid: str, turn_index: int, crashes: int
) -> Failed | RetryPlumbing:
    crash = CrashLoop(
        f"turn {turn_index} died with its worker {crashes} times", conversation_id=cid
    )
    try:
        engine.fail(cid, crash, attempts=crashes)
    except (LockNotAcquired, ServiceUnavailable) as exc:
        return RetryPlumbing(exc)  # the retry gives up again
    return Failed(crash)


def _after_failure(
    engine: ConversationEngine,
    cid: str,
    turn_index: int,
    exc: ChimeraError,
    attempt: int,
    *,
    waits: int = 0,
) -> Failed | RetryLLM | RetryWait | RetryPlumbing:
    """Wait out what may pass; record the conversation failed on what will not."""
    if isinstance(exc, _PLUMBING):
        return RetryPlumbing(exc)
    error: ChimeraError
    if isinstance(exc, LLMRetryable):
        again = llm_again(
            exc,
            attempt=attempt,
            waits=waits,
            max_retries=engine.settings.turn_max_retries,
            cap_s=d.TURN_RETRY_CAP_S,
            settings=engine.settings,
            subject=f"conversation {cid} turn {turn_index}",
        )
        if again is not None:
            # A wait is time the conversation did not use: its deadline moves on by it.
            for_capacity = isinstance(again, RetryWait)
            engine.waiting_to_retry(cid, again.countdown_s, for_capacity=for_capacity)
            return again
        error = RetriesExhausted(exc)
    elif isinstance(exc, LLMPermanent):
        error = LLMRefused(exc)
    elif isinstance(exc, DataRejected):
        error = exc  # a store refused the data: its own reason, data_rejected
    else:
        error = Unrecoverable(exc)
    engine.fail(cid, error, attempts=attempt)
    return Failed(error)


def conclude(
    engine: ConversationEngine, cid: str, *, analyse: Callable[[str], str | None]
) -> str | None:
    """Finalise the conversation (once); the analysis event to hand off, or None.

    When completed conversations are analysed (``CHIMERA_ANALYZE_COMPLETED_CONVERSATIONS``),
    ``analyse`` records the analysis event of a completed conversation once and
    returns its id while it still has to be handed off.  A duplicate run finds the
    conversation finalised already and asks again: the hand-off of the first run
    may not have happened.
    """
    try:
        engine.finalize(cid)
    except DataRejected as exc:  # a store refused the conversation's data
        engine.fail(cid, exc)
        return None
    if not engine.settings.analyze_completed_conversations or not engine.completed(cid):
        return None
    return analyse(cid)
