"""Who takes part in a conversation, and which models may take part at all."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

Provider = Literal["anthropic", "google", "openai"]
PROVIDERS: tuple[Provider, ...] = ("anthropic", "google", "openai")
#: The metric label of a provider or model that is not configured.
OTHER: Final = "other"
#: The longest speaker label a participant may carry.
NAME_MAX_CHARS: Final = 100
#: Providers whose API refuses ``temperature`` and ``top_p``, and why.
NO_SAMPLING: dict[str, str] = {
    "anthropic": (
        "anthropic takes no temperature or top_p (API version 2026-10-21 refuses them); "
        "max_tokens applies"
    ),
}


def route_of(provider: str, endpoint: str | None) -> str:
    """Where a call goes: the provider, or ``openai:<endpoint>`` for a named OpenAI-compatible
    endpoint (CHIMERA_OPENAI_ENDPOINTS).  Limits, breakers, the catalog, prices, accounting and
    metric labels key calls by it, so two endpoints share none of them."""
    return provider if endpoint is None else f"{provider}:{endpoint}"


#: A value of :func:`route_of`: a provider, or ``openai:<endpoint>`` (an endpoint name is
#: 1 to 25 characters, so a route fits the 32 of ``conversation_turns.provider``).
Route = Annotated[
    str,
    StringConstraints(pattern=r"^(anthropic|google|openai|openai:[a-z0-9][a-z0-9_-]{0,24})$"),
]


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

    def endpoints(self) -> list[str]:
        """The names of the configured OpenAI-compatible endpoints."""
        return sorted(r.removeprefix("openai:") for r in self.models if r.startswith("openai:"))

    def labels(self, provider: str, model: str) -> tuple[str, str]:
        """(provider, model) as metric labels: configured values only, else ``other``
        (``provider`` may be a route, ``openai:<endpoint>``)."""
        if provider not in PROVIDERS and provider not in self.models:
            return OTHER, OTHER
        return provider, model if self.allows(provider, model) else OTHER


def _output_cap(info: ValidationInfo) -> int | None:
    """The configured cap on a turn's output tokens (``ConversationLimits``), if any."""
    limits = info.context.get("limits") if isinstance(info.context, dict) else None
    cap = getattr(limits, "max_output_tokens", None)
    return cap if isinstance(cap, int) else None


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
    #: Before ``model``: the model is checked against the endpoint's catalog.
    endpoint: str | None = Field(
        default=None,
        min_length=1,
        max_length=25,
        description=(
            "With provider openai: the named OpenAI-compatible endpoint "
            "(CHIMERA_OPENAI_ENDPOINTS) to call instead of OPENAI_BASE_URL."
        ),
    )
    model: str = Field(min_length=1, max_length=200, pattern=r"^\S+$")
    persona: str | None = Field(default=None, max_length=8_000)
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=NAME_MAX_CHARS,
        description=(
            "Speaker label in transcripts; defaults to the model name, made unique in its "
            "conversation (a second participant of the same model is 'model (2)')."
        ),
    )

    temperature: float | None = Field(
        default=None, ge=0, le=2, description="Sampling temperature, 0 to 2; the model's default."
    )
    top_p: float | None = Field(
        default=None, gt=0, le=1, description="Nucleus sampling, above 0 up to 1."
    )
    max_tokens: int | None = Field(
        default=None,
        ge=1,
        description="Most output tokens a turn may take; CHIMERA_TURN_MAX_OUTPUT_TOKENS at most.",
    )

    @field_validator("temperature", "top_p", mode="before")
    @classmethod
    def _a_number(cls, v: object) -> object:
        if isinstance(v, bool):  # pydantic would take ``true`` as 1.0
            raise ValueError("Input should be a number, not a boolean")
        return v

    @field_validator("temperature", "top_p")
    @classmethod
    def _taken_by_the_provider(cls, v: float | None, info: ValidationInfo) -> float | None:
        provider = info.data.get("provider")  # absent when the provider itself is invalid
        if v is not None and provider in NO_SAMPLING:
            raise ValueError(NO_SAMPLING[provider])
        return v

    @field_validator("max_tokens", mode="before")
    @classmethod
    def _an_integer(cls, v: object) -> object:
        if isinstance(v, bool):
            raise ValueError("Input should be a valid integer, not a boolean")
        return v

    @field_validator("max_tokens")
    @classmethod
    def _within_cap(cls, v: int | None, info: ValidationInfo) -> int | None:
        cap = _output_cap(info)
        if v is not None and cap is not None and v > cap:
            raise ValueError(f"must be at most {cap} (CHIMERA_TURN_MAX_OUTPUT_TOKENS), got {v}")
        return v

    @field_validator("endpoint")
    @classmethod
    def _known_endpoint(cls, v: str | None, info: ValidationInfo) -> str | None:
        provider = info.data.get("provider")  # absent when the provider itself is invalid
        if v is None or provider is None:
            return v
        if provider != "openai":
            raise ValueError(f"an endpoint is for provider openai only, not {provider}")
        catalog = _catalog(info)
        if catalog is not None and route_of(provider, v) not in catalog.models:
            known = ", ".join(catalog.endpoints()) or "none"
            raise ValueError(
                f"endpoint {json.dumps(v)} is not configured (configured: {known}; "
                "see CHIMERA_OPENAI_ENDPOINTS)"
            )
        return v

    @field_validator("model")
    @classmethod
    def _configured(cls, v: str, info: ValidationInfo) -> str:
        catalog = _catalog(info)
        provider = info.data.get("provider")  # absent when the provider itself is invalid
        # "endpoint" is absent when it is invalid: its error says enough.
        if catalog is not None and provider is not None and "endpoint" in info.data:
            catalog.check(route_of(provider, info.data["endpoint"]), v)
        return v

    @property
    def speaker(self) -> str:
        return self.name or self.model

    @property
    def route(self) -> str:
        """``provider``, or ``openai:<endpoint>``: see :func:`route_of`."""
        return route_of(self.provider, self.endpoint)


def distinct_speakers(participants: tuple[Participant, ...]) -> tuple[Participant, ...]:
    """``participants`` with a speaker label unique to each: a conversation's transcript,
    its quality score and its analyses tell speakers apart by label.

    An explicit ``name`` used twice is a validation error naming the second one
    (``N.name``, under the caller's field). A participant without a name keeps its model
    as label when that is free, else it is named ``model (k)`` with the smallest free k.
    """
    taken: set[str] = set()
    errors: list[InitErrorDetails] = []
    for i, p in enumerate(participants):
        if p.name is None:
            continue
        if p.name in taken:
            first = next(j for j, q in enumerate(participants) if q.name == p.name)
            error = PydanticCustomError(
                "duplicate_name",
                "name {name} is already participant {first}'s; speakers must differ",
                {"name": json.dumps(p.name), "first": first},
            )
            errors.append(InitErrorDetails(type=error, loc=(i, "name"), input=p.name))
        taken.add(p.name)
    if errors:
        raise ValidationError.from_exception_data("participants", errors)
    labelled: list[Participant] = []
    for p in participants:
        if p.name is None:
            label = _free_label(p.model, taken)
            taken.add(label)
            if label != p.model:
                labelled.append(p.model_copy(update={"name": label}))
                continue
        labelled.append(p)
    return tuple(labelled)


def _free_label(model: str, taken: set[str]) -> str:
    """``model`` if no one speaks under it yet, else ``model (k)`` for the smallest free k."""
    if model not in taken:
        return model
    k = 2
    while True:
        suffix = f" ({k})"
        label = model[: NAME_MAX_CHARS - len(suffix)] + suffix
        if label not in taken:
            return label
        k += 1
