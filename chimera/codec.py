"""Turning raw Kafka/HTTP bytes into typed input events, and events into bytes.

Every way a message can be unreadable maps to one ``InputError`` subclass, so
the bridge can dead-letter it with a precise reason and carry on.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator
from typing import Any, Literal, TypeVar, overload

from pydantic import BaseModel, ValidationError

from chimera import defaults as d
from chimera.errors import (
    EventTooLarge,
    InvalidJSON,
    SchemaInvalid,
    TombstoneEvent,
    UndecodableEvent,
    UnsupportedSchemaVersion,
)
from chimera.llm.catalog import catalog_for
from chimera.models import (
    SUPPORTED_SCHEMA_VERSIONS,
    AnalysisTask,
    ConversationLimits,
    ConversationRequest,
)
from chimera.settings import Settings
from chimera.untrusted import clip

EventKind = Literal["conversation", "analysis"]
_MODELS: dict[str, type[ConversationRequest] | type[AnalysisTask]] = {
    "conversation": ConversationRequest,
    "analysis": AnalysisTask,
}
M = TypeVar("M", bound=BaseModel)


def limits_from(settings: Settings) -> ConversationLimits:
    """The validation context of ``settings``: caps, defaults and the configured models."""
    return ConversationLimits(
        min_turns=settings.min_conversation_turns,
        max_turns=settings.max_conversation_turns,
        max_participants=settings.max_participants,
        max_metadata_bytes=settings.max_output_metadata_bytes,
        max_output_tokens=settings.turn_max_output_tokens,
        default_participants=tuple(settings.default_participants),
        models=catalog_for(settings),
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(literal: str) -> float:
    """A JSON number such as 1e400 parses as infinity, which no JSON (nor Postgres
    JSONB) can hold: refused like the ``Infinity`` literal."""
    value = float(literal)
    if math.isinf(value):
        raise ValueError(f"number {clip(literal, 40)} is out of range")
    return value


#: NUL (which Postgres JSONB cannot store) and unpaired surrogate escapes such as
#: "\udfff" (valid JSON syntax, but no Unicode text: hashing or storing it fails).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _check_text(obj: dict[str, Any]) -> None:
    """Raise the precise ``InputError`` for a string no store can hold, or nesting
    deeper than ``MAX_JSON_DEPTH``."""
    event_id = _event_id(obj)
    # Depth first, one iterator per open container; a path is spelled out only for the
    # value at fault.  (One path string per value would cost the product of a key's
    # length and the number of items under it: a 1 MiB event could ask for gigabytes.)
    trail: list[str | int] = []  # the key or index of each open container but the top
    walking: list[Iterator[tuple[str | int, Any]]] = [iter(obj.items())]
    while walking:
        step = next(walking[-1], None)
        if step is None:
            walking.pop()
            if trail:
                trail.pop()
            continue
        label, value = step
        for text in (label, value):  # the key, and a string value
            if not isinstance(text, str) or not (bad := _UNSTORABLE.search(text)):
                continue
            where = clip(_path([*trail, label]))  # the keys are the author's: quoted cut
            if bad.group() == "\x00":
                message = "must not contain NUL characters"
                errors = [{"field": where, "message": message}]
                raise SchemaInvalid(f"{where}: {message}", errors, event_id=event_id)
            raise UndecodableEvent(
                f"{where} holds an unpaired surrogate escape (not Unicode text)", event_id=event_id
            )
        if isinstance(value, dict | list):
            if len(walking) >= d.MAX_JSON_DEPTH:
                raise InvalidJSON(
                    f"message is nested too deeply (more than {d.MAX_JSON_DEPTH} levels)",
                    event_id=event_id,
                )
            trail.append(label)
            walking.append(iter(value.items()) if isinstance(value, dict) else enumerate(value))


def _path(labels: list[str | int]) -> str:
    """``a.b[2].c`` for the keys and indexes from the top object down."""
    parts: list[str] = []
    for label in labels:
        if isinstance(label, int):
            parts.append(f"[{label}]")
        else:
            parts.append(f".{label}" if parts else label or '""')  # name the empty key too
    return "".join(parts)


def parse_json_object(raw: bytes | str | None, *, max_bytes: int) -> dict[str, Any]:
    """Bytes -> a JSON object, or the precise ``InputError``."""
    if raw is None:
        raise TombstoneEvent("message has a null value (tombstone)")
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > max_bytes:
        raise EventTooLarge(f"message is {size} bytes; the limit is {max_bytes}")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise UndecodableEvent(f"message is not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        obj = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except (json.JSONDecodeError, ValueError) as exc:
        raise InvalidJSON(f"message is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidJSON("message is nested too deeply") from None
    if not isinstance(obj, dict):
        raise InvalidJSON(f"message must be a JSON object, got {type(obj).__name__}")
    _check_text(obj)
    return obj


def payload_hash(obj: dict[str, Any]) -> str:
    """A stable hash of a payload, to tell a duplicate from a conflicting one."""
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate_event(
    model: type[M], obj: dict[str, Any], *, context: dict[str, Any] | None = None
) -> M:
    """Validate ``obj`` against ``model``; errors name every offending field.

    Text no store can hold (NUL, unpaired surrogates) is refused here too, for
    objects that were not parsed by ``parse_json_object`` (the CLI's, the topic queue's).
    """
    _check_text(obj)
    return _validate(model, obj, context=context)


def _validate(model: type[M], obj: dict[str, Any], *, context: dict[str, Any] | None) -> M:
    """``validate_event`` for an object whose text was checked already."""
    event_id = _event_id(obj)
    version = obj.get("schema_version", 1)
    # A non-integer version is left to the model, which names the field.
    is_int = isinstance(version, int) and not isinstance(version, bool)
    if is_int and version not in SUPPORTED_SCHEMA_VERSIONS:
        supported = ", ".join(map(str, sorted(SUPPORTED_SCHEMA_VERSIONS)))
        raise UnsupportedSchemaVersion(
            f"schema_version {clip(str(version))} is not supported (this build reads {supported})",
            event_id=event_id,
        )
    try:
        return model.model_validate(obj, context=context)
    except ValidationError as exc:
        # Field names quote the author's keys, messages may quote their values: both cut.
        errors = [
            {
                "field": clip(".".join(str(p) for p in e["loc"])) or "(event)",
                "message": clip(e["msg"].removeprefix("Value error, ")),
            }
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise SchemaInvalid(
            f"{model.__name__} is invalid: {_summary(errors)}", errors, event_id=event_id
        ) from None


#: A message lists this many of an event's errors (its ``errors`` list has them all).
LISTED_ERRORS = 20


def _summary(errors: list[dict[str, str]]) -> str:
    listed = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:LISTED_ERRORS])
    more = len(errors) - LISTED_ERRORS
    return f"{listed}; and {more} more" if more > 0 else listed


def _event_id(obj: dict[str, Any]) -> str | None:
    """The event's id, to name it in an error (cut: an id too long to be valid is quoted
    as the author wrote it)."""
    value = obj.get("event_id")
    return clip(value) if isinstance(value, str) and value else None


@overload
def decode_event(
    raw: bytes | str | None, kind: Literal["conversation"], settings: Settings
) -> tuple[ConversationRequest, str]: ...
@overload
def decode_event(
    raw: bytes | str | None, kind: Literal["analysis"], settings: Settings
) -> tuple[AnalysisTask, str]: ...
def decode_event(
    raw: bytes | str | None, kind: EventKind, settings: Settings
) -> tuple[ConversationRequest | AnalysisTask, str]:
    """Raw message -> (typed event, payload hash), or the precise ``InputError``."""
    obj = parse_json_object(raw, max_bytes=settings.max_event_bytes)  # checks the text
    return decode_object(obj, kind, settings)


def decode_object(
    obj: dict[str, Any], kind: EventKind, settings: Settings
) -> tuple[ConversationRequest | AnalysisTask, str]:
    """``decode_event`` for an object ``parse_json_object`` returned: a caller that keeps
    the object too (the bridge stores it in the inbox) parses each message once."""
    event = _validate(_MODELS[kind], obj, context={"limits": limits_from(settings)})
    return event, payload_hash(obj)


def encode(model: BaseModel) -> bytes:
    """A model as compact UTF-8 JSON, the wire form of every Kafka value."""
    return model.model_dump_json(exclude_none=True).encode()
