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
