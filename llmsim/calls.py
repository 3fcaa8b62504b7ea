"""What a provider request means once parsed: a :class:`Prompt`, its :class:`Completion`, and the
provider-neutral :class:`ApiError` that each wire format renders in its own shape."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Literal

from llmsim.dialogue import Turn
from llmsim.limits import Admission
from llmsim.schema import Schema

StopReason = Literal["end_turn", "max_tokens", "stop_sequence"]


@dataclass(frozen=True)
class Prompt:
    """A request reduced to what generation needs."""

    system: str
    turns: tuple[Turn, ...]
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    schema: Schema | None = None  # normalised JSON Schema of a structured answer
    json_mode: bool = False  # JSON wanted, no schema given
    extra_input: str = ""  # more text that counts as input (tool definitions, schemas)


@dataclass(frozen=True)
class Completion:
    text: str  # the answer; for structured output, its JSON text (cut if truncated)
    value: Any  # the structured value, None for dialogue or when the JSON was cut
    stop_reason: StopReason
    stop_sequence: str | None
    input_tokens: int
    output_tokens: int
    planted: str | None = None  # the defect planted in ``text`` (see :mod:`llmsim.defects`)

    @property
    def structured(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class Call:
    """A parsed provider request; providers subclass it to carry their own rendering options."""

    provider: str
    endpoint: str
    model: str
    prompt: Prompt
    stream: bool = False


@dataclass(frozen=True)
class Latency:
    ttft_s: float = 0.0
    per_token_s: float = 0.0

    def total_s(self, output_tokens: int) -> float:
        return self.ttft_s + self.per_token_s * output_tokens


class ErrorKind(enum.Enum):
    """Provider-neutral error causes; each provider maps them to its status, type and body."""

    INVALID_REQUEST = "invalid_request"
    AUTHENTICATION = "authentication"
    PERMISSION = "permission"
    NOT_FOUND = "not_found"
    RATE_LIMIT = "rate_limit"
    SPEND_CAP = "spend_cap"
    SERVER = "server"
    UNAVAILABLE = "unavailable"
    OVERLOADED = "overloaded"


class ApiError(Exception):
    """Raised while handling a call when it must be answered with an error."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        retry_after_s: float | None = None,
        status: int | None = None,
        admission: Admission | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after_s = retry_after_s
        self.status = status  # overrides the provider's usual status for ``kind``
        self.admission = admission  # set when the simulator's own rate limits refused the call
