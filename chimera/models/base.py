"""Shared pieces of the event models."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

#: Schema versions this build reads.  A message with another version is dead-lettered.
SUPPORTED_SCHEMA_VERSIONS: frozenset[int] = frozenset({1})

#: Producer-chosen, the unit of idempotency: 1-128 printable characters.
EventId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x20\x7f]+$"),
]

#: Ids of things we store (conversations, contexts, topics).
Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x20\x7f]+$"),
]

JsonObject = dict[str, Any]


class InputEvent(BaseModel):
    """Fields every input event carries."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)

    event_id: EventId
    # Strict: 2.0 or true would otherwise be coerced past the codec's version check.
    schema_version: int = Field(default=1, ge=1, strict=True)
