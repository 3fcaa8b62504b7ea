"""The conversation workflow's judgement of a stuck event (``chimera.events.reconcile``
runs the loop and acts).

From what survived: a stored row settles the event; an event waiting for admission
(``chimera.conversation.admission``) is not stuck; a state updated recently, or
whose turn holds the lease or waits to retry, is slow, not stuck; a state left
alone lost its chain (resume it); no state at all lost everything (start over).
"""

from __future__ import annotations

import time

from chimera.conversation.admission import Admission
from chimera.conversation.repository import ConversationRepository
from chimera.conversation.store import StateStore
from chimera.events.ids import conversation_id
from chimera.events.inbox import EventStatus, InboxEvent
from chimera.events.reconcile import Decision
from chimera.settings import Settings


class StuckConversations:
    """``Judge`` of conversation events, from the conversation's row and Redis state."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: StateStore,
        repo: ConversationRepository,
        admission: Admission | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._repo = repo
        self._admission = admission

    def __call__(self, event: InboxEvent) -> Decision:
        cid = conversation_id(event.event_id)
        settled = self._settled(cid)
        if settled is not None:
            return settled
        if self._admission is not None and self._admission.is_waiting(event.event_id):
            return Decision.progressing("it waits for admission", touch=True)
        state = self._store.load(cid)
        if state is None:
            return Decision.redrive(resume=False, why="restarted")
        if time.time() - state.updated_at < self._settings.reconcile_after_s:
            return Decision.progressing("its state moved recently")
        if self._store.active(cid):
            return Decision.progressing("a turn holds the lease or waits to retry")
        return Decision.redrive(resume=True, why="resumed")

    def _settled(self, cid: str) -> Decision | None:
        """The settling of an event whose conversation's row is final; None if not."""
        final = self._repo.status(cid)
        if final == "completed":
            return Decision.settle(EventStatus.DONE, "completed, but the inbox missed it")
        if final == "failed":
            return Decision.settle(EventStatus.DEAD_LETTERED, "failed, but the inbox missed it")
        return None
