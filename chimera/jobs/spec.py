"""What a job asks for: ``JobSpec``, and one topic of a job as it is stored."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from chimera.codec import validate_event
from chimera.models import Participant, TopicSpec
from chimera.models.conversation import ConversationLimits

#: A topic object's own fields; any other key is kept as the topic's metadata.
TOPIC_FIELDS = ("id", "title", "description")


def _limits(info: ValidationInfo) -> ConversationLimits:
    ctx = info.context
    limits = ctx.get("limits") if isinstance(ctx, dict) else None
    return limits if isinstance(limits, ConversationLimits) else ConversationLimits()


class JobSpec(BaseModel):
    """A dataset: who talks, how long, how many to keep.

    Validate with ``context={"limits": limits_from(settings)}``: participants take the
    configured default and must name configured models, turns the configured caps.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    participants: tuple[Participant, ...] = Field(default=None, validate_default=True)
    max_turns: int = Field(default=None, validate_default=True)
    min_turns: int = Field(default=None, validate_default=True)
    #: Accepted conversations wanted; None: one conversation per topic.
    target: int | None = Field(default=None, ge=1, le=10_000_000)
    #: Calls stop when spent + reserved would pass it (`chimera/jobs/budget.py`).
    budget_usd: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    #: A completed conversation counts as accepted from this quality score up.
    min_quality: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    priority: int = Field(default=0, ge=-1000, le=1000)

    @field_validator("name")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
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
        return v

    @field_validator("max_turns", mode="before")
    @classmethod
    def _default_max(cls, v: Any, info: ValidationInfo) -> Any:
        return _limits(info).max_turns if v is None else v

    @field_validator("max_turns")
    @classmethod
    def _check_max(cls, v: int, info: ValidationInfo) -> int:
        cap = _limits(info).max_turns
        if not 1 <= v <= cap:
            raise ValueError(f"must be between 1 and {cap}, got {v}")
        return v

    @field_validator("min_turns", mode="before")
    @classmethod
    def _default_min(cls, v: Any, info: ValidationInfo) -> Any:
        if v is not None:
            return v
        return min(_limits(info).min_turns, info.data.get("max_turns") or 1)

    @field_validator("min_turns")
    @classmethod
    def _check_min(cls, v: int, info: ValidationInfo) -> int:
        max_turns = info.data.get("max_turns")
        if v < 1:
            raise ValueError(f"must be at least 1, got {v}")
        if max_turns is not None and v > max_turns:
            raise ValueError(f"must not exceed max_turns ({max_turns}), got {v}")
        return v

    def stored(self) -> dict[str, Any]:
        """The spec as the ``jobs.spec`` column keeps it (and the job id hashes it)."""
        return self.model_dump(mode="json", exclude_none=True)


def parse_spec(obj: dict[str, Any], limits: ConversationLimits) -> JobSpec:
    """``obj`` as a ``JobSpec``; ``SchemaInvalid`` naming every bad field otherwise."""
    return validate_event(JobSpec, obj, context={"limits": limits})


def job_topic(obj: Any) -> dict[str, Any]:
    """A topic object as a job stores it: ``title``, ``id``, ``description`` checked as a
    conversation's topic, every other key kept under ``metadata``.  ValueError says why not."""
    if isinstance(obj, str):
        obj = {"title": obj}
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object or a string, got {type(obj).__name__}")
    own = {k: obj[k] for k in TOPIC_FIELDS if obj.get(k) is not None}
    extra = {k: v for k, v in obj.items() if k not in TOPIC_FIELDS}
    try:
        topic = TopicSpec.model_validate(own)
    except ValueError as exc:
        errors = getattr(exc, "errors", None)
        if callable(errors):
            parts = [
                f"{'.'.join(str(p) for p in e['loc']) or 'topic'}: "
                f"{e['msg'].removeprefix('Value error, ')}"
                for e in errors(include_url=False, include_input=False)
            ]
            raise ValueError("; ".join(parts)) from None
        raise
    out = topic.model_dump(mode="json", exclude_none=True)
    if extra:
        out["metadata"] = extra
    return out


def canonical(topic: dict[str, Any]) -> str:
    """One stored topic as the job id hashes it."""
    return json.dumps(topic, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
