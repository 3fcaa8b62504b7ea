"""The kinds of value a setting holds, each with its own check.

Bounded numbers, per-model limits, and the connection URLs and files that are
checked on the way in (``chimera.settings`` declares its fields with these
types) and whose secrets are hidden on the way out (``redact_url``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr
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


def redact_url(url: str) -> str:
    """``scheme://user:secret@host`` -> ``scheme://user:***@host``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
