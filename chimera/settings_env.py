"""How settings meet the environment: variable names, errors, and output.

A field is set by ``CHIMERA_<FIELD>`` unless it declares the seed service's own
name(s) as its validation alias (``env_field``).  A malformed value becomes one ``ConfigError``
that lists every variable at fault; ``to_env`` hands the settings to a child
process and ``describe`` shows them with secrets masked.  The functions take the
settings class (or an instance) so ``chimera.settings`` can use them while it is
being defined.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import SettingsError

from chimera.errors import ConfigError
from chimera.settings_values import redact_url

if TYPE_CHECKING:
    from chimera.settings import Settings


def env_field(default: Any, *names: str, **kwargs: Any) -> Any:
    """A field read from the seed service's (unprefixed) variable ``names``."""
    return Field(default, validation_alias=AliasChoices(*names), **kwargs)


def env_name(model: type[Settings], field: str) -> str:
    """The environment variable that sets ``field`` (its first name if several)."""
    info = model.model_fields.get(field)
    if info is not None and isinstance(info.validation_alias, AliasChoices):
        first = info.validation_alias.choices[0]
        if isinstance(first, str):
            return first
    return f"CHIMERA_{field.upper()}"


def format_problems(model: type[Settings], problems: Mapping[str, str]) -> str:
    """One line per field at fault, each naming its variable."""
    lines = [f"  {env_name(model, f)}: {msg}" for f, msg in problems.items()]
    return "invalid configuration:\n" + "\n".join(lines)


def config_error(model: type[Settings], exc: SettingsError | ValidationError) -> ConfigError:
    """The ConfigError that says which variables reading ``model`` failed on, and why."""
    if isinstance(exc, SettingsError):  # a complex value (list, dict) that is not JSON
        match = re.search(r'field "(\w+)"', str(exc))
        field = match.group(1) if match else "?"
        return ConfigError(format_problems(model, {field: "expected a JSON value"}))
    problems: dict[str, str] = {}
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        field = _field_from_loc(model, loc[0]) if loc else "?"
        where = ".".join(loc[1:])
        ctx = err.get("ctx") or {}
        msg = str(ctx["error"]) if "error" in ctx else err["msg"]
        problems[field] = f"{msg}{f' (at {where})' if where else ''}"
    return ConfigError(format_problems(model, problems))


def _field_from_loc(model: type[Settings], name: str) -> str:
    for field, info in model.model_fields.items():
        alias = info.validation_alias
        if name == field or (isinstance(alias, AliasChoices) and name in alias.choices):
            return field
    return name.removeprefix("CHIMERA_").lower()


def to_env(settings: Settings) -> dict[str, str]:
    """Settings as environment variables (secrets included), for child processes."""
    model = type(settings)
    out: dict[str, str] = {}
    for field in model.model_fields:
        value = getattr(settings, field)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, list | dict):
            value = json.dumps(_jsonable(value, secrets=True))
        out[env_name(model, field)] = str(value)
    return out


def describe(settings: Settings) -> dict[str, str]:
    """Settings as env-var -> value, secrets masked (for `stack status` and logs)."""
    model = type(settings)
    out: dict[str, str] = {}
    for field in model.model_fields:
        value = getattr(settings, field)
        if isinstance(value, SecretStr):
            shown = redact_url(value.get_secret_value()) if "url" in field else "***"
        elif isinstance(value, list | dict):
            shown = json.dumps(_jsonable(value))
        elif isinstance(value, str) and "://" in value:  # a base URL may carry credentials
            shown = redact_url(value)
        else:
            shown = "" if value is None else str(value)
        out[env_name(model, field)] = shown
    return out


def _jsonable(value: Any, *, secrets: bool = False) -> Any:
    """``value`` as JSON values; secrets inside (an endpoint's key) masked unless ``secrets``."""
    if isinstance(value, BaseModel):
        context = {"secrets": secrets}
        return value.model_dump(mode="json", exclude_none=True, context=context)
    if isinstance(value, list):
        return [_jsonable(v, secrets=secrets) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v, secrets=secrets) for k, v in value.items()}
    return value
