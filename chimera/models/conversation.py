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


def _limits(info: ValidationInfo) -> ConversationLimits:
    ctx = info.context
    limits = ctx.get("limits") if isinstance(ctx, dict) else None
    return limits if isinstance(limits, ConversationLimits) else ConversationLimits()


def _no_bool(v: Any) -> None:
    """A turn count is a number; pydantic would take ``true`` as 1."""
    if isinstance(v, bool):
        raise ValueError("Input should be a valid integer, not a boolean")


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

    @field_validator("max_turns", mode="before")
    @classmethod
    def _default_max_turns(cls, v: Any, info: ValidationInfo) -> Any:
        _no_bool(v)
        return _limits(info).max_turns if v is None else v

    @field_validator("max_turns")
    @classmethod
    def _check_max_turns(cls, v: int, info: ValidationInfo) -> int:
        cap = _limits(info).max_turns
        if not 1 <= v <= cap:
            raise ValueError(f"must be between 1 and {cap}, got {v}")
        return v

    @field_validator("min_turns", mode="before")
    @classmethod
    def _default_min_turns(cls, v: Any, info: ValidationInfo) -> Any:
        _no_bool(v)
        if v is not None:
            return v
        return min(_limits(info).min_turns, info.data.get("max_turns") or 1)

    @field_validator("min_turns")
    @classmethod
    def _check_min_turns(cls, v: int, info: ValidationInfo) -> int:
        max_turns = info.data.get("max_turns")
        if v < 1:
            raise ValueError(f"must be at least 1, got {v}")
        if max_turns is not None and v > max_turns:
            raise ValueError(f"must not exceed max_turns ({max_turns}), got {v}")
        return v

    @field_validator("participants", mode="before")
    @classmethod
    def _default_participants(cls, v: Any, info: ValidationInfo) -> Any:
        return _limits(info).default_participants if v is None else v

    @field_validator("participants")
    @classmethod
    def _check_participants(
        cls, v: tuple[Participant, ...], info: ValidationInfo
    ) -> tuple[Participant, ...]:
        cap = _limits(info).max_participants
        if not 2 <= len(v) <= cap:
            raise ValueError(f"must list 2 to {cap} participants, got {len(v)}")
        return distinct_speakers(v)

    @field_validator("metadata")
    @classmethod
    def _check_metadata(cls, v: JsonObject, info: ValidationInfo) -> JsonObject:
        """Metadata rides along into ``conversation.completed``, which must fit one Kafka
        record: bounded here, before any turn is paid for."""
        cap = _limits(info).max_metadata_bytes
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
