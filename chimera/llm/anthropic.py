"""Anthropic Messages API through the `anthropic` SDK.

Structured output uses forced tool use: one tool whose ``input_schema`` is the
schema, and ``tool_choice`` naming it.  No sampling parameters: API version
2026-10-21 (the SDK's) refuses ``temperature`` and ``top_p`` (``LLMRequest`` does
too).  SDK retries are kept at 0-1: the SDK
would otherwise sleep whatever ``retry-after`` says, with no upper bound.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic

from chimera.errors import MalformedResponse, SafetyBlocked
from chimera.llm.base import completion
from chimera.llm.classify import error_for_status, transport_error
from chimera.llm.types import Completion, LLMRequest


class AnthropicProvider:
    name = "anthropic"

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        timeout_s: float,
        connect_timeout_s: float,
        max_retries: int,
    ) -> None:
        self._client = anthropic.Anthropic(
            api_key=api_key or "not-set",  # a local server needs none; the SDK insists
            base_url=base_url,
            timeout=anthropic.Timeout(timeout_s, connect=connect_timeout_s),
            max_retries=max_retries,
        )

    def close(self) -> None:
        self._client.close()

    def complete(self, request: LLMRequest) -> Completion:
        ids: dict[str, Any] = {"provider": self.name, "model": request.model}
        kwargs: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_output_tokens,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        }
        if request.system:
            kwargs["system"] = request.system
        if request.stop:
            kwargs["stop_sequences"] = list(request.stop)
        if request.json_schema is not None:
            kwargs["tools"] = [
                {
                    "name": request.schema_name,
                    "description": "Record the answer in this exact structure.",
                    "input_schema": request.json_schema,
                }
            ]
            kwargs["tool_choice"] = {"type": "tool", "name": request.schema_name}
        try:
            message = self._client.messages.create(**kwargs)
        except anthropic.APIStatusError as exc:
            raise error_for_status(
                exc.status_code,
                exc.message,
                headers=dict(exc.response.headers),
                body=exc.body,
                **ids,
            ) from exc
        except anthropic.APIConnectionError as exc:  # includes APITimeoutError
            raise transport_error(exc, **ids) from exc
        except (ValueError, anthropic.APIResponseValidationError) as exc:  # truncated JSON
            raise MalformedResponse(f"anthropic answered unreadable JSON: {exc}", **ids) from exc

        if message.stop_reason == "refusal":
            raise SafetyBlocked("anthropic refused the request (stop_reason=refusal)", **ids)
        usage = message.usage
        data: dict[str, Any] | None = None
        text = ""
        for block in message.content or []:
            if block.type == "tool_use" and block.name == request.schema_name:
                data = block.input if isinstance(block.input, dict) else None
                text = json.dumps(data)
            elif block.type == "text" and request.json_schema is None:
                text += block.text
        return completion(
            request,
            text=text,
            data=data,
            input_tokens=usage.input_tokens if usage else None,
            output_tokens=usage.output_tokens if usage else None,
            stop_reason=message.stop_reason,
            model=message.model,
        )
