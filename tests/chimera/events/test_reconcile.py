"""One reconcile loop over both workflows, each with its own judgement (real Redis and
Postgres): conversations and analyses stuck in the inbox are settled, left alone,
re-driven or given up on."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from chimera.analysis.reconcile import StuckAnalyses
from chimera.analysis.repository import RunRecord, RunRepository
from chimera.analysis.store import PartStore
from chimera.codec import payload_hash
from chimera.conversation.reconcile import StuckConversations
from chimera.conversation.repository import ConversationRepository
from chimera.conversation.state import ConversationState
from chimera.conversation.store import StateStore
from chimera.events.ids import conversation_id, run_id
from chimera.events.inbox import EventKind, EventStatus, Inbox
from chimera.events.reconcile import Workflow, reconcile
from chimera.models import ConversationRequest
from chimera.redis_client import make_redis


def stuck(db: Any, event_id: str, kind: EventKind, *, attempts: int = 0) -> None:
    """An event in flight, untouched for an hour."""
    if kind == "conversation":
        payload: dict[str, Any] = {"event_id": event_id, "topic": "Cars?"}
    else:
        payload = {"event_id": event_id, "context_id": "doc-1"}
    Inbox(db).accept(
        event_id=event_id, kind=kind, payload=payload, payload_hash=payload_hash(payload)
    )
    with db.begin() as conn:
        conn.execute(
            text(
                "UPDATE events SET status = 'dispatched', attempts = :a,"
                " updated_at = now() - interval '1 hour' WHERE event_id = :e"
            ),
            {"e": event_id, "a": attempts},
        )


def run(event_id: str, status: str) -> RunRecord:
    return RunRecord(
        id=run_id(event_id),
        event_id=event_id,
        context_id="doc-1",
        language="en",
        status=status,  # type: ignore[arg-type]
        bundle={},
        worker_statuses={},
        source="kafka",
        latency_ms=None,
    )


def test_one_loop_acts_on_the_judgement_of_each_workflow(redis_ns: Any, db: Any) -> None:
    settings = redis_ns.model_copy(update={"reconcile_after_s": 60.0, "reconcile_max_attempts": 2})
    client = make_redis(settings)
    inbox, store, repo = Inbox(db), StateStore(client, settings), ConversationRepository(db)
    runs, parts = RunRepository(db), PartStore(client, settings)
    for e in ("c-lost", "c-finished", "c-hopeless"):
        stuck(db, e, "conversation", attempts=2 if e == "c-hopeless" else 0)
    for e in ("a-lost", "a-failed", "a-busy"):
        stuck(db, e, "analysis")
    # A conversation finished, but its event was not settled (put back in flight).
    finished = ConversationState.start(
        conversation_id("c-finished"),
        ConversationRequest.model_validate({"event_id": "c-finished", "topic": "Cars?"}),
        300,
    )
    repo.complete(finished, score=0.9, breakdown={})
    # A run recorded failed; a run with a part still calling.
    runs.record(run("a-failed", "failed"))
    with db.begin() as conn:
        conn.execute(
            text(
                "UPDATE events SET status = 'dispatched', updated_at = now() - interval '1 hour'"
                " WHERE event_id IN ('c-finished', 'a-failed')"
            )
        )
    parts.hold(run_id("a-busy"), "summary", 60)

    redriven: list[tuple[str, str, bool]] = []
    given_up: list[str] = []
    workflows = [
        Workflow(
            "conversation",
            StuckConversations(settings, store=store, repo=repo),
            redrive=lambda e, resume: redriven.append(("conversation", e, resume)),
            give_up=lambda e, why: given_up.append(e),
        ),
        Workflow(
            "analysis",
            StuckAnalyses(runs=runs, parts=parts),
            redrive=lambda e, resume: redriven.append(("analysis", e, resume)),
            give_up=lambda e, why: given_up.append(e),
        ),
    ]

    report = reconcile(settings, inbox, workflows)

    assert report.checked == 6
    assert sorted(redriven) == [("analysis", "a-lost", True), ("conversation", "c-lost", False)]
    assert sorted(report.repaired) == ["a-failed", "c-finished"]
    assert report.progressing == 1 and given_up == ["c-hopeless"]

    def event(e: str) -> Any:
        return inbox.get(e)

    assert event("c-finished").status is EventStatus.DONE
    assert event("a-failed").status is EventStatus.DEAD_LETTERED
    assert event("c-lost").attempts == 1 and event("a-lost").attempts == 1
    assert event("a-busy").attempts == 0 and event("a-busy").status is EventStatus.DISPATCHED
    assert report.as_dict() == {
        "checked": 6,
        "redriven": 2,
        "repaired": 2,
        "progressing": 1,
        "given_up": 1,
    }
