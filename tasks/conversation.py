"""Conversation tasks: hand-off (builds the chain), one task per turn, finalise.

Each is an adapter: ids in, one engine call, retry policy out.  Turn tasks form
a chain of ``max_turns`` turns and a finalise step, all with ids derived from
the conversation, so a re-sent chain is the same tasks.  A turn that ends the
conversation early stops the chain and sends the finalise step itself.
"""

from __future__ import annotations

import logging

from celery import Task, chain, shared_task

from chimera import defaults as d
from chimera.crashes import CrashCounter
from chimera.errors import (
    ChimeraError,
    CrashLoop,
    LLMPermanent,
    LLMRetryable,
    LockNotAcquired,
    ServiceUnavailable,
    StaleLockToken,
)
from chimera.ids import finalize_task_id, turn_task_id
from chimera.retry import compute_backoff
from tasks.handoff import send_handoff
from tasks.policy import counted_run, plumbing_retry
from tasks.runtime import Runtime, runtime

log = logging.getLogger(__name__)


@shared_task(name="chimera.conversation.start", bind=True, acks_late=True, ignore_result=True)
def start(self: Task, event_id: str, resume: bool = False) -> None:
    """Create the conversation of an inbox event and send its chain of turns (once,
    unless ``resume``: the reconciler re-sends a chain that was lost)."""
    engine = runtime().conversations
    try:
        state = engine.start(event_id)
    except ServiceUnavailable as exc:
        raise plumbing_retry(self, exc) from exc
    if state is None or (state.chain_sent and not resume):
        return
    cid = state.conversation_id
    steps = [
        turn.si(cid, i).set(task_id=turn_task_id(cid, i))
        for i in range(state.next_turn, state.max_turns)
    ]
    steps.append(finalize.si(cid).set(task_id=finalize_task_id(cid)))
    # Marked first, so its first turn does not find the lease taken by this marking.
    # If sending fails after it, the state makes no progress and the reconciler
    # resumes the chain.
    engine.mark_chain_sent(cid)
    chain(*steps).apply_async()
    log.info("conversation %s: chain of %d steps sent", cid, len(steps))


# max_retries=None: Celery's own cap (3 by default, also where retry() passes None)
# would end a turn's LLM retries before CHIMERA_TURN_MAX_RETRIES, which bounds them.
@shared_task(
    name="chimera.conversation.turn",
    bind=True,
    acks_late=True,
    ignore_result=True,
    max_retries=None,
)
def turn(self: Task, conversation_id: str, turn_index: int, attempt: int = 1) -> None:
    """Run one turn; retry what may pass, fail the conversation on what will not.

    ``attempt`` counts LLM attempts only; waiting for the lock is not one.  A turn
    whose runs keep dying with their worker fails the conversation instead.
    """
    rt = runtime()
    with counted_run(self, rt.crashes) as crashes:
        if CrashCounter.exhausted(crashes):
            _stop_chain(self)
            error = CrashLoop(
                f"turn {turn_index} died with its worker {crashes} times",
                conversation_id=conversation_id,
            )
            try:
                rt.conversations.fail(
                    conversation_id, error, reason=CrashLoop.dlq_reason, attempts=crashes
                )
            except (LockNotAcquired, ServiceUnavailable) as exc:
                raise plumbing_retry(self, exc) from exc  # the retry gives up again
            return
        _turn(self, rt, conversation_id, turn_index, attempt)


def _turn(self: Task, rt: Runtime, conversation_id: str, turn_index: int, attempt: int) -> None:
    engine = rt.conversations
    try:
        outcome = engine.run_turn(conversation_id, turn_index, attempt=attempt)
    except (LockNotAcquired, StaleLockToken, ServiceUnavailable) as exc:
        raise plumbing_retry(self, exc) from exc
    except LLMRetryable as exc:
        if attempt > rt.settings.turn_max_retries:
            _stop_chain(self)
            engine.fail(conversation_id, exc, reason="retries_exhausted", attempts=attempt)
            return
        delay = compute_backoff(
            attempt, base_s=1.0, cap_s=d.TURN_RETRY_CAP_S, server_hint_s=exc.retry_after_s
        )
        log.info(
            "conversation %s turn %d: %s; retry %d in %.1fs",
            conversation_id,
            turn_index,
            type(exc).__name__,
            attempt,
            delay,
        )
        engine.store.hold(conversation_id, delay + rt.settings.task_time_limit_s)
        raise self.retry(
            args=(conversation_id, turn_index),
            kwargs={"attempt": attempt + 1},
            exc=exc,
            countdown=delay,
            max_retries=None,
        ) from exc
    except (LLMPermanent, ChimeraError) as exc:
        _stop_chain(self)
        engine.fail(
            conversation_id,
            exc,
            reason="llm_permanent" if isinstance(exc, LLMPermanent) else "error",
            attempts=attempt,
        )
        return
    if outcome.gone:
        _stop_chain(self)
    elif outcome.finished:
        _stop_chain(self)
        finalize.apply_async((conversation_id,), task_id=finalize_task_id(conversation_id))


@shared_task(name="chimera.conversation.finalize", bind=True, acks_late=True, ignore_result=True)
def finalize(self: Task, conversation_id: str) -> None:
    """Score, persist, publish, clear: once.  Then, when completed conversations are
    analysed, hand its analysis off (also once: the analysis event id is derived)."""
    rt = runtime()
    try:
        rt.conversations.finalize(conversation_id)
        if not rt.settings.analyze_completed_conversations:
            return
        if rt.conversations.repo.status(conversation_id) != "completed":
            return
        event_id = rt.analysis.request_for_conversation(conversation_id)
    except (ServiceUnavailable, LockNotAcquired) as exc:
        raise plumbing_retry(self, exc) from exc
    if event_id is not None:
        send_handoff(self.app, "analysis", event_id)


def _stop_chain(task: Task) -> None:
    """The rest of this task's chain is not sent."""
    task.request.chain = None
