"""Who takes part in a conversation, and which models may take part at all."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

Provider = Literal["anthropic", "google", "openai"]
PROVIDERS: tuple[Provider, ...] = ("anthropic", "google", "openai")
#: The metric label of a provider or model that is not configured.
OTHER: Final = "other"


@dataclass(frozen=True)
class ModelCatalog:
    """The models each provider may be asked for (``chimera.llm.catalog`` computes it).

    An event naming any other model is refused, and a metric never carries another
    model's name: a model string is a new limiter window, a new price (or none) and a
    new metric series, so only the operator chooses them.
    """

    models: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def allows(self, provider: str, model: str) -> bool:
        return model in self.models.get(provider, frozenset())

    def check(self, provider: str, model: str) -> None:
        """Raise ValueError naming the allowed models unless ``provider`` may run ``model``."""
        if self.allows(provider, model):
            return
        allowed = sorted(self.models.get(provider, ()))
        listed = ", ".join(allowed) if allowed else "none; see CHIMERA_LLM_MODELS"
        # json.dumps escapes control and non-ASCII characters: the name is the author's.
        name = json.dumps(model)
        raise ValueError(f"model {name} is not configured for {provider} (allowed: {listed})")

    def labels(self, provider: str, model: str) -> tuple[str, str]:
        """(provider, model) as metric labels: configured values only, else ``other``."""
        if provider not in PROVIDERS:
            return OTHER, OTHER
        return provider, model if self.allows(provider, model) else OTHER


def _catalog(info: ValidationInfo) -> ModelCatalog | None:
    """The catalog of the validation context (``ConversationLimits.models``), if any."""
    limits = info.context.get("limits") if isinstance(info.context, dict) else None
    catalog = getattr(limits, "models", None)
    return catalog if isinstance(catalog, ModelCatalog) else None


class Participant(BaseModel):
    """One LLM in a conversation: which provider, which model, which persona.

    Validated with a context whose limits carry a ``ModelCatalog``, the model must be
    one of it (an event's participants); without one (the settings' own), any model.
    """

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

    @field_validator("model")
    @classmethod
    def _configured(cls, v: str, info: ValidationInfo) -> str:
        catalog = _catalog(info)
        provider = info.data.get("provider")  # absent when the provider itself is invalid
        if catalog is not None and provider is not None:
            catalog.check(provider, v)
        return v

    @property
    def speaker(self) -> str:
        return self.name or self.model
