"""The kinds of value a setting holds, each with its own check.

Bounded numbers, per-model limits, and the connection URLs and files that are
checked on the way in (``chimera.settings`` declares its fields with these
types) and whose secrets are hidden on the way out (``redact_url``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    FieldSerializationInfo,
    SecretStr,
    field_serializer,
    model_validator,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
Port = Annotated[int, Field(ge=1, le=65_535)]
RedisDb = Annotated[int, Field(ge=0, le=15)]
ModelName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S+$")]


class ModelLimits(BaseModel):
    """Per-minute limits of one provider or model; None means unlimited."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rpm: int | None = Field(default=None, gt=0, description="requests per minute")
    itpm: int | None = Field(default=None, gt=0, description="input tokens per minute")
    otpm: int | None = Field(default=None, gt=0, description="output tokens per minute")


def _check_redis_url(v: SecretStr | None) -> SecretStr | None:
    if v is None or not v.get_secret_value():
        return None
    parts = urlsplit(v.get_secret_value())
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ValueError(
            "expected redis://[:password@]host[:port] or rediss://... "
            "(leave REDIS_URL unset to use REDIS_HOST/REDIS_PORT)"
        )
    try:
        parts.port  # noqa: B018 - raises on a non-numeric port
    except ValueError as exc:
        raise ValueError("the port in REDIS_URL is not a number") from exc
    return v


def normalize_database_url(raw: str) -> str:
    """Check a Postgres URL and pin the psycopg2 driver, or raise ValueError."""
    try:
        url = make_url(raw)
    except ArgumentError as exc:
        raise ValueError("expected postgresql://user[:password]@host[:port]/dbname") from exc
    if url.get_backend_name() not in ("postgresql", "postgres"):
        raise ValueError("only PostgreSQL is supported: postgresql://user@host:port/dbname")
    if not url.database:
        raise ValueError("the URL names no database: add /dbname at the end")
    url = url.set(drivername="postgresql+psycopg2")
    return url.render_as_string(hide_password=False)


def _check_database_url(v: SecretStr) -> SecretStr:
    return SecretStr(normalize_database_url(v.get_secret_value()))


def _check_bootstrap(v: str) -> str:
    servers = [s.strip() for s in v.split(",") if s.strip()]
    if not servers:
        raise ValueError("expected host:port[,host:port...]")
    for server in servers:
        host, sep, port = server.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65_536:
            raise ValueError(f"{server!r} is not host:port (e.g. 127.0.0.1:9092)")
    return ",".join(servers)


def _check_base_url(v: str | None) -> str | None:
    if not v:
        return None
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("expected an http(s):// URL such as http://127.0.0.1:8089")
    return v.rstrip("/")


def _check_file(v: Path | None) -> Path | None:
    if v is not None and not v.is_file():
        raise ValueError(f"no such file: {v}")
    return v


#: ``redis://`` or ``rediss://`` with a host and a numeric port; empty means unset.
RedisUrl = Annotated[SecretStr | None, AfterValidator(_check_redis_url)]
#: A Postgres URL, stored with the psycopg2 driver pinned.
DatabaseUrl = Annotated[SecretStr, AfterValidator(_check_database_url)]
#: ``host:port[,host:port...]``, stored without blanks.
BootstrapServers = Annotated[str, AfterValidator(_check_bootstrap)]
#: An ``http(s)://`` URL without its trailing slash; empty means unset.
BaseUrl = Annotated[str | None, AfterValidator(_check_base_url)]
#: A file that must exist when the settings are read.
ExistingFile = Annotated[Path | None, AfterValidator(_check_file)]

#: An endpoint's name: ``openai:<name>`` must fit ``llm_calls.provider`` (32 characters).
ENDPOINT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,24}$")


def _check_endpoint_name(v: str) -> str:
    if not ENDPOINT_NAME.fullmatch(v):
        raise ValueError(
            f"endpoint name {v!r}: 1 to 25 of a-z, 0-9, _ and -, starting with a letter or digit"
        )
    return v


def _check_required_url(v: str) -> str:
    url = _check_base_url(v)
    if url is None:
        raise ValueError("base_url is empty: expected an http(s):// URL ending in /v1")
    return url


EndpointName = Annotated[str, AfterValidator(_check_endpoint_name)]


class OpenAIEndpoint(BaseModel):
    """One named OpenAI-compatible server (``CHIMERA_OPENAI_ENDPOINTS``): its base URL,
    and its key given inline (``api_key``) or by the variable that holds it
    (``api_key_env``, read when the settings are read and at each client's start)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: Annotated[str, AfterValidator(_check_required_url)]
    api_key: SecretStr | None = None
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @model_validator(mode="after")
    def _one_key(self) -> OpenAIEndpoint:
        if self.api_key is not None and self.api_key_env is not None:
            raise ValueError("give api_key or api_key_env, not both")
        if self.api_key_env is not None and not os.environ.get(self.api_key_env):
            raise ValueError(f"api_key_env names {self.api_key_env}, which is not set")
        return self

    @field_serializer("api_key", when_used="json")
    def _masked(self, v: SecretStr | None, info: FieldSerializationInfo) -> str | None:
        """Masked, unless the dump's context asks for secrets (``to_env``: a child process)."""
        if v is None:
            return None
        reveal = isinstance(info.context, dict) and info.context.get("secrets") is True
        return v.get_secret_value() if reveal else "***"

    def key(self) -> str | None:
        """The API key, if any."""
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        return os.environ.get(self.api_key_env) if self.api_key_env else None


def redact_url(url: str) -> str:
    """``scheme://user:secret@host`` -> ``scheme://user:***@host``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
