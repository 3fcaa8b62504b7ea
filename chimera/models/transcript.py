"""A conversation's transcript: the unit quality scoring, export and events share."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from chimera.models.participants import Route


class TranscriptTurn(BaseModel):
    """One turn: who spoke (and through which provider, or named OpenAI-compatible endpoint,
    and model), what they said, what it cost."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    turn_index: int = Field(ge=0)
    speaker: str
    #: The speaker's route: ``anthropic``, ``google``, ``openai``, or ``openai:<endpoint>``.
    provider: Route
    model: str
    content: str
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    latency_ms: float = Field(default=0.0, ge=0)
