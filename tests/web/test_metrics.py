"""GET /metrics: the process's own metrics and the fleet's figures from the shared stores."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from pydantic import SecretStr
from sqlalchemy import Engine, insert

from chimera import heartbeat
from chimera.db.tables import AnalysisRun, Conversation, Event, LLMCall
from chimera.llm.breaker import CircuitBreaker
from chimera.settings import Settings, normalize_database_url
from tests.helpers import free_port
from tests.web.conftest import sample, samples


def llm_call(provider: str, model: str, status: str, **extra: Any) -> dict[str, Any]:
    row = {"provider": provider, "model": model, "task": "turn", "status": status, "error": None}
    counts = {"input_tokens": 0, "output_tokens": 0, "latency_ms": 0, "cost_usd": Decimal(0)}
    return row | counts | extra


def run(rid: str, status: str, statuses: dict[str, Any], source: str = "kafka") -> dict[str, Any]:
    return {
        "id": rid,
        "event_id": f"evt-{rid}" if source == "kafka" else None,
        "context_id": "ctx-1",
        "status": status,
        "bundle": {},
        "worker_statuses": statuses,
        "source": source,
    }


def conversation(cid: str, status: str) -> dict[str, Any]:
    return {
        "id": cid,
        "event_id": f"evt-{cid}",
        "topic_title": "t",
        "topic": {"title": "t"},
        "participants": [],
        "min_turns": 1,
        "max_turns": 2,
        "status": status,
    }


def event(eid: str, kind: str, status: str) -> dict[str, Any]:
    return {"event_id": eid, "kind": kind, "payload_hash": "h", "payload": {}, "status": status}


def test_metrics_report_fleet_figures_from_postgres(client: FlaskClient, db: Engine) -> None:
    ok = {"status": "ok"}
    with db.begin() as conn:
        conn.execute(
            insert(LLMCall),
            [
                llm_call(
                    "anthropic",
                    "claude-haiku-5-5",
                    "ok",
                    input_tokens=100,
                    output_tokens=40,
                    latency_ms=250,
                    cost_usd=Decimal("0.0015"),
                ),
                llm_call(
                    "anthropic",
                    "claude-haiku-5-5",
                    "ok",
                    input_tokens=50,
                    output_tokens=10,
                    latency_ms=750,
                    cost_usd=Decimal("0.0005"),
                ),
                llm_call("anthropic", "claude-haiku-5-5", "error", latency_ms=1000, error="429"),
                llm_call(
                    "google",
                    "gemini-3.5-flash",
                    "ok",
                    input_tokens=7,
                    output_tokens=3,
                    latency_ms=100,
                    cost_usd=Decimal("0.0001"),
                ),
            ],
        )
        conn.execute(
            insert(AnalysisRun),
            [
                run("r1", "ok", {"summary": ok, "argument": ok}),
                run(
                    "r2",
                    "partial",
                    {"summary": ok, "argument": {"status": "error", "error_class": "LLMTimeout"}},
                ),
                run("r3", "failed", {"summary": "error", "argument": "error"}, source="realtime"),
            ],
        )
        conn.execute(
            insert(Conversation),
            [
                conversation("c1", "completed"),
                conversation("c2", "completed"),
                conversation("c3", "running"),
            ],
        )
        conn.execute(
            insert(Event),
            [
                event("e1", "conversation", "done"),
                event("e2", "analysis", "dead_lettered"),
                event("e3", "analysis", "dead_lettered"),
            ],
        )

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    text = response.get_data(as_text=True)

    def value(name: str, **labels: str) -> float | None:
        return sample(text, name, **labels)

    claude = {"provider": "anthropic", "model": "claude-haiku-5-5"}
    assert value("chimera_fleet_llm_calls_total", **claude, status="ok") == 2
    assert value("chimera_fleet_llm_calls_total", **claude, status="error") == 1
    assert (
        value(
            "chimera_fleet_llm_calls_total",
            provider="google",
            model="gemini-3.5-flash",
            status="ok",
        )
        == 1
    )
    assert value("chimera_fleet_llm_call_seconds_total", **claude, status="ok") == 1.0
    assert value("chimera_fleet_llm_tokens_total", **claude, direction="input") == 150
    assert value("chimera_fleet_llm_tokens_total", **claude, direction="output") == 50
    assert abs(value("chimera_fleet_llm_cost_usd_total", **claude) - 0.002) < 1e-9  # type: ignore[operator]
    assert value("chimera_fleet_analysis_runs_total", status="ok", source="kafka") == 1
    assert value("chimera_fleet_analysis_runs_total", status="partial", source="kafka") == 1
    assert value("chimera_fleet_analysis_runs_total", status="failed", source="realtime") == 1
    assert value("chimera_fleet_analysis_runs_total", status="failed", source="kafka") == 0
    assert value("chimera_fleet_analysis_tasks_total", analysis="summary", status="ok") == 2
    assert value("chimera_fleet_analysis_tasks_total", analysis="argument", status="error") == 2
    assert value("chimera_fleet_conversations", status="completed") == 2
    assert value("chimera_fleet_conversations", status="running") == 1
    assert value("chimera_fleet_conversations", status="failed") == 0
    assert value("chimera_fleet_inbox_events", kind="analysis", status="dead_lettered") == 2
    assert value("chimera_fleet_inbox_events", kind="conversation", status="done") == 1
    # A model seen in llm_calls with no breaker key is closed.
    assert value("chimera_fleet_llm_breaker_state", **claude, state="closed") == 1
    assert value("chimera_fleet_llm_breaker_state", **claude, state="open") == 0
    for dependency in ("postgres", "redis", "kafka"):
        assert value("chimera_dependency_up", dependency=dependency) == 1
    # No id ever becomes a label.
    assert "r1" not in text and "evt-" not in text and 'c1"' not in text


def test_metrics_report_breakers_queue_and_heartbeats_from_redis(
    client: FlaskClient, web_settings: Settings, redis_client: Any
) -> None:
    from chimera.stack.checks import celery_client

    strict = web_settings.model_copy(update={"breaker_failure_threshold": 2})
    breaker = CircuitBreaker(redis_client, strict)
    breaker.record("openai", "llama-3.3-70b", success=False)
    assert breaker.record("openai", "llama-3.3-70b", success=False) == "open"
    breaker.record("google", "gemini-3.5-flash", success=False)  # one failure: still closed

    sender = celery_client(web_settings)
    try:
        sender.send_task("chimera.nothing", args=[1])
        sender.send_task("chimera.nothing", args=[2], priority=5)
        sender.send_task("chimera.nothing", args=[3])
    finally:
        sender.close()
    heartbeat.beat(redis_client, web_settings, "worker", instance="w1@h")
    heartbeat.beat(redis_client, web_settings, "worker", instance="w2@h")
    heartbeat.beat(redis_client, web_settings, "bridge", instance="h:1")

    text = client.get("/metrics").get_data(as_text=True)
    llama = {"provider": "openai", "model": "llama-3.3-70b"}
    assert sample(text, "chimera_fleet_llm_breaker_state", **llama, state="open") == 1
    assert sample(text, "chimera_fleet_llm_breaker_state", **llama, state="closed") == 0
    gemini = {"provider": "google", "model": "gemini-3.5-flash"}
    assert sample(text, "chimera_fleet_llm_breaker_state", **gemini, state="closed") == 1
    # Every priority list counts, not only the bare queue name.
    assert sample(text, "chimera_fleet_celery_queue_depth", queue=web_settings.celery_queue) == 3
    assert sample(text, "chimera_fleet_heartbeats", component="worker") == 2
    assert sample(text, "chimera_fleet_heartbeats", component="bridge") == 1
    assert sample(text, "chimera_fleet_heartbeats", component="beat") == 0


def test_a_model_that_is_not_configured_is_never_a_label(
    client: FlaskClient, web_settings: Settings, redis_client: Any, db: Engine
) -> None:
    haiku = {"provider": "anthropic", "model": "claude-haiku-5-5"}
    with db.begin() as conn:
        conn.execute(
            insert(LLMCall),
            [
                llm_call(**haiku, status="ok", input_tokens=5),
                llm_call("anthropic", "claude-unlisted-1", "ok", input_tokens=7),
                llm_call("anthropic", "claude-unlisted-2", "ok", input_tokens=11),
                llm_call("mistral", "large", "error"),
            ],
        )
    breaker = CircuitBreaker(
        redis_client, web_settings.model_copy(update={"breaker_failure_threshold": 1})
    )
    breaker.record("anthropic", "claude-unlisted-3", success=False)

    text = client.get("/metrics").get_data(as_text=True)
    assert "unlisted" not in text and "mistral" not in text and '"large"' not in text
    other = {"provider": "anthropic", "model": "other"}
    assert sample(text, "chimera_fleet_llm_calls_total", **haiku, status="ok") == 1
    assert sample(text, "chimera_fleet_llm_calls_total", **other, status="ok") == 2
    assert sample(text, "chimera_fleet_llm_tokens_total", **other, direction="input") == 18
    assert (
        sample(
            text, "chimera_fleet_llm_calls_total", provider="other", model="other", status="error"
        )
        == 1
    )
    # Three unconfigured anthropic models: two closed (seen in llm_calls), one open.
    assert sample(text, "chimera_fleet_llm_breaker_state", **other, state="closed") == 2
    assert sample(text, "chimera_fleet_llm_breaker_state", **other, state="open") == 1


def test_metrics_count_http_requests_by_endpoint_and_status(client: FlaskClient) -> None:
    def counts() -> dict[tuple[tuple[str, str], ...], float]:
        return samples(client.get("/metrics").get_data(as_text=True), "chimera_http_requests_total")

    def delta(
        after: dict[Any, float], before: dict[Any, float], endpoint: str, status: str
    ) -> float:
        key = (("endpoint", endpoint), ("status", status))
        return after.get(key, 0) - before.get(key, 0)

    before = counts()
    client.get("/healthz")
    client.get("/healthz")
    client.get("/no/such/route")
    client.get("/conversations/bad%20id")
    after = counts()
    assert delta(after, before, "health.healthz", "200") == 2
    assert delta(after, before, "unmatched", "404") == 1
    assert delta(after, before, "reads.conversation", "400") == 1
    text = client.get("/metrics").get_data(as_text=True)
    assert sample(text, "chimera_http_request_seconds_count", endpoint="health.healthz")


def test_a_dependency_down_never_fails_the_scrape(
    make_app: Callable[[Settings], Flask], web_settings: Settings, redis_client: Any
) -> None:
    url = normalize_database_url(f"postgresql://postgres:pw-x9@127.0.0.1:{free_port()}/x")
    dead = web_settings.model_copy(
        update={
            "database_url": SecretStr(url),
            "kafka_bootstrap_servers": f"127.0.0.1:{free_port()}",
        }
    )
    heartbeat.beat(redis_client, web_settings, "worker", instance="w1@h")
    errors_before = REGISTRY.get_sample_value(
        "chimera_fleet_scrape_errors_total", {"dependency": "postgres"}
    )
    response = make_app(dead).test_client().get("/metrics")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert sample(text, "chimera_dependency_up", dependency="postgres") == 0
    assert sample(text, "chimera_dependency_up", dependency="kafka") == 0
    assert sample(text, "chimera_dependency_up", dependency="redis") == 1
    assert (
        sample(text, "chimera_fleet_scrape_errors_total", dependency="postgres")
        == (errors_before or 0) + 1
    )
    assert sample(text, "chimera_fleet_heartbeats", component="worker") == 1  # Redis still read
    assert "chimera_fleet_llm_calls_total" not in text
    assert "chimera_fleet_bridge_lag_messages" not in text
    assert "pw-x9" not in text


def test_metrics_need_a_token_once_one_is_set(
    make_app: Callable[[Settings], Flask], web_settings: Settings
) -> None:
    guarded = web_settings.model_copy(update={"api_token": SecretStr("tok-abcdef")})
    client = make_app(guarded).test_client()
    token = {"Authorization": "Bearer tok-abcdef"}

    def refused_scrapes() -> float:
        text = client.get("/metrics", headers=token).get_data(as_text=True)
        labels = {"endpoint": "metrics.metrics", "status": "401"}
        return sample(text, "chimera_http_requests_total", **labels) or 0

    before = refused_scrapes()
    assert client.get("/metrics").status_code == 401
    assert refused_scrapes() == before + 1  # a refused scrape is counted too
    response = client.get("/metrics", headers=token)
    assert response.status_code == 200
    assert "chimera_dependency_up" in response.get_data(as_text=True)
