"""``POST /orchestrator/analyze`` through the Flask test client, on threads and on Ray."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from chimera.conversation.repository import ConversationRepository
from chimera.conversation.state import ConversationState
from chimera.models import ANALYSIS_KINDS, ConversationRequest, TranscriptTurn
from tests.helpers import wait_for
from web import create_app

BODY = {
    "context_id": "doc-1",
    "segments": [
        {"speaker": "Ana", "text": "Cars make cities loud. Everyone knows bans always work."},
        {"speaker": "Ben", "text": "A ban would hurt shops. Ana only says that as she cycles."},
    ],
}


def make_client(settings: Any, **overrides: Any) -> Iterator[FlaskClient]:
    app: Flask = create_app(settings.model_copy(update=overrides))
    try:
        yield app.test_client()
    finally:
        close = app.extensions.get("chimera.analyzer.close")
        if close is not None:
            close()


@pytest.fixture
def client(settings: Any, db: Any, sim_calls: Any) -> Iterator[FlaskClient]:
    yield from make_client(settings)


def rows(db: Any, sql: str) -> list[Any]:
    with db.connect() as conn:
        return list(conn.execute(text(sql)))


def stable(answer: dict[str, Any]) -> dict[str, Any]:
    """The bundle without what differs between two runs of the same request."""
    drop = {"run_id", "latency_ms", "analyses"}
    return {k: v for k, v in answer.items() if k not in drop}


def test_analyze_answers_the_bundle_and_records_a_realtime_run(
    client: FlaskClient, db: Any, sim_calls: Any
) -> None:
    response = client.post("/orchestrator/analyze", json=BODY)
    assert response.status_code == 200, response.json
    answer = response.json
    assert answer["status"] == "ok"
    assert answer["worker_statuses"] == dict.fromkeys(ANALYSIS_KINDS, "ok")
    assert set(answer) >= {"summary", "arguments", "implications", "sentiment", "logic_bias"}
    assert answer["summary"]["summary"]

    (run,) = rows(db, "SELECT * FROM analysis_runs")
    assert run.id == answer["run_id"] and run.source == "realtime" and run.event_id is None
    assert run.context_id == "doc-1" and run.status == "ok"
    assert run.bundle["worker_statuses"] == answer["worker_statuses"]
    assert sim_calls.calls().total == 4
    # llm_calls rows are written in batches, just after the calls.
    calls = wait_for(
        lambda: len(got := rows(db, "SELECT owner_id, task FROM llm_calls")) == 4 and got,
        what="4 llm_calls rows",
    )
    assert sorted(c.task for c in calls) == sorted(ANALYSIS_KINDS)
    assert {c.owner_id for c in calls} == {answer["run_id"]}


def test_one_failing_analysis_is_a_partial_answer(
    client: FlaskClient, sim_calls: Any, db: Any
) -> None:
    sim_calls.add_fault("bad_request", count=3, model="gemini-3.5-flash")  # logic_bias
    answer = client.post("/orchestrator/analyze", json=BODY).json
    assert answer["status"] == "partial"
    assert answer["worker_statuses"]["logic_bias"] == "error"
    assert answer["errors"]["logic_bias"]["error_class"] == "LLMBadRequest"
    assert answer["logic_bias"] is None and answer["summary"] is not None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"segments": BODY["segments"]}, "context_id"),
        ({"context_id": "d", "segments": []}, "segments"),
        ({"context_id": "d", "segments": [{"speaker": "A"}]}, "segments.0.text"),
        ({"context_id": "d", "segments": "text"}, "segments"),
        ({"context_id": "d", "language": "english!"}, "language"),
        ({"context_id": "d", "segments": BODY["segments"], "extra": 1}, "extra"),
    ],
)
def test_an_invalid_body_is_400_naming_the_field(
    client: FlaskClient, sim_calls: Any, db: Any, body: dict[str, Any], field: str
) -> None:
    response = client.post("/orchestrator/analyze", json=body)
    assert response.status_code == 400, response.json
    assert response.json["error"] == "SchemaInvalid"
    assert field in [e["field"] for e in response.json["errors"]]
    assert sim_calls.calls().total == 0
    assert rows(db, "SELECT id FROM analysis_runs") == []


@pytest.mark.parametrize(
    ("data", "content_type", "status", "error"),
    [
        ("{not json", "application/json", 400, "InvalidJSON"),
        ("[1, 2]", "application/json", 400, "InvalidJSON"),
        (json.dumps(BODY), "text/plain", 415, "Unsupported Media Type"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused(
    client: FlaskClient, sim_calls: Any, data: str, content_type: str, status: int, error: str
) -> None:
    response = client.post("/orchestrator/analyze", data=data, content_type=content_type)
    assert response.status_code == status
    assert response.is_json and response.json["error"] == error
    assert sim_calls.calls().total == 0


def test_an_unknown_prompt_or_missing_context_is_400_and_costs_nothing(
    client: FlaskClient, sim_calls: Any, db: Any
) -> None:
    unknown = client.post("/orchestrator/analyze", json=BODY | {"prompt_ids": {"summary": "x.v1"}})
    assert unknown.status_code == 400 and unknown.json["error"] == "UnknownPrompt"
    assert "summary.v1" in unknown.json["message"]  # names what exists
    missing = client.post("/orchestrator/analyze", json={"context_id": "conv-nowhere"})
    assert missing.status_code == 400 and missing.json["error"] == "ContextNotFound"
    assert "conv-nowhere" in missing.json["message"]
    assert sim_calls.calls().total == 0
    assert rows(db, "SELECT id FROM analysis_runs") == []


def test_a_stored_conversation_is_analysed_by_its_context_id(
    client: FlaskClient, db: Any, sim_calls: Any
) -> None:
    stored_conversation(db, "conv-x", [("Ana", "Cars are loud."), ("Ben", "Shops need cars.")])
    answer = client.post("/orchestrator/analyze", json={"context_id": "conv-x"}).json
    assert answer["status"] == "ok"
    assert answer["input"]["source"] == "conversation" and answer["input"]["segments"] == 2


def stored_conversation(db: Any, cid: str, turns: list[tuple[str, str]]) -> None:
    """A completed conversation in Postgres, as the engine stores one."""
    request = ConversationRequest(event_id=f"evt-{cid}", topic="Should cities ban cars?")
    state = ConversationState.start(cid, request, 300)
    state.turns = [
        TranscriptTurn(
            turn_index=i,
            speaker=speaker,
            provider="anthropic",
            model="claude-sonnet-5-5",
            content=content,
            input_tokens=1,
            output_tokens=1,
            latency_ms=1.0,
        )
        for i, (speaker, content) in enumerate(turns)
    ]
    ConversationRepository(db).complete(state, score=0.5, breakdown={})


def test_a_long_input_is_cut_to_the_budget_and_says_so(
    settings: Any, db: Any, sim_calls: Any
) -> None:
    long = {"context_id": "d", "segments": [{"speaker": "A", "text": "word " * 20_000}]}
    for client in make_client(settings, analysis_input_token_budget=2_000):
        answer = client.post("/orchestrator/analyze", json=long).json
    assert answer["input"]["truncated"] is True
    assert answer["input"]["chars_sent"] < answer["input"]["chars"] == 100_000
    # What reached the model fits the budget (the untruncated text is ~20k tokens).
    assert max(c.input_tokens for c in sim_calls.calls().calls) <= 2_000


def test_the_ray_executor_gives_the_same_bundle(settings: Any, db: Any, sim_calls: Any) -> None:
    ray = pytest.importorskip("ray")
    for threads in make_client(settings):
        on_threads = threads.post("/orchestrator/analyze", json=BODY).json
    try:
        for on_ray_client in make_client(settings, analyze_executor="ray"):
            on_ray = on_ray_client.post("/orchestrator/analyze", json=BODY).json
    finally:
        ray.shutdown()
    assert on_ray["status"] == "ok"
    assert stable(on_ray) == stable(on_threads)
    assert sim_calls.calls().total == 8
    # Ray's workers account their calls too.
    wait_for(
        lambda: (
            len(rows(db, f"SELECT id FROM llm_calls WHERE owner_id = '{on_ray['run_id']}'")) == 4
        ),
        what="the Ray workers' llm_calls rows",
    )
