"""Conversation tasks: hand-off (builds the chain), one task per turn, finalise.

Each is an adapter: ids in, one call to ``chimera.conversation.turns`` that
decides, Celery out.  Turn tasks form a chain of ``max_turns`` turns and a
finalise step, all with ids derived from the conversation, so a re-sent chain
is the same tasks.  A turn that ends the
conversation early stops the chain and sends the finalise step itself.
"""

from __future__ import annotations

import logging

from celery import Task, chain, shared_task

from chimera.conversation.turns import (
    ChainToSend,
    Failed,
    Finish,
    HandOff,
    Next,
    Parked,
    Queued,
    Stop,
    attempt_turn,
    conclude,
    dispatch,
    release,
)
from chimera.decisions import RetryLLM, RetryPlumbing, RetryWait
from chimera.errors import LockNotAcquired, ServiceUnavailable
from chimera.events.ids import finalize_task_id, turn_task_id
from chimera.quality.judge import to_judge
from tasks.handoff import send_handoff
from tasks.judge import send_judge
from tasks.policy import counted_run, llm_task_retry, plumbing_retry
from tasks.runtime import runtime

log = logging.getLogger(__name__)


@shared_task(name="chimera.conversation.start", bind=True, acks_late=True, ignore_result=True)
def start(self: Task, event_id: str, resume: bool = False) -> None:
    """Admit and create the conversation of an inbox event and send its chain of turns
    (once, unless ``resume``: the reconciler re-sends a chain that was lost); while
    the running ones are at their cap it waits in line (no worker held)."""
    try:
        rt = runtime()
        send = dispatch(rt.conversations, event_id, resume=resume, gate=rt.job_gate)
    except ServiceUnavailable as exc:
        raise plumbing_retry(self, exc) from exc
    match send:
        case None:
            return
        case Queued(handoff=admitted) | HandOff(event_ids=admitted):
            hand_off_admitted(self, admitted)
            return
        case ChainToSend(handoff=admitted):
            hand_off_admitted(self, admitted)
    cid = send.conversation_id
    steps = [turn.si(cid, i).set(task_id=turn_task_id(cid, i)) for i in send.turns]
    steps.append(finalize.si(cid).set(task_id=finalize_task_id(cid)))
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
def turn(
    self: Task, conversation_id: str, turn_index: int, attempt: int = 1, waits: int = 0
) -> None:
    """Run one turn and do what it decided (``chimera.conversation.turns.attempt_turn``)."""
    rt = runtime()
    with counted_run(self, rt.crashes) as crashes:
        decision = attempt_turn(
            rt.conversations,
            conversation_id,
            turn_index,
            attempt=attempt,
            crashes=crashes,
            waits=waits,
            gate=rt.job_gate,
        )
        match decision:
            case Next():
                pass
            case Finish():
                _stop_chain(self)
                finalize.apply_async((conversation_id,), task_id=finalize_task_id(conversation_id))
            case Stop() | Failed() | Parked():
                _stop_chain(self)
                hand_off_admitted(self, release(rt.conversations, conversation_id))
            case RetryLLM() | RetryWait():
                retry = llm_task_retry(
                    self, decision, (conversation_id, turn_index), attempt=attempt, waits=waits
                )
                raise retry from decision.error
            case RetryPlumbing(error=exc):
                raise plumbing_retry(self, exc) from exc


@shared_task(name="chimera.conversation.finalize", bind=True, acks_late=True, ignore_result=True)
def finalize(self: Task, conversation_id: str) -> None:
    """Score, persist, publish, clear: once.  Then, when completed conversations are
    analysed, hand its analysis off (also once: the analysis event id is derived)."""
    rt = runtime()
    try:
        event_id = conclude(
            rt.conversations, conversation_id, analyse=rt.analysis.request_for_conversation
        )
    except (ServiceUnavailable, LockNotAcquired) as exc:
        raise plumbing_retry(self, exc) from exc
    # Completed, or failed (too few turns, data refused): its place goes to the next.
    hand_off_admitted(self, release(rt.conversations, conversation_id))
    if event_id is not None:
        send_handoff(self.app, "analysis", event_id)
    try:  # a sampled, completed conversation goes to the LLM judge (once: its task id)
        if to_judge(rt.settings, conversation_id, rt.conversations.completed):
            send_judge(self.app, conversation_id)
    except ServiceUnavailable as exc:
        raise plumbing_retry(self, exc) from exc


def hand_off_admitted(task: Task, event_ids: tuple[str, ...]) -> None:
    """Hand off the conversation events just admitted (their start runs again)."""
    for admitted in event_ids:
        send_handoff(task.app, "conversation", admitted)
    if event_ids:
        log.info("admitted %d waiting conversations", len(event_ids))


def _stop_chain(task: Task) -> None:
    """The rest of this task's chain is not sent."""
    task.request.chain = None
