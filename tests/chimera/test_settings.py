"""Settings: the seed service's variable names, defaults, and clear errors."""

from __future__ import annotations

import pytest

from chimera.errors import ConfigError
from chimera.settings import env_var_for, load_settings, to_env
from chimera.settings_env import describe

SEED_DEFAULTS = {
    "redis_host": "127.0.0.1",
    "redis_port": 6379,
    "kafka_consumer_group_id": "orchestration-service",
    "max_conversation_turns": 10,
    "conversation_timeout_seconds": 300,
    "rate_limit_requests_per_minute": 60,
    "kafka_security_protocol": "PLAINTEXT",
    "http_port": 8085,
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No Chimera variables but the ones a test sets."""
    import os

    for name in list(os.environ):
        if name.startswith(("CHIMERA_", "KAFKA_", "REDIS_", "DATABASE_", "ANTHROPIC_", "OPENAI_")):
            monkeypatch.delenv(name)
        if name.startswith(("GOOGLE_", "GEMINI_", "OTEL_", "MAX_CONV", "CONVERSATION_", "RATE_")):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize(("field", "expected"), SEED_DEFAULTS.items())
def test_defaults_match_the_seed_service(
    clean_env: pytest.MonkeyPatch, field: str, expected: object
) -> None:
    assert getattr(load_settings(), field) == expected


@pytest.mark.parametrize(
    ("var", "value", "field", "expected"),
    [
        ("REDIS_HOST", "redis.internal", "redis_host", "redis.internal"),
        ("REDIS_PORT", "6380", "redis_port", 6380),
        (
            "KAFKA_BOOTSTRAP_SERVERS",
            "k1:9092, k2:9093",
            "kafka_bootstrap_servers",
            "k1:9092,k2:9093",
        ),
        ("KAFKA_CONSUMER_GROUP_ID", "g2", "kafka_consumer_group_id", "g2"),
        ("MAX_CONVERSATION_TURNS", "12", "max_conversation_turns", 12),
        ("CONVERSATION_TIMEOUT_SECONDS", "60", "conversation_timeout_seconds", 60),
        ("RATE_LIMIT_REQUESTS_PER_MINUTE", "600", "rate_limit_requests_per_minute", 600),
        (
            "ANTHROPIC_BASE_URL",
            "http://127.0.0.1:8089/",
            "anthropic_base_url",
            "http://127.0.0.1:8089",
        ),
        (
            "OPENAI_BASE_URL",
            "http://127.0.0.1:8089/v1",
            "openai_base_url",
            "http://127.0.0.1:8089/v1",
        ),
        ("GOOGLE_GEMINI_BASE_URL", "https://proxy", "google_gemini_base_url", "https://proxy"),
        ("OTEL_SERVICE_NAME", "chimera-eu", "otel_service_name", "chimera-eu"),
        ("CHIMERA_CELERY_POOL", "solo", "celery_pool", "solo"),
        ("CHIMERA_MAX_EVENT_BYTES", "4096", "max_event_bytes", 4096),
    ],
)
def test_environment_variables_are_honoured(
    clean_env: pytest.MonkeyPatch, var: str, value: str, field: str, expected: object
) -> None:
    clean_env.setenv(var, value)
    assert getattr(load_settings(), field) == expected


def test_gemini_api_key_is_an_alias_of_google_api_key(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("GEMINI_API_KEY", "g-secret")
    settings = load_settings()
    assert settings.google_api_key is not None
    assert settings.google_api_key.get_secret_value() == "g-secret"
    assert settings.configured_providers == ["google"]


def test_redis_urls_use_one_db_per_role(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("REDIS_PASSWORD", "p@ss/word")
    settings = load_settings()
    assert settings.celery_broker_url == "redis://:p%40ss%2Fword@127.0.0.1:6379/0"
    assert settings.celery_result_url.endswith("/1")
    assert settings.state_redis_url.endswith("/2")


def test_redis_url_overrides_host_and_port(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("REDIS_URL", "rediss://:pw@cache.example:6390/7")
    clean_env.setenv("REDIS_HOST", "ignored")
    settings = load_settings()
    assert settings.celery_broker_url == "rediss://:pw@cache.example:6390/0"


def test_database_url_gets_the_psycopg2_driver(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DATABASE_URL", "postgres://u:pw@db:5433/chimera")
    url = load_settings().database_url.get_secret_value()
    assert url == "postgresql+psycopg2://u:pw@db:5433/chimera"


@pytest.mark.parametrize(
    ("var", "value", "expected_in_message"),
    [
        ("REDIS_PORT", "six", "REDIS_PORT: Input should be a valid integer"),
        ("REDIS_PORT", "70000", "REDIS_PORT: Input should be less than or equal to 65535"),
        ("REDIS_URL", "http://cache:6379", "REDIS_URL: expected redis://"),
        ("DATABASE_URL", "mysql://u@h/db", "DATABASE_URL: only PostgreSQL is supported"),
        ("DATABASE_URL", "postgresql://u@h", "DATABASE_URL: the URL names no database"),
        ("DATABASE_URL", "not a url", "DATABASE_URL: expected postgresql://"),
        ("KAFKA_BOOTSTRAP_SERVERS", "kafka", "KAFKA_BOOTSTRAP_SERVERS: 'kafka' is not host:port"),
        ("KAFKA_SECURITY_PROTOCOL", "TLS", "KAFKA_SECURITY_PROTOCOL: Input should be 'PLAINTEXT'"),
        ("KAFKA_SSL_CAFILE", "/nonexistent/ca.pem", "KAFKA_SSL_CAFILE: no such file"),
        (
            "MAX_CONVERSATION_TURNS",
            "0",
            "MAX_CONVERSATION_TURNS: Input should be greater than or equal to 1",
        ),
        ("OPENAI_BASE_URL", "localhost:11434", "OPENAI_BASE_URL: expected an http(s):// URL"),
        ("CHIMERA_CELERY_POOL", "eventlet", "CHIMERA_CELERY_POOL: Input should be 'threads'"),
        ("CHIMERA_LOG_LEVEL", "LOUD", "CHIMERA_LOG_LEVEL"),
        (
            "CHIMERA_DEFAULT_PARTICIPANTS",
            '[{"provider": "x", "model": "m"}]',
            "CHIMERA_DEFAULT_PARTICIPANTS",
        ),
        ("CHIMERA_DEFAULT_PARTICIPANTS", "not json", "CHIMERA_DEFAULT_PARTICIPANTS"),
    ],
)
def test_a_malformed_value_names_the_variable(
    clean_env: pytest.MonkeyPatch, var: str, value: str, expected_in_message: str
) -> None:
    clean_env.setenv(var, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert expected_in_message in str(info.value)


@pytest.mark.parametrize(
    ("env", "expected_in_message"),
    [
        (
            {"CHIMERA_MIN_CONVERSATION_TURNS": "8", "MAX_CONVERSATION_TURNS": "6"},
            "CHIMERA_MIN_CONVERSATION_TURNS",
        ),
        (
            {"CHIMERA_TASK_SOFT_TIME_LIMIT_S": "300"},
            "CHIMERA_TASK_SOFT_TIME_LIMIT_S: must be below",
        ),
        (
            {"CHIMERA_VISIBILITY_TIMEOUT_S": "500"},
            "CHIMERA_TASK_TIME_LIMIT_S: must be at most half",
        ),
        ({"CHIMERA_KAFKA_HEARTBEAT_INTERVAL_MS": "5000"}, "CHIMERA_KAFKA_HEARTBEAT_INTERVAL_MS"),
        (
            {"CHIMERA_WORKER_LIVENESS_TTL_S": "5"},
            "CHIMERA_WORKER_LIVENESS_TTL_S: must be at least CHIMERA_CONVERSATION_LOCK_TTL_S",
        ),
        ({"CHIMERA_CELERY_POOL": "prefork"}, "CHIMERA_CELERY_POOL"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "KAFKA_SASL_MECHANISM"),
        (
            {"CHIMERA_DLQ_ROUTES": '{"conversation.dlq": "conversation.completed"}'},
            "CHIMERA_DLQ_ROUTES: conversation.dlq -> conversation.completed: dead letters are "
            "replayed only to an input topic",
        ),
        (
            {"CHIMERA_DLQ_ROUTES": '{"analysis.completed": "analysis.tasks"}'},
            "CHIMERA_DLQ_ROUTES: analysis.completed is an input or output topic",
        ),
        ({"CHIMERA_API_TOKEN": "change-me-api-token"}, "CHIMERA_API_TOKEN: still the placeholder"),
        ({"CHIMERA_LLM_MODELS": '{"openai": [""]}'}, "CHIMERA_LLM_MODELS: String should have"),
        (
            {"CHIMERA_LLM_MODELS": '{"mistral": ["m"]}'},
            "CHIMERA_LLM_MODELS: mistral: not a provider",
        ),
        (
            {"DATABASE_URL": "postgresql://chimera:Change-Me-pw@db/chimera"},
            "DATABASE_URL: still the placeholder",
        ),
    ],
)
def test_inconsistent_values_are_rejected(
    clean_env: pytest.MonkeyPatch, env: dict[str, str], expected_in_message: str
) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert expected_in_message in str(info.value)


def test_secrets_never_show_in_repr_or_description(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ANTHROPIC_API_KEY", "sk-ant-very-secret")
    clean_env.setenv("DATABASE_URL", "postgresql://app:db-secret@db/chimera")
    clean_env.setenv("KAFKA_SASL_PASSWORD", "kafka-secret")
    # Plain URLs may carry credentials too: a proxy's, a collector's.
    clean_env.setenv("OPENAI_BASE_URL", "https://proxy-user:proxy-secret@llm.internal/v1")
    clean_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "https://otel:otel-secret@collector:4318")
    settings = load_settings()
    shown = repr(settings) + str(describe(settings))
    for secret in ("sk-ant-very-secret", "db-secret", "kafka-secret", "otel-secret"):
        assert secret not in shown
    assert describe(settings)["DATABASE_URL"] == "postgresql+psycopg2://app:***@db/chimera"
    assert describe(settings)["OPENAI_BASE_URL"] == "https://proxy-user:***@llm.internal/v1"
    assert describe(settings)["OTEL_EXPORTER_OTLP_ENDPOINT"] == "https://otel:***@collector:4318"


def test_error_messages_do_not_echo_secret_values(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("REDIS_URL", "http://user:hunter2@cache")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "hunter2" not in str(info.value)


def test_to_env_round_trips(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OPENAI_API_KEY", "sk-1")
    clean_env.setenv(
        "CHIMERA_DEFAULT_PARTICIPANTS",
        '[{"provider":"openai","model":"a"},{"provider":"openai","model":"b"}]',
    )
    original = load_settings()
    for name, value in to_env(original).items():
        clean_env.setenv(name, value)
    assert load_settings() == original


def test_env_var_for_names_seed_and_prefixed_variables() -> None:
    assert env_var_for("redis_host") == "REDIS_HOST"
    assert env_var_for("google_api_key") == "GOOGLE_API_KEY"
    assert env_var_for("celery_pool") == "CHIMERA_CELERY_POOL"


# --- named OpenAI-compatible endpoints ----------------------------------------------------------


def test_openai_endpoints_are_read_with_their_keys_masked(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("VLLM_KEY", "vllm-secret-4711")
    clean_env.setenv(
        "CHIMERA_OPENAI_ENDPOINTS",
        '{"vllm": {"base_url": "http://10.0.0.5:8000/v1/", "api_key_env": "VLLM_KEY"},'
        ' "oai": {"base_url": "https://api.openai.com/v1", "api_key": "sk-inline-0815"}}',
    )
    settings = load_settings()
    assert settings.openai_endpoints["vllm"].base_url == "http://10.0.0.5:8000/v1"
    assert settings.openai_endpoints["vllm"].key() == "vllm-secret-4711"
    assert settings.openai_endpoints["oai"].key() == "sk-inline-0815"
    shown = describe(settings)["CHIMERA_OPENAI_ENDPOINTS"]
    assert "sk-inline-0815" not in shown and "sk-inline-0815" not in repr(settings)
    assert '"api_key": "***"' in shown and '"api_key_env": "VLLM_KEY"' in shown
    # Child processes get the key itself, and read the same endpoints back.
    assert "sk-inline-0815" in to_env(settings)["CHIMERA_OPENAI_ENDPOINTS"]
    clean_env.setenv("CHIMERA_OPENAI_ENDPOINTS", to_env(settings)["CHIMERA_OPENAI_ENDPOINTS"])
    assert load_settings().openai_endpoints == settings.openai_endpoints
    from chimera.redaction import Redactor, secret_values

    redactor = Redactor(secret_values(settings))
    assert redactor.redact("key vllm-secret-4711 and sk-inline-0815") == "key *** and ***"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('{"Bad Name": {"base_url": "http://x:1/v1"}}', "endpoint name 'Bad Name': 1 to 25"),
        ('{"' + "a" * 26 + '": {"base_url": "http://x:1/v1"}}', "1 to 25 of a-z"),
        ('{"vllm": {}}', "Field required (at vllm.base_url)"),
        ('{"vllm": {"base_url": "ftp://x"}}', "expected an http(s):// URL"),
        ('{"vllm": {"base_url": "http://x:1/v1", "key": "k"}}', "(at vllm.key)"),
        (
            '{"vllm": {"base_url": "http://x:1/v1", "api_key": "k1", "api_key_env": "K"}}',
            "give api_key or api_key_env, not both (at vllm)",
        ),
        (
            '{"vllm": {"base_url": "http://x:1/v1", "api_key_env": "NO_SUCH_KEY_VAR"}}',
            "api_key_env names NO_SUCH_KEY_VAR, which is not set (at vllm)",
        ),
        ('["vllm"]', "CHIMERA_OPENAI_ENDPOINTS"),
        ("{not json", "CHIMERA_OPENAI_ENDPOINTS: expected a JSON value"),
    ],
)
def test_a_malformed_endpoint_is_refused_naming_its_entry(
    clean_env: pytest.MonkeyPatch, value: str, expected: str
) -> None:
    clean_env.setenv("CHIMERA_OPENAI_ENDPOINTS", value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "CHIMERA_OPENAI_ENDPOINTS" in str(info.value)
    assert expected in str(info.value)
    assert "k1" not in str(info.value)


def test_endpoints_named_elsewhere_must_be_configured(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CHIMERA_OPENAI_ENDPOINTS", '{"vllm": {"base_url": "http://x:1/v1"}}')
    assert load_settings(llm_models={"openai:vllm": ["llama"]}).llm_models == {
        "openai:vllm": ["llama"]
    }
    with pytest.raises(ConfigError, match=r"CHIMERA_LLM_MODELS: openai:ollama: not a provider"):
        load_settings(llm_models={"openai:ollama": ["llama"]})
    participants = [
        {"provider": "openai", "model": "llama", "endpoint": "ollama"},
        {"provider": "openai", "model": "llama"},
    ]
    with pytest.raises(ConfigError, match=r"DEFAULT_PARTICIPANTS: 0.endpoint: 'ollama' is not"):
        load_settings(default_participants=participants)
    with pytest.raises(ConfigError, match=r"ANALYSIS_MODELS: summary.endpoint: analyses use"):
        load_settings(
            analysis_models={"summary": {"provider": "openai", "model": "m", "endpoint": "vllm"}}
        )
