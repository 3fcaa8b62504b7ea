"""The provider protocol and what every adapter shares."""

from __future__ import annotations

import json
from typing import Any, Protocol

from chimera.errors import MalformedResponse
from chimera.llm.types import Completion, LLMRequest, Usage


class Provider(Protocol):
    """A provider adapter: one SDK call, translated to and from our model.

    ``complete`` returns a validated ``Completion`` or raises an ``LLMError``;
    SDK exceptions never escape it.  It does not retry, wait or account: the
    ``LLMClient`` around it does.
    """

    name: str

    def complete(self, request: LLMRequest) -> Completion: ...

    def close(self) -> None: ...


def parse_json_object(text: str) -> dict[str, Any] | None:
    """The JSON object in ``text`` (tolerating a Markdown fence), or None."""
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.strip("`")
        stripped = stripped.removeprefix("json").strip()
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def completion(
    request: LLMRequest,
    *,
    text: str | None,
    data: dict[str, Any] | None,
    input_tokens: int | None,
    output_tokens: int | None,
    stop_reason: str | None,
    model: str | None,
) -> Completion:
    """Build a ``Completion``, refusing empty content or missing usage."""
    ids: dict[str, Any] = {"provider": request.provider, "model": request.model}
    if input_tokens is None or output_tokens is None:
        raise MalformedResponse(f"{request.provider} answered without token usage", **ids)
    if not text or not text.strip():
        raise MalformedResponse(f"{request.provider} answered with empty content", **ids)
    if request.json_schema is not None and data is None:
        data = parse_json_object(text)
    return Completion(
        text=text,
        data=data,
        usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
        stop_reason=stop_reason or "unknown",
        model=model or request.model,
    )
