"""GET /metrics: the per-job gauges and the admission gauges, read from the shared stores."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import Engine, insert, text

from chimera.conversation.admission import Admission
from chimera.db.tables import Conversation, Job, LLMCall
from chimera.settings import Settings
from tests.web.conftest import sample


def _conversation(cid: str, status: str, quality: float | None) -> dict[str, Any]:
    return {
        "id": cid,
        "event_id": f"evt-{cid}",
        "topic_title": "t",
        "topic": {"title": "t"},
        "participants": [],
        "min_turns": 1,
        "max_turns": 2,
        "status": status,
        "quality_score": quality,
        # The verdict finalise stores (here: accepted from 0.5 up).
        "accepted": None if quality is None else quality >= 0.5,
        "rejection_reasons": [] if quality is None or quality >= 0.5 else ["low_score"],
        "job_id": "job-live",
    }


def test_metrics_show_each_job_and_the_admission(
    client: FlaskClient, web_settings: Settings, redis_client: Any, db: Engine
) -> None:
    spec = {"name": "live", "target": 4, "budget_usd": 2.5, "min_quality": 0.5}
    with db.begin() as conn:
        conn.execute(
            insert(Job),
            [
                {"id": "job-live", "name": "live", "spec": spec, "status": "running",
                 "topic_count": 2, "fed": 3},
                {"id": "job-old", "name": "old", "spec": {"name": "old"}, "status": "completed",
                 "topic_count": 1, "fed": 1},
            ],
        )  # fmt: skip
        conn.execute(
            text("UPDATE jobs SET finished_at = now() - interval '2 hours' WHERE id = 'job-old'")
        )
        conn.execute(
            insert(Conversation),
            [
                _conversation("c1", "completed", 0.9),
                _conversation("c2", "completed", 0.1),
                _conversation("c3", "running", None),
            ],
        )
        conn.execute(
            insert(LLMCall),
            [
                {"provider": "anthropic", "model": "claude-haiku-5-5", "task": "turn",
                 "status": "ok", "error": None, "input_tokens": 1, "output_tokens": 1,
                 "latency_ms": 1, "cost_usd": Decimal("0.25"), "owner_type": "conversation",
                 "owner_id": cid}
                for cid in ("c1", "c2")
            ],
        )  # fmt: skip
    admission = Admission(
        redis_client, web_settings.model_copy(update={"max_running_conversations": 1})
    )
    assert admission.admit("evt-a").admitted and not admission.admit("evt-b").admitted

    body = client.get("/metrics").get_data(as_text=True)
    live = {"job_id": "job-live", "status": "running"}
    assert sample(body, "chimera_job_accepted", **live) == 1
    assert sample(body, "chimera_job_running", **live) == 1
    assert sample(body, "chimera_job_spent_usd", **live) == 0.5
    assert sample(body, "chimera_job_budget_usd", **live) == 2.5
    assert sample(body, "chimera_job_target", **live) == 4
    assert sample(body, "chimera_job_yield", **live) == 0.5
    assert "job-old" not in body  # finished over an hour ago
    assert sample(body, "chimera_fleet_conversations_running") == 1
    assert sample(body, "chimera_fleet_conversations_waiting_admission") == 1
