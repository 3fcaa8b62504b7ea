"""The app served the way the stack serves it: gunicorn, gthread, several workers."""

from __future__ import annotations

import http.client
import json
import os
import signal
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from chimera.db.tables import LLMCall
from chimera.settings import Settings
from tests.helpers import free_port, wait_for
from tests.web.conftest import sample
from tests.web.gunicorn import Server


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[Settings], Server]]:
    started: list[Server] = []

    def start(settings: Settings) -> Server:
        n = len(started)
        server = Server(settings, tmp_path / f"web-{n}.log", tmp_path / f"metrics-{n}")
        started.append(server)
        wait_for(server.answers, timeout_s=30, what="gunicorn to answer /healthz")
        return server

    yield start
    for server in started:
        server.stop()


@pytest.mark.subprocess_worker
def test_gunicorn_serves_probes_metrics_and_json_errors(
    serve: Callable[[Settings], Server],
    worker_process: Callable[..., Any],
    kafka_broker: Settings,
    db: Engine,
) -> None:
    settings = kafka_broker.model_copy(
        update={
            "http_port": free_port(),
            "http_workers": 2,
            "http_threads": 4,
            "http_max_body_bytes": 4_096,
        }
    )
    with db.begin() as conn:
        conn.execute(
            insert(LLMCall),
            [
                {
                    "provider": "openai",
                    "model": "llama-3.3-70b",
                    "task": "summary",
                    "status": "ok",
                    "input_tokens": 12,
                    "output_tokens": 5,
                    "cost_usd": Decimal("0.01"),
                },
            ]
            * 3,
        )
    server = serve(settings)

    assert server.get_json("/healthz") == (200, {"status": "ok"})

    # A real worker runs the canary, which writes the heartbeat readiness looks for.
    worker_process()
    status, ready = server.get_json("/readyz")
    assert status == 200, ready
    assert ready["status"] == "ready"
    assert "live worker" in ready["checks"]["worker"]["detail"]

    def healthz_count() -> float:
        _, _, body = server.request("GET", "/metrics")
        text = body.decode()
        return (
            sample(text, "chimera_http_requests_total", endpoint="health.healthz", status="200")
            or 0
        )

    before = healthz_count()
    for _ in range(12):
        assert server.request("GET", "/healthz")[0] == 200
    # Whichever of the two workers answers the scrape, it reports both workers' requests.
    assert healthz_count() - before == 12
    pids = {p.stem.rsplit("_", 1)[1] for p in server.metrics_dir.glob("counter_*.db")}
    assert len(pids) == 2, pids

    status, headers, body = server.request("GET", "/metrics")
    text = body.decode()
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    assert (
        sample(
            text,
            "chimera_fleet_llm_calls_total",
            provider="openai",
            model="llama-3.3-70b",
            status="ok",
        )
        == 3
    )
    assert (
        sample(
            text,
            "chimera_fleet_llm_tokens_total",
            provider="openai",
            model="llama-3.3-70b",
            direction="input",
        )
        == 36
    )
    assert sample(text, "chimera_dependency_up", dependency="kafka") == 1
    assert sample(text, "chimera_fleet_heartbeats", component="worker") >= 1  # type: ignore[operator]

    status, missing = server.get_json("/no/such/thing")
    assert status == 404
    assert missing["error"] == "Not Found"
    status, unknown = server.get_json("/conversations/conv-unknown")
    assert (status, unknown["error"]) == (404, "NotFound")

    status, headers, body = server.request("DELETE", "/healthz")
    assert status == 405
    assert json.loads(body)["error"] == "Method Not Allowed"
    assert "GET" in headers["Allow"]

    status, _, body = server.request("POST", "/conversations/x", body=b"x" * 5_000)
    assert status == 413
    assert json.loads(body)["error"] == "Request Entity Too Large"
    # A chunked body declares no length: refused as well once past the limit.
    conn = http.client.HTTPConnection("127.0.0.1", settings.http_port, timeout=10)
    try:
        conn.request("POST", "/conversations/x", body=iter([b"x" * 3_000] * 3), encode_chunked=True)
        chunked = conn.getresponse()
        assert chunked.status == 413
        assert json.loads(chunked.read())["error"] == "Request Entity Too Large"
    finally:
        conn.close()

    os.killpg(server.proc.pid, signal.SIGTERM)
    assert server.proc.wait(30) == 0
    log = server.log()
    assert "Traceback" not in log, log
    assert "Booting worker" in log
