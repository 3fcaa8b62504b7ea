"""``GET /jobs`` carries each job's rate and ETA; ``POST /jobs`` shares one producer."""

from __future__ import annotations

from typing import Any

from chimera.settings import Settings

PAIR = [
    {"provider": "anthropic", "model": "claude-sonnet-5-5"},
    {"provider": "google", "model": "gemini-3.5-flash"},
]


def test_get_jobs_carries_rate_and_eta(kafka_topics: Settings, db: Any, make_app: Any) -> None:
    client = make_app(kafka_topics).test_client()
    body = {"name": "web", "topics": ["Cars"], "participants": PAIR, "target": 2}
    made = client.post("/jobs", json=body)
    again = client.post("/jobs", json=body | {"name": "web2"})  # the app's one producer again
    assert made.status_code == 201 and again.status_code == 201
    one = client.get(f"/jobs/{made.json['id']}").json
    listed = client.get("/jobs").json["jobs"]
    for fig in (one["figures"], listed[0]["figures"]):
        assert fig["accepted_per_min"] is None and fig["eta_s"] is None  # not started
        assert fig["dead_lettered"] == 0
    from web.resources import resources

    app = client.application
    producer = resources(app).producer.get()
    assert resources(app).producer.get() is producer
