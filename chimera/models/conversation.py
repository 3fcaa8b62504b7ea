"""The `conversation.new` input event."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from chimera import defaults as d
from chimera.models.base import Identifier, InputEvent, JsonObject
from chimera.models.participants import ModelCatalog, Participant, distinct_speakers


@dataclass(frozen=True)
class ConversationLimits:
    """Setting-dependent defaults and caps, passed as the validation context.

    ``models``: the models a participant may name (``codec.limits_from`` always sets
    it); None checks none.
    """

    min_turns: int = d.MIN_CONVERSATION_TURNS
    max_turns: int = d.MAX_CONVERSATION_TURNS
    max_participants: int = d.MAX_PARTICIPANTS
    max_metadata_bytes: int = d.MAX_OUTPUT_METADATA_BYTES
    #: The most a participant's ``max_tokens`` may ask for (CHIMERA_TURN_MAX_OUTPUT_TOKENS).
    max_output_tokens: int = d.TURN_MAX_OUTPUT_TOKENS
    default_participants: tuple[Participant, ...] = field(
        default_factory=lambda: tuple(Participant.model_validate(p) for p in d.DEFAULT_PARTICIPANTS)
    )
    models: ModelCatalog | None = None


def limits_of(info: ValidationInfo) -> ConversationLimits:
    """The ``limits`` of the validation context; the defaults without them."""
    ctx = info.context
    limits = ctx.get("limits") if isinstance(ctx, dict) else None
    return limits if isinstance(limits, ConversationLimits) else ConversationLimits()


def _no_bool(v: Any) -> None:
    """A turn count is a number; pydantic would take ``true`` as 1."""
    if isinstance(v, bool):
        raise ValueError("Input should be a valid integer, not a boolean")


# The turn range and the participants of a conversation have one set of defaults and
# checks, wherever they are asked for (a request here, a job's spec in
# ``chimera.jobs.spec``): ``shape_default`` and ``shape_check``, pydantic field
# validators of the fields ``SHAPE_FIELDS``.  A model declares ``max_turns`` before
# ``min_turns``, which is checked against it.

#: The fields that ``shape_default`` and ``shape_check`` validate.
SHAPE_FIELDS = ("max_turns", "min_turns", "participants")


def shape_default(v: Any, info: ValidationInfo) -> Any:
    """An absent field of ``SHAPE_FIELDS``: the configured default (``min_turns`` at
    most ``max_turns``).  A turn count given as a boolean is refused."""
    if v is not None:
        if info.field_name != "participants":
            _no_bool(v)
        return v
    limits = limits_of(info)
    if info.field_name == "max_turns":
        return limits.max_turns
    if info.field_name == "min_turns":
        return min(limits.min_turns, info.data.get("max_turns") or 1)
    return limits.default_participants


def shape_check(v: Any, info: ValidationInfo) -> Any:
    """A field of ``SHAPE_FIELDS`` within the configured caps."""
    limits = limits_of(info)
    if info.field_name == "max_turns":
        if not 1 <= v <= limits.max_turns:
            raise ValueError(f"must be between 1 and {limits.max_turns}, got {v}")
    elif info.field_name == "min_turns":
        max_turns = info.data.get("max_turns")
        if v < 1:
            raise ValueError(f"must be at least 1, got {v}")
        if max_turns is not None and v > max_turns:
            raise ValueError(f"must not exceed max_turns ({max_turns}), got {v}")
    elif not 2 <= len(v) <= limits.max_participants:
        raise ValueError(f"must list 2 to {limits.max_participants} participants, got {len(v)}")
    return v


class TopicSpec(BaseModel):
    """What the conversation is about."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Identifier | None = None
    title: str = Field(min_length=1, max_length=500)
    description: str | None = Field(default=None, max_length=10_000)

    @field_validator("title")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v


class ConversationRequest(InputEvent):
    """A request to synthesise one conversation.

    Validate with ``context={"limits": ConversationLimits(...)}`` to apply the
    configured defaults and caps; after validation every field is concrete
    (an absent or null ``max_turns``, ``min_turns`` or ``participants`` takes the
    configured default).
    """

    event_type: Literal["conversation.requested"] | None = None
    topic: TopicSpec
    # Declared before min_turns: min_turns is checked against it.
    max_turns: int = Field(default=None, validate_default=True)
    min_turns: int = Field(default=None, validate_default=True)
    participants: tuple[Participant, ...] = Field(default=None, validate_default=True)
    metadata: JsonObject = Field(default_factory=dict)
    #: Admission order while the running conversations are at their cap: higher first,
    #: then arrival (``CHIMERA_MAX_RUNNING_CONVERSATIONS``).
    priority: int = Field(default=0, ge=-1_000, le=1_000)
    #: The job that asked for this conversation (``chimera jobs``), if any.
    job_id: str | None = Field(default=None, max_length=64)

    @field_validator("topic", mode="before")
    @classmethod
    def _topic_from_string(cls, v: Any) -> Any:
        return {"title": v} if isinstance(v, str) else v

    _shape_default = field_validator(*SHAPE_FIELDS, mode="before")(shape_default)
    _shape_check = field_validator(*SHAPE_FIELDS)(shape_check)

    @field_validator("participants")
    @classmethod
    def _distinct_speakers(cls, v: tuple[Participant, ...]) -> tuple[Participant, ...]:
        return distinct_speakers(v)

    @field_validator("metadata")
    @classmethod
    def _check_metadata(cls, v: JsonObject, info: ValidationInfo) -> JsonObject:
        """Metadata rides along into ``conversation.completed``, which must fit one Kafka
        record: bounded here, before any turn is paid for."""
        cap = limits_of(info).max_metadata_bytes
        try:
            text = json.dumps(v, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except ValueError:
            raise ValueError("must hold finite numbers only (no NaN or Infinity)") from None
        except TypeError:
            raise ValueError("must hold JSON values only") from None
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > cap:
            raise ValueError(f"must be at most {cap} bytes as JSON, got {size}")
        return v
