"""Gemini through the `google-genai` SDK (not the end-of-life google-generativeai).

Structured output uses ``response_mime_type="application/json"`` with
``response_json_schema``.  The SDK never retries unless told to, and a timeout
surfaces as a raw httpx2 exception: both handled here.
"""

from __future__ import annotations

from typing import Any

import httpx2
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from chimera.errors import MalformedResponse, SafetyBlocked
from chimera.llm.base import completion
from chimera.llm.classify import error_for_status, transport_error
from chimera.llm.types import Completion, LLMRequest

_BLOCKED_FINISH = {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION"}


class GoogleProvider:
    name = "google"

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        timeout_s: float,
        connect_timeout_s: float,
        max_retries: int,
    ) -> None:
        del connect_timeout_s  # google-genai takes one overall timeout
        retry = types.HttpRetryOptions(attempts=max_retries + 1) if max_retries else None
        # Keep the reference: a collected genai.Client closes its HTTP client.
        self._client = genai.Client(
            api_key=api_key or "not-set",  # the SDK builds no path without a key
            http_options=types.HttpOptions(
                base_url=base_url,
                api_version="v1beta",
                timeout=int(timeout_s * 1000),
                retry_options=retry,
            ),
        )

    def close(self) -> None:
        self._client.close()

    def complete(self, request: LLMRequest) -> Completion:
        ids: dict[str, Any] = {"provider": self.name, "model": request.model}
        config: dict[str, Any] = {
            "max_output_tokens": request.max_output_tokens,
            # No tools are passed, so there is nothing to call automatically: skip the
            # SDK's function-calling loop (a deep copy of the config and a log line per call).
            "automatic_function_calling": types.AutomaticFunctionCallingConfig(disable=True),
        }
        if request.system:
            config["system_instruction"] = request.system
        if request.temperature is not None:
            config["temperature"] = request.temperature
        if request.top_p is not None:
            config["top_p"] = request.top_p
        if request.stop:
            config["stop_sequences"] = list(request.stop)
        if request.json_schema is not None:
            config["response_mime_type"] = "application/json"
            config["response_json_schema"] = request.json_schema
        contents = [
            types.Content(
                role="user" if m.role == "user" else "model",
                parts=[types.Part(text=m.content)],
            )
            for m in request.messages
        ]
        try:
            response = self._client.models.generate_content(
                model=request.model,
                contents=contents,
                config=types.GenerateContentConfig(**config),
            )
        except genai_errors.APIError as exc:
            headers = dict(exc.response.headers) if exc.response is not None else {}
            raise error_for_status(
                exc.code, exc.message or str(exc), headers=headers, body=exc.details, **ids
            ) from exc
        except httpx2.TransportError as exc:
            raise transport_error(exc, **ids) from exc
        except ValueError as exc:  # truncated or non-JSON body
            raise MalformedResponse(f"google answered unreadable JSON: {exc}", **ids) from exc

        feedback = response.prompt_feedback
        if not response.candidates:
            if feedback is not None and feedback.block_reason:
                raise SafetyBlocked(f"google blocked the prompt ({feedback.block_reason})", **ids)
            raise MalformedResponse("google answered without candidates", **ids)
        candidate = response.candidates[0]
        finish = str(candidate.finish_reason.value) if candidate.finish_reason else None
        if finish in _BLOCKED_FINISH:
            raise SafetyBlocked(f"google stopped the answer (finishReason={finish})", **ids)
        parts = candidate.content.parts if candidate.content and candidate.content.parts else []
        text = "".join(p.text or "" for p in parts)
        usage = response.usage_metadata
        return completion(
            request,
            text=text,
            data=None,
            input_tokens=usage.prompt_token_count if usage else None,
            output_tokens=(usage.candidates_token_count or 0) if usage else None,
            stop_reason=finish,
            model=response.model_version,
        )
