"""``POST /jobs``, ``GET /jobs``, ``GET /jobs/<id>``."""

from __future__ import annotations

import json
from typing import Any

from flask.testing import FlaskClient

from chimera.events.ids import job_event_id
from chimera.settings import Settings
from tests.bridges.conftest import read_topic

BODY = {
    "name": "transport",
    "topics": ["Cars", {"title": "Bikes", "id": "t-bikes", "lang": "en"}],
    "participants": [
        {"provider": "anthropic", "model": "claude-sonnet-5-5"},
        {"provider": "google", "model": "gemini-3.5-flash"},
    ],
    "min_turns": 2,
    "max_turns": 4,
    "target": 3,
    "budget_usd": 12.5,
    "min_quality": 0.5,
}


def test_post_creates_a_job_and_get_reads_it(
    client: FlaskClient, kafka_topics: Settings, make_app: Any
) -> None:
    client = make_app(kafka_topics).test_client()
    made = client.post("/jobs", json=BODY)
    assert made.status_code == 201, made.json
    job = made.json
    assert job["created"] is True and job["status"] == "pending" and job["topic_count"] == 2
    assert job["spec"]["target"] == 3 and job["spec"]["budget_usd"] == 12.5 and job["fed"] == 3
    assert job["figures"]["started"] == 0 and job["figures"]["yield"] is None
    again = client.post("/jobs", json=BODY)
    assert again.status_code == 200 and again.json["id"] == job["id"]
    assert again.json["created"] is False and again.json["fed"] == 3

    records = read_topic(kafka_topics, kafka_topics.topic_conversation_new, at_least=3)
    assert sorted(json.loads(r.value)["event_id"] for r in records) == [
        job_event_id(job["id"], i) for i in range(3)
    ]

    one = client.get(f"/jobs/{job['id']}")
    assert one.status_code == 200 and one.json["id"] == job["id"]
    assert set(one.json["figures"]) >= {"accepted", "rejected", "cost_usd", "yield"}
    listed = client.get("/jobs")
    assert [j["id"] for j in listed.json["jobs"]] == [job["id"]]


def test_bad_requests_are_400_and_unknown_jobs_404(client: FlaskClient) -> None:
    def fields(body: Any) -> list[str]:
        answer = client.post("/jobs", json=body)
        assert answer.status_code == 400, answer.json
        return [e["field"] for e in answer.json["errors"]]

    assert fields({k: v for k, v in BODY.items() if k != "topics"}) == ["topics"]
    assert fields(BODY | {"topics": []}) == ["topics"]
    assert fields(BODY | {"topics": ["ok", {"description": "no title"}]}) == ["topics.1"]
    assert "target" in fields(BODY | {"target": -1})
    bad_model = [{"provider": "openai", "model": "nope"}, BODY["participants"][0]]
    assert "participants.0.model" in fields(BODY | {"participants": bad_model})
    assert client.get("/jobs/job-unknown").status_code == 404
    assert client.get("/jobs/bad%20id").status_code == 400
    assert client.get("/jobs?limit=0").status_code == 400
    assert client.get("/jobs").json == {"jobs": []}


def test_controls_and_budget_updates_over_http(
    make_app: Any, kafka_topics: Settings, db: Any
) -> None:
    from pydantic import SecretStr

    settings = kafka_topics.model_copy(update={"api_token": SecretStr("tok-jobs")})
    client = make_app(settings).test_client()
    auth = {"Authorization": "Bearer tok-jobs"}
    jid = client.post("/jobs", json=BODY, headers=auth).json["id"]
    assert client.post(f"/jobs/{jid}/pause").status_code == 401  # the same auth as the rest
    assert client.patch(f"/jobs/{jid}", json={"budget_usd": 1}).status_code == 401

    paused = client.post(f"/jobs/{jid}/pause", headers=auth)
    assert paused.status_code == 200 and paused.json["status"] == "paused"
    again = client.post(f"/jobs/{jid}/pause", headers=auth)
    assert again.status_code == 409 and again.json["status"] == "paused"
    assert "cannot pause a job that is paused" in again.json["message"]
    assert client.post(f"/jobs/{jid}/resume", headers=auth).json["status"] == "running"
    updated = client.patch(f"/jobs/{jid}", json={"budget_usd": 20}, headers=auth)
    assert updated.status_code == 200 and updated.json["spec"]["budget_usd"] == 20
    assert updated.json["status"] == "running"
    bad = client.patch(f"/jobs/{jid}", json={"budget_usd": -1}, headers=auth)
    assert bad.status_code == 400 and bad.json["errors"][0]["field"] == "budget_usd"
    other = client.patch(f"/jobs/{jid}", json={"name": "x"}, headers=auth)
    assert other.status_code == 400 and other.json["errors"][0]["field"] == "name"
    assert client.post(f"/jobs/{jid}/drain", headers=auth).json["status"] == "draining"
    assert client.post(f"/jobs/{jid}/cancel", headers=auth).json["status"] == "cancelled"
    for action in ("pause", "resume", "drain", "cancel"):
        refused = client.post(f"/jobs/{jid}/{action}", headers=auth)
        assert refused.status_code == 409 and refused.json["status"] == "cancelled", action
        assert client.post(f"/jobs/job-unknown/{action}", headers=auth).status_code == 404
    assert client.patch(f"/jobs/{jid}", json={"budget_usd": 30}, headers=auth).status_code == 409
    missing = client.patch("/jobs/job-unknown", json={"budget_usd": 1}, headers=auth)
    assert missing.status_code == 404
    assert client.post(f"/jobs/{jid}/explode", headers=auth).status_code == 404
