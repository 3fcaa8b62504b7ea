"""What is wrong with settings whose every value is valid on its own.

Limits that must be ordered (soft below hard, low water below high water), Kafka
security variables that must come together, secrets still holding a placeholder
of ``.env.example``, and dead-letter routes.  ``problems`` maps each field at
fault to what is wrong; ``Settings`` turns a non-empty answer into a ConfigError.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import SecretStr

from chimera import defaults as d
from chimera.models.participants import PROVIDERS
from chimera.settings_env import env_name

if TYPE_CHECKING:
    from chimera.settings import Settings


def problems(s: Settings) -> dict[str, str]:
    """Field -> what is wrong with it, for every relation ``s`` breaks."""
    found = _relation_problems(s)
    found |= _kafka_security_problems(s)
    found |= _placeholder_problems(s)
    found |= _dlq_route_problems(s)
    found |= _endpoint_problems(s)
    if len(s.default_participants) > s.max_participants:
        found["default_participants"] = f"at most CHIMERA_MAX_PARTICIPANTS ({s.max_participants})"
    return found


def _relation_problems(s: Settings) -> dict[str, str]:
    """Pairs of numbers that must keep their order."""
    found: dict[str, str] = {}
    if s.min_conversation_turns > s.max_conversation_turns:
        found["min_conversation_turns"] = (
            f"must be <= MAX_CONVERSATION_TURNS ({s.max_conversation_turns})"
        )
    if s.task_soft_time_limit_s >= s.task_time_limit_s:
        found["task_soft_time_limit_s"] = (
            f"must be below CHIMERA_TASK_TIME_LIMIT_S ({s.task_time_limit_s})"
        )
    if s.task_time_limit_s * 2 > s.visibility_timeout_s:
        found["task_time_limit_s"] = (
            "must be at most half of CHIMERA_VISIBILITY_TIMEOUT_S "
            f"({s.visibility_timeout_s}) or a slow task runs twice"
        )
    if s.worker_liveness_ttl_s < s.conversation_lock_ttl_s:
        found["worker_liveness_ttl_s"] = (
            f"must be at least CHIMERA_CONVERSATION_LOCK_TTL_S ({s.conversation_lock_ttl_s}): "
            "a dead worker's turn comes back only once its lease has expired"
        )
    if s.bridge_queue_low_water >= s.bridge_queue_high_water:
        found["bridge_queue_low_water"] = (
            f"must be below CHIMERA_BRIDGE_QUEUE_HIGH_WATER ({s.bridge_queue_high_water})"
        )
    if s.kafka_heartbeat_interval_ms * 3 > s.kafka_session_timeout_ms:
        found["kafka_heartbeat_interval_ms"] = (
            "must be at most a third of CHIMERA_KAFKA_SESSION_TIMEOUT_MS"
        )
    if s.near_duplicate_num_perm % s.near_duplicate_bands:
        found["near_duplicate_bands"] = (
            f"must divide CHIMERA_NEAR_DUPLICATE_NUM_PERM ({s.near_duplicate_num_perm})"
        )
    return found


def _placeholder_problems(s: Settings) -> dict[str, str]:
    """Secrets still holding a placeholder of .env.example (``change-me...``)."""
    found: dict[str, str] = {}
    for field in type(s).model_fields:
        value = getattr(s, field)
        if not isinstance(value, SecretStr):
            continue
        secret = value.get_secret_value()
        if "://" in secret:  # a URL: its password is the secret
            secret = urlsplit(secret).password or ""
        if secret.lower().startswith(d.PLACEHOLDER_SECRET_PREFIX):
            found[field] = (
                f"still the placeholder {d.PLACEHOLDER_SECRET_PREFIX}...: set a real secret "
                "(e.g. `openssl rand -hex 32`) or leave it unset"
            )
    return found


def _dlq_route_problems(s: Settings) -> dict[str, str]:
    inputs = {s.topic_conversation_new, s.topic_analysis_tasks}
    others = set(s.topics.values()) - {s.topic_conversation_dlq, s.topic_analysis_dlq}
    for dlq, target in s.dlq_routes.items():
        if target not in inputs:
            return {
                "dlq_routes": f"{dlq} -> {target}: dead letters are replayed only to an "
                f"input topic ({', '.join(sorted(inputs))})"
            }
        if dlq in others:
            return {"dlq_routes": f"{dlq} is an input or output topic, not a dead-letter topic"}
    return {}


def _kafka_security_problems(s: Settings) -> dict[str, str]:
    """What KAFKA_SECURITY_PROTOCOL needs and the other KAFKA_SSL_/SASL_ variables lack."""
    protocol = s.kafka_security_protocol
    found: dict[str, str] = {}
    if protocol.startswith("SASL"):
        if s.kafka_sasl_mechanism is None:
            found["kafka_sasl_mechanism"] = (
                f"{protocol} needs KAFKA_SASL_MECHANISM (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"
            )
        elif s.kafka_sasl_mechanism == "OAUTHBEARER":
            found["kafka_sasl_mechanism"] = (
                "OAUTHBEARER needs a token provider, which Chimera does not configure: "
                "use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
            )
        if not s.kafka_sasl_username:
            found["kafka_sasl_username"] = f"{protocol} needs KAFKA_SASL_USERNAME"
        if s.kafka_sasl_password is None or not s.kafka_sasl_password.get_secret_value():
            found["kafka_sasl_password"] = f"{protocol} needs KAFKA_SASL_PASSWORD"
    ssl_files = [
        env_name(type(s), f"kafka_ssl_{name}")
        for name in ("cafile", "certfile", "keyfile")
        if getattr(s, f"kafka_ssl_{name}") is not None
    ]
    if ssl_files and protocol not in ("SSL", "SASL_SSL"):
        found["kafka_security_protocol"] = (
            f"{', '.join(ssl_files)} set, but {protocol} does not use TLS: "
            "set KAFKA_SECURITY_PROTOCOL=SSL (or SASL_SSL)"
        )
    if s.kafka_ssl_keyfile is not None and s.kafka_ssl_certfile is None:
        found["kafka_ssl_keyfile"] = (
            "a client key without its certificate: set KAFKA_SSL_CERTFILE too"
        )
    return found


def _endpoint_problems(s: Settings) -> dict[str, str]:
    """Names of OpenAI endpoints (``openai:<name>``) that CHIMERA_OPENAI_ENDPOINTS lacks."""
    found: dict[str, str] = {}
    routes = {*PROVIDERS, *(f"openai:{name}" for name in s.openai_endpoints)}
    unknown = sorted(set(s.llm_models) - routes)
    if unknown:
        found["llm_models"] = (
            f"{', '.join(unknown)}: not a provider or a configured endpoint "
            f"(known: {', '.join(sorted(routes))}; endpoints come from CHIMERA_OPENAI_ENDPOINTS)"
        )
    for i, p in enumerate(s.default_participants):
        if p.endpoint is not None and p.endpoint not in s.openai_endpoints:
            found["default_participants"] = (
                f"{i}.endpoint: {p.endpoint!r} is not in CHIMERA_OPENAI_ENDPOINTS"
            )
    for kind, p in s.analysis_models.items():
        if p.endpoint is not None:
            found["analysis_models"] = (
                f"{kind}.endpoint: analyses use the provider's own settings, not an endpoint"
            )
    return found
