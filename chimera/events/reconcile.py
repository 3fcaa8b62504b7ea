"""The reconciler: re-drives input events stuck between received and done.

Events go stuck when work is lost in between: Redis restarted empty (queues,
chains, chords and state gone), a hand-off message vanished, a worker died with
its chain's next message.  One loop serves every kind of event: it scans the
inbox for events untouched for longer than ``reconcile_after_s``, asks the
event's workflow for its judgement (``Judge``: only the workflow can tell, from
what survived, whether the work finished, is still moving or was lost) and
acts on it here:

- ``SETTLE``: the result is recorded but the inbox missed it: settle the event;
- ``PROGRESSING``: slow, not stuck (a call holds the lease, a retry waits): leave it
  (``touch``: mark it seen, so an event that waits long, in line for admission, does
  not fill every round's scan);
- ``REDRIVE``: send the hand-off again (``resume``: keep what survived), counting an
  attempt, until the event has been re-driven ``reconcile_max_attempts`` times, when
  the workflow gives up on it (dead-letters it).

Every action is idempotent (deterministic task ids, state created once), so a round run
again does no harm; a second beat's rounds are turned away (``chimera.rounds``), since two
rounds re-driving the same event would each count an attempt against it.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from chimera.events.inbox import EventKind, EventStatus, Inbox, InboxEvent
from chimera.settings import Settings

log = logging.getLogger(__name__)


class Verdict(enum.StrEnum):
    SETTLE = "settle"
    PROGRESSING = "progressing"
    REDRIVE = "redrive"


@dataclass(frozen=True)
class Decision:
    """A workflow's judgement of one stuck event."""

    verdict: Verdict
    #: For ``SETTLE``: the status its recorded result says (done or dead_lettered).
    status: EventStatus | None = None
    #: For ``REDRIVE``: keep what survived (resume the chain or chord) or start over.
    resume: bool = False
    #: Why, for the log.
    why: str = ""
    #: For ``PROGRESSING``: mark the event seen (it is not looked at again for
    #: ``reconcile_after_s``).
    touch: bool = False

    @classmethod
    def settle(cls, status: EventStatus, why: str = "") -> Decision:
        return cls(Verdict.SETTLE, status=status, why=why)

    @classmethod
    def progressing(cls, why: str = "", *, touch: bool = False) -> Decision:
        return cls(Verdict.PROGRESSING, why=why, touch=touch)

    @classmethod
    def redrive(cls, *, resume: bool, why: str = "") -> Decision:
        return cls(Verdict.REDRIVE, resume=resume, why=why)


#: A workflow's judgement: what to do with one of its stuck events.
Judge = Callable[[InboxEvent], Decision]
#: (event_id, resume) -> send the hand-off task again.
Redrive = Callable[[str, bool], None]
#: (event_id, why) -> give up on the event (dead-letter it).
GiveUp = Callable[[str, str], None]


@dataclass(frozen=True)
class Workflow:
    """What the loop needs of one kind of event: its judgement and its two actions."""

    kind: EventKind
    judge: Judge
    redrive: Redrive
    give_up: GiveUp


@dataclass
class ReconcileReport:
    checked: int = 0
    redriven: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    progressing: int = 0
    given_up: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {
            "checked": self.checked,
            "redriven": len(self.redriven),
            "repaired": len(self.repaired),
            "progressing": self.progressing,
            "given_up": len(self.given_up),
        }


def reconcile(
    settings: Settings,
    inbox: Inbox,
    workflows: Sequence[Workflow],
    *,
    limit: int = 100,
) -> ReconcileReport:
    """One round over the stuck events of each workflow's kind (``limit`` per kind)."""
    report = ReconcileReport()
    for workflow in workflows:
        stuck = inbox.stuck(
            kind=workflow.kind, older_than_s=settings.reconcile_after_s, limit=limit
        )
        for event in stuck:
            report.checked += 1
            _act(settings, inbox, workflow, event, report)
    return report


def _act(
    settings: Settings,
    inbox: Inbox,
    workflow: Workflow,
    event: InboxEvent,
    report: ReconcileReport,
) -> None:
    """Ask the workflow about one stuck event, and do what it says."""
    event_id = event.event_id
    decision = workflow.judge(event)
    if decision.verdict is Verdict.SETTLE:
        assert decision.status is not None, "a settle decision names its status"
        inbox.mark(event_id, decision.status)
        report.repaired.append(event_id)
        return
    if decision.verdict is Verdict.PROGRESSING:
        if decision.touch:
            inbox.mark(event_id, event.status)
        report.progressing += 1
        return
    if event.attempts >= settings.reconcile_max_attempts:
        workflow.give_up(event_id, f"not done after {event.attempts} re-drives")
        report.given_up.append(event_id)
        return
    inbox.mark(event_id, event.status, count_attempt=True)
    workflow.redrive(event_id, decision.resume)
    report.redriven.append(event_id)
    log.warning(
        "re-drove %s event %s (%s, attempt %d)",
        workflow.kind,
        event_id,
        decision.why or ("resumed" if decision.resume else "restarted"),
        event.attempts + 1,
    )
