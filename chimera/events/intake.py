"""Intake: how an input event enters, whatever it came through.

Three paths bring events in: the bridge (Kafka records, a poll's batch at
once), the topic queue's drain (one Redis item at a time) and the analysis of a
completed conversation (an event Chimera makes itself).  Each records its
events with ``accept`` and hands off exactly those it says to: an event is
handed off while it is ``received`` (new, or recorded before and its hand-off
possibly lost); one already dispatched, done or dead-lettered is a duplicate
and nothing is done.  ``dispatched`` then records the hand-offs.

Handing off is the caller's (a Celery message): only the caller knows how it
batches them.  Recording first and handing off after means an event can be
handed off twice, never lost; the hand-off's task id is derived from the event
(``chimera.events.ids``), so the second is the same task.
"""

from __future__ import annotations

from collections.abc import Sequence

from chimera.errors import ConflictingDuplicate
from chimera.events.inbox import Acceptance, Arrival, EventStatus, Inbox


def accept(inbox: Inbox, arrivals: Sequence[Arrival]) -> list[Acceptance | ConflictingDuplicate]:
    """Record ``arrivals`` in one transaction; for each, in order, its acceptance (hand
    it off if ``Acceptance.hand_off``) or the ``ConflictingDuplicate`` it is (same id,
    another payload: to be dead-lettered).

    An id twice in one batch is accepted twice, the second time not new: the caller
    that batches (the bridge) hands it off once.
    """
    return inbox.accept_many(arrivals)


def dispatched(inbox: Inbox, event_ids: Sequence[str]) -> None:
    """Record that ``event_ids`` were handed off (one statement for a batch)."""
    inbox.mark(event_ids, EventStatus.DISPATCHED)
