"""What the LLM client knows of a call before and around it: its input tokens (a
conservative estimate, for the limiter and budgets), its span attributes, text made
storable, and the budget guard's interface."""

from __future__ import annotations

import math
from typing import Any, Protocol

from chimera.llm.types import LLMRequest

#: Conservative estimate (providers count ~4 characters a token for English):
#: admitting on an underestimate could overrun the provider's own window.
CHARS_PER_TOKEN = 3
TOKENS_PER_MESSAGE = 8


def estimate_input_tokens(request: LLMRequest) -> int:
    schema = len(str(request.json_schema)) if request.json_schema else 0
    chars = request.text_chars() + schema
    return math.ceil(chars / CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE * (len(request.messages) + 1)


def storable(value: Any) -> Any:
    """``value`` without NUL characters, in every string it holds.

    A model can emit U+0000; Postgres text and JSONB cannot store it, and a turn or
    analysis holding one could never be stored (the write would fail on every retry).
    """
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value


def request_attributes(request: LLMRequest, attempt: int) -> dict[str, Any]:
    """A call's span attributes (OpenTelemetry's gen_ai names, then Chimera's)."""
    meta = request.meta
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": request.provider,
        "gen_ai.request.model": request.model,
        "gen_ai.request.max_tokens": request.max_output_tokens,
        "chimera.llm.attempt": attempt,
        "chimera.llm.task": meta.task,
        "chimera.prompt_ref": meta.prompt_ref,
        "chimera.owner_type": meta.owner_type,
        "chimera.owner_id": meta.owner_id,
        "chimera.step": meta.step,
    }
    return {k: v for k, v in attributes.items() if v is not None}


class SpendGuard(Protocol):
    """Holds calls to a budget: ``reserve`` before the call (its estimated input tokens
    and its ``max_output_tokens`` the worst case; raises to refuse it, None: nothing
    held), ``settle`` after it with what was billed (also after a failure, or when the
    call was never made: then 0 and 0)."""

    def reserve(self, request: LLMRequest, input_tokens: int) -> object | None: ...

    def settle(
        self, hold: object, input_tokens: int, output_tokens: int, request: LLMRequest
    ) -> None: ...
