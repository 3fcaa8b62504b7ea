"""docs/settings.md, rendered from the settings object so it cannot drift.

Every field of ``chimera.settings.Settings`` becomes one row: the environment
variable(s) that set it, its type and bounds, its default and its docstring.  The
groups are the ``# --- Group ---`` headings of the settings classes' source, in
order.  Defaults come from the class, never from the environment, so the page is
the same on every machine; a secret's default is shown only with its password
masked (as ``chimera config`` shows it).

Regenerate with ``python -m chimera.settings_doc > docs/settings.md`` (``make docs``);
``tests/test_settings_doc.py`` fails when the committed page differs.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types as at
from pydantic import AliasChoices, BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from chimera.settings import Settings
from chimera.settings_env import env_name
from chimera.settings_values import redact_url

_HEADING = re.compile(r"^    # --- (?P<title>.+?) -+\s*$")
_FIELD = re.compile(r"^    (?P<name>[a-z_][a-z0-9_]*)\s*:")

_PREAMBLE = """\
# Settings

Every setting Chimera reads, generated from the settings object (`chimera/settings.py` and
`chimera/settings_services.py`) by `python -m chimera.settings_doc > docs/settings.md`
(`make docs`); `tests/test_settings_doc.py` fails when this page and the code differ.

One settings object (pydantic-settings) reads the environment once per process. The seed
service's names (`REDIS_HOST`, `DATABASE_URL`, `ANTHROPIC_API_KEY`, ...) are kept; everything
else is `CHIMERA_` plus the field's name in capitals. A malformed value stops start-up with a
message naming the variable, e.g. `REDIS_PORT: Input should be a valid integer`; list and dict
values are JSON. `python -m chimera config` prints the effective values, secrets masked.

Secrets (the API keys, passwords, tokens, `DATABASE_URL`, `REDIS_URL`) are held as secret
strings: never in `repr`, `config` output or configuration errors, and masked wherever text
leaves a process (docs/security.md). A secret still holding `.env.example`'s `change-me...`
placeholder stops every process at start-up.
"""


def groups(model: type[BaseModel] = Settings) -> dict[str, list[str]]:
    """Field names by the source heading they stand under, in declaration order."""
    out: dict[str, list[str]] = {}
    seen: set[str] = set()
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        try:
            lines = inspect.getsource(cls).splitlines()
        except (OSError, TypeError):
            continue
        title = cls.__name__
        for line in lines:
            if heading := _HEADING.match(line):
                title = heading["title"]
            elif (field := _FIELD.match(line)) and _new_field(field["name"], model, seen):
                seen.add(field["name"])
                out.setdefault(title, []).append(field["name"])
    missing = [name for name in model.model_fields if name not in seen]
    if missing:
        out.setdefault("Other", []).extend(missing)
    return out


def _new_field(name: str, model: type[BaseModel], seen: set[str]) -> bool:
    return name in model.model_fields and name not in seen


_TABLE_HEAD = "| variable | type | default | meaning |\n|---|---|---|---|\n"


def render(model: type[Settings] = Settings) -> str:
    """The whole Markdown page."""
    parts = [_PREAMBLE]
    for title, names in groups(model).items():
        parts.append(f"\n## {title}\n\n{_TABLE_HEAD}")
        for name in names:
            info = model.model_fields[name]
            cells = (_variables(model, name, info), _type(info), _default(name, info), _text(info))
            parts.append("| " + " | ".join(_cell(c) for c in cells) + " |\n")
    return "".join(parts)


def _variables(model: type[Settings], name: str, info: FieldInfo) -> str:
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        names = [c for c in alias.choices if isinstance(c, str)]
        return " or ".join(f"`{n}`" for n in names)
    return f"`{env_name(model, name)}`"


def _type(info: FieldInfo) -> str:
    shown = _annotation(info.annotation)
    bounds = _bounds(info.metadata)
    return f"{shown} {bounds}" if bounds else shown


def _annotation(tp: Any) -> str:  # noqa: PLR0911 - one return per kind of type
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return " or ".join(_annotation(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(f"`{v}`" for v in get_args(tp))
    if origin is list:
        return f"JSON list of {_annotation(get_args(tp)[0])}"
    if origin is dict:
        key, value = get_args(tp)
        return f"JSON object: {_annotation(key)} -> {_annotation(value)}"
    if get_origin(tp) is not None and hasattr(tp, "__metadata__"):  # Annotated[...]
        return _annotation(get_args(tp)[0])
    simple = {bool: "boolean", int: "integer", float: "number", str: "string", Path: "path"}
    if tp in simple:
        return simple[tp]
    if tp is SecretStr:
        return "secret"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        keys = ", ".join(tp.model_fields)
        return f"{{{keys}}}"
    return getattr(tp, "__name__", str(tp))


def _bounds(metadata: list[Any]) -> str:
    low = high = ""
    for item in metadata:
        if isinstance(item, at.Ge):
            low = f"≥ {item.ge}"
        elif isinstance(item, at.Gt):
            low = f"> {item.gt}"
        elif isinstance(item, at.Le):
            high = f"≤ {item.le}"
        elif isinstance(item, at.Lt):
            high = f"< {item.lt}"
    return ", ".join(b for b in (low, high) if b)


def _default(name: str, info: FieldInfo) -> str:
    if info.default_factory is not None:
        value: Any = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined:
        return "required"
    else:
        value = info.default
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return f"`{redact_url(value.get_secret_value())}`" if "url" in name else "unset"
    if isinstance(value, list | dict):
        return f"`{json.dumps(_jsonable(value), separators=(', ', ': '))}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _text(info: FieldInfo) -> str:
    return " ".join((info.description or "").split())


def _cell(text: str) -> str:
    """Table-safe: a ``|`` outside code would end the cell."""
    return text.replace("|", "\\|")


def main() -> None:
    """Print the page (``python -m chimera.settings_doc > docs/settings.md``)."""
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
