"""The `analysis.tasks` input event and the synchronous analysis request."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chimera import defaults as d
from chimera.models.base import Identifier, InputEvent

AnalysisKind = Literal["summary", "argument", "implication_sentiment", "logic_bias"]
ANALYSIS_KINDS: tuple[AnalysisKind, ...] = (
    "summary",
    "argument",
    "implication_sentiment",
    "logic_bias",
)


class Segment(BaseModel):
    """One speaker's stretch of text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    speaker: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=d.MAX_TEXT_CHARS)


class AnalysisFields(BaseModel):
    """What to analyse: ``segments``, or the stored conversation ``context_id``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    context_id: Identifier
    # At most 16: the width of analysis_runs.language (longer would fail only after paying).
    language: str = Field(
        default="en", max_length=16, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
    )
    segments: tuple[Segment, ...] | None = Field(
        default=None, min_length=1, max_length=d.MAX_SEGMENTS
    )
    prompt_ids: dict[AnalysisKind, str] = Field(default_factory=dict)

    @field_validator("prompt_ids")
    @classmethod
    def _prompt_ids(cls, v: dict[str, str]) -> dict[str, str]:
        for kind, prompt_id in v.items():
            if not 1 <= len(prompt_id) <= 64 or not prompt_id.isprintable():
                raise ValueError(f"prompt id for {kind!r} must be 1-64 printable chars")
        return v

    @property
    def text_chars(self) -> int:
        return sum(len(s.text) for s in self.segments or ())


class AnalysisTask(InputEvent, AnalysisFields):
    """The `analysis.tasks` event: a request to analyse, with its event id."""


class AnalyzeRequest(AnalysisFields):
    """The body of ``POST /orchestrator/analyze``."""
