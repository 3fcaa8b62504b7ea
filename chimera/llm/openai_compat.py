"""Any OpenAI-compatible chat-completions server through the `openai` SDK
(OpenAI, Ollama, vLLM, llama.cpp).  The base URL ends in ``/v1``.

Structured output uses ``response_format`` with a JSON schema (not strict, so
servers that only approximate it still answer; we validate ourselves).
"""

from __future__ import annotations

from typing import Any

import openai

from chimera.errors import MalformedResponse, SafetyBlocked
from chimera.llm.base import completion
from chimera.llm.classify import error_for_status, transport_error
from chimera.llm.types import Completion, LLMRequest


class OpenAIProvider:
    name = "openai"

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        timeout_s: float,
        connect_timeout_s: float,
        max_retries: int,
        name: str = "openai",
    ) -> None:
        #: ``openai``, or ``openai:<endpoint>`` for a named endpoint (errors name it).
        self.name = name
        self._client = openai.OpenAI(
            api_key=api_key or "not-set",  # local servers ignore it; the SDK insists
            base_url=base_url,
            timeout=openai.Timeout(timeout_s, connect=connect_timeout_s),
            max_retries=max_retries,
        )

    def close(self) -> None:
        self._client.close()

    def complete(self, request: LLMRequest) -> Completion:
        ids: dict[str, Any] = {"provider": self.name, "model": request.model}
        messages: list[dict[str, str]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages += [{"role": m.role, "content": m.content} for m in request.messages]
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            "max_tokens": request.max_output_tokens,
        }
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if request.top_p is not None:
            kwargs["top_p"] = request.top_p
        if request.stop:
            kwargs["stop"] = list(request.stop)
        if request.json_schema is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": request.schema_name,
                    "schema": request.json_schema,
                    "strict": False,
                },
            }
        try:
            response = self._client.chat.completions.create(**kwargs)
        except openai.APIStatusError as exc:
            raise error_for_status(
                exc.status_code,
                exc.message,
                headers=dict(exc.response.headers),
                body=exc.body,
                **ids,
            ) from exc
        except openai.APIConnectionError as exc:  # includes APITimeoutError
            raise transport_error(exc, **ids) from exc
        except (ValueError, openai.APIResponseValidationError) as exc:
            raise MalformedResponse(f"openai answered unreadable JSON: {exc}", **ids) from exc

        if not response.choices:
            raise MalformedResponse("openai answered without choices", **ids)
        choice = response.choices[0]
        if choice.finish_reason == "content_filter":
            raise SafetyBlocked("openai filtered the answer (finish_reason=content_filter)", **ids)
        usage = response.usage
        return completion(
            request,
            text=choice.message.content if choice.message else None,
            data=None,
            input_tokens=usage.prompt_tokens if usage else None,
            output_tokens=usage.completion_tokens if usage else None,
            stop_reason=choice.finish_reason,
            model=response.model,
        )
