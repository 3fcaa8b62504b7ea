"""One request/response model for every provider."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chimera.models.participants import NO_SAMPLING, Provider, route_of

Role = Literal["user", "assistant"]


class Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Role
    content: str


class CallMeta(BaseModel):
    """Who made the call and why: goes into `llm_calls` and metrics."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task: str = "adhoc"  # e.g. "turn", "summary"
    owner_type: Literal["conversation", "analysis_run"] | None = None
    owner_id: str | None = None
    step: str | None = None  # e.g. turn index, analysis name
    prompt_ref: str | None = None  # e.g. "summary.v1"
    #: The job whose budget the call is held to (the client's spend guard), if any.
    job_id: str | None = None


class LLMRequest(BaseModel):
    """A provider-neutral completion request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Provider
    #: With ``openai``: a named OpenAI-compatible endpoint (CHIMERA_OPENAI_ENDPOINTS).
    endpoint: str | None = None
    model: str = Field(min_length=1)
    system: str | None = None
    messages: tuple[Message, ...] = Field(min_length=1)
    max_output_tokens: int = Field(default=1_024, ge=1, le=128_000)
    #: Sampling; None leaves the provider's default.
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    #: JSON schema the answer must satisfy (structured output), and its name.
    json_schema: dict[str, Any] | None = None
    schema_name: str = Field(default="output", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    stop: tuple[str, ...] = ()
    meta: CallMeta = CallMeta()

    @model_validator(mode="after")
    def _sampling_the_provider_takes(self) -> LLMRequest:
        if self.provider in NO_SAMPLING and (self.temperature, self.top_p) != (None, None):
            raise ValueError(NO_SAMPLING[self.provider])
        return self

    @property
    def route(self) -> str:
        """``provider`` or ``openai:<endpoint>``: what limits, breakers, prices and
        accounting key the call by."""
        return route_of(self.provider, self.endpoint)

    @property
    def key(self) -> str:
        """``route/model``: the breaker's unit, and how messages name the call."""
        return f"{self.route}/{self.model}"

    def text_chars(self) -> int:
        return len(self.system or "") + sum(len(m.content) for m in self.messages)


class Usage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)


class Completion(BaseModel):
    """What a provider adapter returns: validated, never empty."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    #: The parsed JSON object of a structured answer.
    data: dict[str, Any] | None = None
    usage: Usage
    stop_reason: str
    model: str


class LLMResponse(BaseModel):
    """What callers get: the completion plus what it cost."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Provider
    model: str
    text: str
    data: dict[str, Any] | None
    usage: Usage
    stop_reason: str
    latency_ms: float
    cost_usd: float
    attempt: int
