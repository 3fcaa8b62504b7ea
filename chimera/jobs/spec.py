"""What a job asks for: ``JobSpec``, and one topic of a job as it is stored."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chimera.codec import validate_event
from chimera.models import Participant, TopicSpec
from chimera.models.conversation import SHAPE_FIELDS, ConversationLimits, shape_check, shape_default

#: A topic object's own fields; any other key is kept as the topic's metadata.
TOPIC_FIELDS = ("id", "title", "description")


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
    #: The quality score a conversation must reach to be accepted (finalise's threshold).
    min_quality: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    priority: int = Field(default=0, ge=-1000, le=1000)

    @field_validator("name")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v

    # The same defaults and checks as a conversation's (``ConversationRequest``).
    _shape_default = field_validator(*SHAPE_FIELDS, mode="before")(shape_default)
    _shape_check = field_validator(*SHAPE_FIELDS)(shape_check)

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
