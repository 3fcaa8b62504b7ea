"""Who takes part in a conversation."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Provider = Literal["anthropic", "google", "openai"]
PROVIDERS: tuple[Provider, ...] = ("anthropic", "google", "openai")


class Participant(BaseModel):
    """One LLM in a conversation: which provider, which model, which persona."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Provider
    model: str = Field(min_length=1, max_length=200, pattern=r"^\S+$")
    persona: str | None = Field(default=None, max_length=8_000)
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Speaker label in transcripts; defaults to the model name.",
    )

    @property
    def speaker(self) -> str:
        return self.name or self.model
