"""GET /conversations/<id> and GET /analysis-runs/<id> against the real Postgres."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydantic import SecretStr
from sqlalchemy import Engine, insert

from chimera.db.tables import AnalysisRun, Conversation
from chimera.settings import Settings, normalize_database_url
from tests.chimera.conversation import transcripts as tx
from tests.chimera.conversation.stored import add_conversation
from tests.helpers import free_port


def test_a_stored_conversation_comes_with_its_turns_in_order(
    client: FlaskClient, db: Engine
) -> None:
    score = add_conversation(db, "conv-abc123")
    response = client.get("/conversations/conv-abc123")
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == "conv-abc123"
    assert body["event_id"] == "evt-conv-abc123"
    assert body["status"] == "completed"
    assert body["topic"] == {"id": "t-1", "title": "Should cities ban cars?"}
    assert body["participants"][1]["persona"] == "A planner."
    assert body["turn_count"] == len(tx.CARS)
    assert body["quality_score"] == pytest.approx(score)
    assert body["quality_breakdown"]["score"] == pytest.approx(score)
    assert body["metadata"] == {"batch": "b-7"}
    assert body["created_at"].startswith("2026-03-01T12:00:00")  # ISO 8601
    turns = body["turns"]
    # Stored out of order; served in order.
    assert [t["turn_index"] for t in turns] == list(range(len(tx.CARS)))
    assert [t["content"] for t in turns] == tx.CARS
    assert {"speaker", "provider", "model", "input_tokens", "output_tokens", "latency_ms"} <= set(
        turns[0]
    )


def test_a_running_conversation_has_no_turns_yet(client: FlaskClient, db: Engine) -> None:
    with db.begin() as conn:
        conn.execute(
            insert(Conversation).values(
                id="conv-running",
                event_id="evt-running",
                topic_title="Cars",
                topic={"title": "Cars"},
                participants=[],
                min_turns=1,
                max_turns=4,
                status="running",
            )
        )
    body = client.get("/conversations/conv-running").get_json()
    assert body["status"] == "running"
    assert body["turns"] == []
    assert body["quality_score"] is None
    assert body["completed_at"] is None


def test_an_unknown_conversation_is_a_json_404(client: FlaskClient, db: Engine) -> None:
    response = client.get("/conversations/conv-nope")
    assert response.status_code == 404
    body = response.get_json()
    assert body["error"] == "NotFound"
    assert "conversation_id=conv-nope" in body["message"]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/conversations/bad%20id", "conversation_id"),
        ("/conversations/nul%00byte", "conversation_id"),
        ("/conversations/" + "x" * 65, "conversation_id"),
        ("/conversations/%C3%A9t%C3%A9", "conversation_id"),
        ("/analysis-runs/run;drop", "run_id"),
        ("/analysis-runs/" + "r" * 200, "run_id"),
    ],
)
def test_a_malformed_id_is_a_json_400_naming_the_field(
    client: FlaskClient, path: str, field: str
) -> None:
    response = client.get(path)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "SchemaInvalid"
    assert body["errors"][0]["field"] == field


def test_a_stored_analysis_run_is_served_whole(client: FlaskClient, db: Engine) -> None:
    statuses = {"summary": {"status": "ok"}, "argument": {"status": "error", "error_class": "X"}}
    with db.begin() as conn:
        conn.execute(
            insert(AnalysisRun).values(
                id="run-0123456789abcdef",
                event_id="evt-9",
                context_id="conv-abc123",
                language="en",
                status="partial",
                bundle={"summary": {"text": "Cars are loud."}, "arguments": None},
                worker_statuses=statuses,
                source="kafka",
                latency_ms=812.5,
            )
        )
    response = client.get("/analysis-runs/run-0123456789abcdef")
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == "run-0123456789abcdef"
    assert body["status"] == "partial"
    assert body["source"] == "kafka"
    assert body["context_id"] == "conv-abc123"
    assert body["bundle"] == {"summary": {"text": "Cars are loud."}, "arguments": None}
    assert body["worker_statuses"] == statuses
    assert body["latency_ms"] == 812.5
    assert "T" in body["created_at"]


def test_an_unknown_analysis_run_is_a_json_404(client: FlaskClient, db: Engine) -> None:
    response = client.get("/analysis-runs/run-missing")
    assert response.status_code == 404
    assert response.get_json()["error"] == "NotFound"
    assert "run_id=run-missing" in response.get_json()["message"]


def test_reads_are_get_only(client: FlaskClient) -> None:
    response = client.post("/analysis-runs/run-1")
    assert response.status_code == 405
    assert response.get_json()["error"] == "Method Not Allowed"


def test_postgres_down_is_a_json_503_without_the_password(
    make_app: Callable[[Settings], Flask], web_settings: Settings
) -> None:
    url = normalize_database_url(f"postgresql://postgres:pw-s3cr3t@127.0.0.1:{free_port()}/x")
    client = make_app(
        web_settings.model_copy(update={"database_url": SecretStr(url)})
    ).test_client()
    for path in ("/conversations/conv-1", "/analysis-runs/run-1"):
        response = client.get(path)
        assert response.status_code == 503
        assert response.get_json()["error"] == "DatabaseUnavailable"
        assert "pw-s3cr3t" not in response.get_data(as_text=True)
