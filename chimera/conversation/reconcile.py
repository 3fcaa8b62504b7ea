"""The reconciler: re-drives conversation events stuck between received and done.

Events go stuck when work is lost in between: Redis restarted empty (queues,
chains and state gone), a hand-off message vanished, a worker died with its
chain's next message.  For each inbox event untouched for longer than the
deadline it decides, from what survived, what to do; every action is
idempotent (deterministic task ids, state created once).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from chimera.conversation.repository import ConversationRepository
from chimera.conversation.store import StateStore
from chimera.ids import conversation_id
from chimera.inbox import Inbox
from chimera.settings import Settings

log = logging.getLogger(__name__)

#: (event_id, resume) -> send the hand-off task again
Redrive = Callable[[str, bool], None]
#: (event_id, reason) -> give up on the event (dead-letter it)
GiveUp = Callable[[str, str], None]


@dataclass
class ReconcileReport:
    checked: int = 0
    redriven: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    progressing: int = 0
    given_up: list[str] = field(default_factory=list)


def reconcile(
    settings: Settings,
    *,
    inbox: Inbox,
    store: StateStore,
    repo: ConversationRepository,
    redrive: Redrive,
    give_up: GiveUp,
    limit: int = 100,
) -> ReconcileReport:
    report = ReconcileReport()
    for event in inbox.stuck(
        kind="conversation", older_than_s=settings.reconcile_after_s, limit=limit
    ):
        report.checked += 1
        cid = conversation_id(event.event_id)
        final = repo.status(cid)
        if final == "completed":  # done, but the inbox missed it
            inbox.mark(event.event_id, "done")
            report.repaired.append(event.event_id)
            continue
        if final == "failed":
            inbox.mark(event.event_id, "dead_lettered")
            report.repaired.append(event.event_id)
            continue
        state = store.load(cid)
        if state is not None and time.time() - state.updated_at < settings.reconcile_after_s:
            report.progressing += 1  # slow, not stuck
            continue
        if state is not None and store.active(cid):
            report.progressing += 1  # a turn holds the lease or waits to retry
            continue
        if event.attempts >= settings.reconcile_max_attempts:
            give_up(event.event_id, f"not done after {event.attempts} re-drives")
            report.given_up.append(event.event_id)
            continue
        inbox.mark(event.event_id, event.status, count_attempt=True)  # type: ignore[arg-type]
        # With state: its chain was lost, resume it.  Without: start over.
        redrive(event.event_id, state is not None)
        report.redriven.append(event.event_id)
        log.warning(
            "re-drove event %s (%s, attempt %d)",
            event.event_id,
            "resumed" if state is not None else "restarted",
            event.attempts + 1,
        )
    return report
