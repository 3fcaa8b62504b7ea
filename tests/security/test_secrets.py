"""No secret leaves the process: not in logs, llm_calls, /readyz, /metrics, error JSON
or ``stack status``.

Every secret below carries ``MARK``; a leak of any of them, or of any part of one
longer than the mark, shows as ``MARK`` in the text under test.  The failure paths
are real: LLM providers that answer 401 echoing the credentials they were sent (as
OpenAI's "Incorrect API key provided: sk-..." does), a provider URL with credentials
and nothing listening, Redis and Postgres URLs with passwords pointing at closed
ports, a Redis that refuses the password.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydantic import SecretStr
from sqlalchemy import text

from chimera.errors import LLMAuthError, LLMTimeout
from chimera.llm.registry import build_client
from chimera.llm.types import CallMeta, LLMRequest, Message
from chimera.logs import JsonFormatter
from chimera.redaction import MASK, RedactingFilter, Redactor, secret_values
from chimera.redis_client import make_redis
from chimera.settings import Settings, env_var_for, normalize_database_url
from tests.chimera.test_cli import chimera
from tests.helpers import free_port, wait_for

MARK = "7f3a9c"
SECRETS = {
    "anthropic_api_key": f"sk-ant-api03-{MARK}-anthropic",
    "google_api_key": f"AIzaSy{MARK}google",
    "openai_api_key": f"sk-proj-{MARK}-openai",
    "redis_password": f"redis-pw-{MARK}",
    "kafka_sasl_password": f"kafka-pw-{MARK}",
    "api_token": f"api-token-{MARK}",
    "metrics_token": f"metrics-token-{MARK}",
    "ray_auth_token": f"ray-token-{MARK}",
    "flower_basic_auth": f"admin:flower-pw-{MARK}",
}
DB_PASSWORD = f"db-pw-{MARK}"
REDIS_URL_PASSWORD = f"redis-url-pw-{MARK}"
#: Forms a secret takes that do not contain the mark.
ENCODED = [base64.b64encode(SECRETS["flower_basic_auth"].encode()).decode()]

BODY = {
    "context_id": "doc-secrets",
    "segments": [
        {"speaker": "Ana", "text": "Cars make cities loud."},
        {"speaker": "Ben", "text": "A ban would hurt shops."},
    ],
}


def assert_clean(text: str, where: str) -> None:
    assert MARK not in text, f"a secret leaked into {where}:\n{text}"
    for encoded in ENCODED:
        assert encoded not in text, f"an encoded secret leaked into {where}:\n{text}"


def with_secrets(settings: Settings, **update: Any) -> Settings:
    """``settings`` holding every secret above (unused ones are still secrets to mask)."""
    secrets = {k: SecretStr(v) for k, v in SECRETS.items()}
    return settings.model_copy(update={**secrets, **update})


# --- servers and logging --------------------------------------------------------------------


def llm_errors(db: Any) -> list[tuple[str, str, str]]:
    with db.connect() as conn:
        rows = conn.execute(text("SELECT provider, status, error FROM llm_calls ORDER BY provider"))
        return [(r.provider, r.status, r.error or "") for r in rows]


# --- the redactor itself --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("redis://:pw0rd-x@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("postgresql+psycopg2://app:pw0rd@db:5432/x", "postgresql+psycopg2://app:***@db:5432/x"),
        ("http://user:pw0rd@127.0.0.1:1/v1 refused", "http://user:***@127.0.0.1:1/v1 refused"),
        ("{'x-api-key': 'abc123', 'b': 1}", "{'x-api-key': '***', 'b': 1}"),
        ("x-goog-api-key: AIza123", "x-goog-api-key: ***"),
        ("Authorization: Bearer tok3n.abc", "Authorization: Bearer ***"),
        ("authorization: basic dXNlcjpwYXNz", "authorization: basic ***"),
        ("sent Bearer eyJhbGciOi.x1", "sent Bearer ***"),
        (
            "POST /v1beta/models/m:generateContent?key=AIza9&alt=sse",
            "POST /v1beta/models/m:generateContent?key=***&alt=sse",
        ),
        ("host=db password=pw0rd user=app", "host=db password=*** user=app"),
        # Left alone: no credential in them.
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("postgresql://postgres@127.0.0.1:5432/x", "postgresql://postgres@127.0.0.1:5432/x"),
        ("http://[::1]:8085/readyz", "http://[::1]:8085/readyz"),
        (
            "Flower at http://127.0.0.1:5555 (basic auth), 2 workers",
            "Flower at http://127.0.0.1:5555 (basic auth), 2 workers",
        ),
        ("Authorization: Bearer <CHIMERA_API_TOKEN>", "Authorization: Bearer <CHIMERA_API_TOKEN>"),
        ("event_id=evt-1 redis_key=a key=conv-1", "event_id=evt-1 redis_key=a key=conv-1"),
    ],
)
def test_credential_shapes_are_masked_whatever_their_value(raw: str, expected: str) -> None:
    assert Redactor().redact(raw) == expected


def test_every_secret_of_the_settings_is_known_in_each_of_its_forms(settings: Settings) -> None:
    secret = with_secrets(
        settings,
        database_url=SecretStr(f"postgresql+psycopg2://app:{DB_PASSWORD}@db:5432/x"),
        redis_url=SecretStr("redis://:p%40ss-" + MARK + "@cache:6379/0"),
    )
    values = secret_values(secret)
    for field, value in SECRETS.items():
        assert value in values, field
    assert {DB_PASSWORD, f"p%40ss-{MARK}", f"p@ss-{MARK}", f"flower-pw-{MARK}", *ENCODED} <= values
    text = (
        f"key {SECRETS['openai_api_key']} url redis://cache:6379 pw p@ss-{MARK} "
        f"db postgresql://app:{DB_PASSWORD}@db/x basic {ENCODED[0]}"
    )
    out = Redactor(values).redact(text)
    assert_clean(out, "the redacted text")
    assert out.count(MASK) == 4
    assert Redactor(["abc"]).redact("abc") == "abc"  # too short to mask by value


@pytest.mark.parametrize("formatter", [logging.Formatter(), JsonFormatter()], ids=["text", "json"])
def test_the_log_filter_masks_messages_arguments_and_tracebacks(
    formatter: logging.Formatter,
) -> None:
    stream: list[str] = []

    class ListHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            stream.append(self.format(record))

    handler = ListHandler()
    handler.setFormatter(formatter)
    handler.addFilter(RedactingFilter(Redactor([SECRETS["kafka_sasl_password"]])))
    logger = logging.getLogger(f"chimera.test.redaction.{id(formatter)}")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        logger.warning("login with %s failed", SECRETS["kafka_sasl_password"])
        try:
            raise RuntimeError(f"SASL auth failed for {SECRETS['kafka_sasl_password']}")
        except RuntimeError:
            logger.exception("broker said no")
        logger.info("plain %s line", "harmless")
    finally:
        logger.removeHandler(handler)
    assert_clean("\n".join(stream), "the log lines")
    assert len(stream) == 3
    assert "login with *** failed" in stream[0]
    assert "RuntimeError: SASL auth failed for ***" in stream[1]
    assert "plain harmless line" in stream[2]


# --- real failure paths ---------------------------------------------------------------------


def _request(provider: str, model: str) -> LLMRequest:
    return LLMRequest(
        provider=provider,  # type: ignore[arg-type]
        model=model,
        messages=(Message(role="user", content="hello"),),
        max_output_tokens=64,
        meta=CallMeta(task="security-test", owner_type="analysis_run", owner_id="run-sec"),
    )


def test_providers_echoing_the_key_leak_it_neither_to_llm_calls_nor_to_logs(
    redis_ns: Settings,
    db: Any,
    refusing_provider: str,
    service_logs: Callable[[Settings], Callable[[], str]],
) -> None:
    secret = with_secrets(
        redis_ns,
        redis_password=None,  # the real Redis has none; its secret is tested elsewhere
        anthropic_base_url=refusing_provider,
        google_gemini_base_url=refusing_provider,
        openai_base_url=f"{refusing_provider}/v1",
        accounting_flush_ms=0,
    )
    logged = service_logs(secret)
    client = make_redis(secret)
    llm = build_client(secret, redis_client=client, engine=db)
    try:
        for provider, model in (
            ("anthropic", "claude-haiku-5-5"),
            ("google", "gemini-3.5-flash"),
            ("openai", "gpt-5-mini"),
        ):
            with pytest.raises(LLMAuthError) as info:
                llm.complete(_request(provider, model))
            logging.getLogger("chimera.test").error("call failed", exc_info=info.value)
        assert llm.flush()
    finally:
        llm.close()
        client.close()
    rows = llm_errors(db)
    assert [(p, s) for p, s, _ in rows] == [
        ("anthropic", "error"),
        ("google", "error"),
        ("openai", "error"),
    ]
    for provider, _, error in rows:
        assert error.startswith("LLMAuthError:") and "401" in error, error
        assert_clean(error, f"llm_calls.error of {provider}")
    assert_clean(logged(), "the logs")


def test_a_provider_url_with_credentials_and_nothing_listening(
    redis_ns: Settings, db: Any, service_logs: Callable[[Settings], Callable[[], str]]
) -> None:
    dead = f"http://proxy-user:{MARK}-proxy-pw@127.0.0.1:{free_port()}"
    secret = with_secrets(
        redis_ns,
        redis_password=None,
        anthropic_base_url=dead,
        openai_base_url=f"{dead}/v1",
        accounting_flush_ms=0,
    )
    logged = service_logs(secret)
    client = make_redis(secret)
    llm = build_client(secret, redis_client=client, engine=db)
    try:
        for provider, model in (("anthropic", "claude-haiku-5-5"), ("openai", "gpt-5-mini")):
            with pytest.raises(LLMTimeout) as info:
                llm.complete(_request(provider, model))
            logging.getLogger("chimera.test").error("call failed", exc_info=info.value)
        assert llm.flush()
    finally:
        llm.close()
        client.close()
    rows = llm_errors(db)
    assert len(rows) == 2
    for provider, _, error in rows:
        assert error.startswith("LLMTimeout:"), error
        assert_clean(error, f"llm_calls.error of {provider}")
    assert_clean(logged(), "the logs")


@pytest.fixture
def analyze_app(
    make_app: Callable[[Settings], Flask], web_settings: Settings, refusing_provider: str
) -> Iterator[Flask]:
    secret = with_secrets(
        web_settings,
        redis_password=None,
        anthropic_base_url=refusing_provider,
        google_gemini_base_url=refusing_provider,
        openai_base_url=f"{refusing_provider}/v1",
    )
    app = make_app(secret)
    yield app
    close = app.extensions.get("chimera.analyzer.close")
    if close is not None:
        close()


def test_analyze_with_failing_providers_logs_and_records_no_secret(
    analyze_app: Flask, db: Any, service_logs: Callable[[Settings], Callable[[], str]]
) -> None:
    logged = service_logs(analyze_app.config["CHIMERA_SETTINGS"])
    client = analyze_app.test_client()
    token = {"Authorization": f"Bearer {SECRETS['api_token']}"}
    response = client.post("/orchestrator/analyze", json=BODY, headers=token)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json is not None and response.json["status"] == "failed"
    rows = wait_for(lambda: llm_errors(db) if len(llm_errors(db)) == 4 else None, timeout_s=10)
    for provider, status, error in rows:
        assert status == "error" and "401" in error
        assert_clean(error, f"llm_calls.error of {provider}")
    assert_clean(logged(), "the logs")
    metrics = client.get(
        "/metrics", headers={"Authorization": f"Bearer {SECRETS['metrics_token']}"}
    )
    assert metrics.status_code == 200
    assert "chimera_llm_calls_total" in metrics.get_data(as_text=True)
    assert_clean(metrics.get_data(as_text=True), "/metrics")


def test_the_analyze_answer_and_stored_bundle_carry_no_secret(
    analyze_app: Flask, db: Any, service_logs: Callable[[Settings], Callable[[], str]]
) -> None:
    # As gunicorn's worker does at start (post_fork): the process masks its settings' secrets.
    service_logs(analyze_app.config["CHIMERA_SETTINGS"])
    token = {"Authorization": f"Bearer {SECRETS['api_token']}"}
    response = analyze_app.test_client().post("/orchestrator/analyze", json=BODY, headers=token)
    assert response.status_code == 200
    with db.connect() as conn:
        bundles = [
            json.dumps(r.bundle) for r in conn.execute(text("SELECT bundle FROM analysis_runs"))
        ]
    assert bundles
    assert_clean(response.get_data(as_text=True) + "".join(bundles), "the analysis bundle")


def with_dead_stores(settings: Settings) -> Settings:
    """Every secret set, and Redis and Postgres URLs with passwords, on closed ports."""
    dead_db = f"postgresql://app:{DB_PASSWORD}@127.0.0.1:{free_port()}/chimera"
    return with_secrets(
        settings,
        redis_url=SecretStr(f"redis://:{REDIS_URL_PASSWORD}@127.0.0.1:{free_port()}/0"),
        database_url=SecretStr(normalize_database_url(dead_db)),
    )


def test_readyz_with_credentialled_urls_of_dead_services(
    make_app: Callable[[Settings], Flask],
    web_settings: Settings,
    service_logs: Callable[[Settings], Callable[[], str]],
) -> None:
    secret = with_dead_stores(web_settings)
    logged = service_logs(secret)
    token = {"Authorization": f"Bearer {SECRETS['metrics_token']}"}
    response = make_app(secret).test_client().get("/readyz", headers=token)
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["redis"]["ok"] is False
    assert "does not answer" in body["checks"]["redis"]["error"]
    assert body["checks"]["postgres"]["ok"] is False
    assert "Postgres does not answer" in body["checks"]["postgres"]["error"]
    assert_clean(response.get_data(as_text=True), "/readyz")
    assert_clean(logged(), "the logs")


def test_error_json_of_the_web_app_carries_no_secret(
    make_app: Callable[[Settings], Flask],
    web_settings: Settings,
    service_logs: Callable[[Settings], Callable[[], str]],
) -> None:
    secret = with_dead_stores(web_settings)
    logged = service_logs(secret)
    client: FlaskClient = make_app(secret).test_client()
    token = {"Authorization": f"Bearer {SECRETS['api_token']}"}
    answers = [
        client.get("/conversations/conv-1", headers=token),  # Postgres is down: 503
        client.post("/orchestrator/analyze", json=BODY, headers=token),  # so is Redis
        client.get("/conversations/conv-1"),  # no token: 401
        client.get("/conversations/conv-1", headers={"Authorization": "Bearer wrong"}),
        client.get(f"/conversations/{SECRETS['api_token']}"),  # a token in the path
    ]
    assert [a.status_code for a in answers] == [503, 503, 401, 401, 401]
    for answer in answers:
        assert answer.is_json and answer.json is not None and answer.json["message"]
        assert_clean(answer.get_data(as_text=True), f"the {answer.status_code} answer")
    assert_clean(logged(), "the logs")


def test_stack_status_shows_no_secret(tmp_path: Any) -> None:
    env = {
        **{env_var_for(field): value for field, value in SECRETS.items()},
        "REDIS_URL": f"redis://:{REDIS_URL_PASSWORD}@127.0.0.1:{free_port()}/0",
        "DATABASE_URL": f"postgresql://app:{DB_PASSWORD}@127.0.0.1:{free_port()}/chimera",
        # Not loopback 127.0.0.1, so the stack treats it as an external cluster and asks it.
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.2:{free_port()}",
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "chimera",
        "ANTHROPIC_BASE_URL": f"http://proxy-user:{MARK}-proxy-pw@127.0.0.1:{free_port()}",
        "CHIMERA_STATE_DIR": str(tmp_path),
        "CHIMERA_LOG_LEVEL": "DEBUG",
    }
    assert "ANTHROPIC_API_KEY" in env and "KAFKA_SASL_PASSWORD" in env
    assert "CHIMERA_API_TOKEN" in env and "CHIMERA_FLOWER_BASIC_AUTH" in env
    result = chimera("stack", "status", env=env, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert "unhealthy" in lines["redis"] and "unhealthy" in lines["postgres"]
    assert "unhealthy" in lines["kafka"]
    assert_clean(result.stdout, "stack status")
    assert_clean(result.stderr, "the stderr of stack status")
    assert os.environ.get("KAFKA_SASL_PASSWORD") is None  # the suite's own env is untouched
