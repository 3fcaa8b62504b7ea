"""Gemini: ``POST /{v1,v1beta}/models/{model}:generateContent``, ``:streamGenerateContent``
(SSE with ``?alt=sse``, else a streamed JSON array) and ``:countTokens``.

The key comes in ``x-goog-api-key`` or ``?key=``; without one the real API answers 403
PERMISSION_DENIED, and so does this.  Request keys are accepted in camelCase and snake_case, as
the real (proto-JSON) API does.  ``generationConfig.responseSchema`` (OpenAPI subset, what
google-genai 3.4 sends for ``response_schema=PydanticModel``) and ``responseJsonSchema`` (what it
sends for ``response_json_schema=``) both require ``responseMimeType: application/json``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from llmsim.calls import ApiError, Call, Completion, ErrorKind, Latency, Prompt
from llmsim.dialogue import Turn
from llmsim.http_types import Reply, Request, Response, Stream, json_response
from llmsim.limits import Admission
from llmsim.provider import (
    Provider,
    Route,
    body_of,
    optional_int,
    paced,
    string_list,
    text_pieces,
)
from llmsim.schema import normalize

_PATH_RE = re.compile(
    r"^/(v1|v1beta|v1alpha)/models/([^/:]+):(generateContent|streamGenerateContent|countTokens)$"
)
_ERRORS = {
    ErrorKind.INVALID_REQUEST: (400, "INVALID_ARGUMENT", "API_KEY_INVALID"),
    ErrorKind.AUTHENTICATION: (401, "UNAUTHENTICATED", "ACCESS_TOKEN_TYPE_UNSUPPORTED"),
    ErrorKind.PERMISSION: (403, "PERMISSION_DENIED", "API_KEY_SERVICE_BLOCKED"),
    ErrorKind.NOT_FOUND: (404, "NOT_FOUND", "MODEL_NOT_FOUND"),
    ErrorKind.RATE_LIMIT: (429, "RESOURCE_EXHAUSTED", "RATE_LIMIT_EXCEEDED"),
    ErrorKind.SPEND_CAP: (429, "RESOURCE_EXHAUSTED", "BILLING_QUOTA_EXCEEDED"),
    ErrorKind.SERVER: (500, "INTERNAL", "INTERNAL"),
    ErrorKind.UNAVAILABLE: (503, "UNAVAILABLE", "UNAVAILABLE"),
    ErrorKind.OVERLOADED: (503, "UNAVAILABLE", "MODEL_OVERLOADED"),
}
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_FINISH = {"end_turn": "STOP", "stop_sequence": "STOP", "max_tokens": "MAX_TOKENS"}
_TYPE = "type.googleapis.com/google.rpc."
_DOMAIN = "generativelanguage.googleapis.com"


@dataclass(frozen=True)
class GeminiCall(Call):
    sse: bool = False  # ?alt=sse: server-sent events instead of a streamed JSON array


class GeminiAPI(Provider):
    name = "google"

    def route(self, method: str, path: str) -> Route | None:
        match = _PATH_RE.match(path)
        if method != "POST" or not match:
            return None
        version, model, action = match.groups()
        return Route(
            f"/{version}/models/{{model}}:{action}",
            "count" if action == "countTokens" else "generate",
            model,
        )

    def api_key(self, request: Request) -> str | None:
        return request.header("x-goog-api-key") or request.query.get("key") or None

    def missing_key(self) -> ApiError:
        return ApiError(
            ErrorKind.PERMISSION,
            "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API.",
        )

    def parse(self, request: Request, route: Route) -> GeminiCall:
        body = body_of(request)
        if route.action == "count" and isinstance(body.get("generateContentRequest"), dict):
            body = body["generateContentRequest"]
        config = _pick(body, "generationConfig", "generation_config") or {}
        if not isinstance(config, dict):
            raise _invalid("generation_config: must be an object")
        mime = _pick(config, "responseMimeType", "response_mime_type")
        schema = _pick(config, "responseSchema", "response_schema")
        json_schema = _pick(config, "responseJsonSchema", "response_json_schema")
        if schema is not None and json_schema is not None:
            raise _invalid(
                "generation_config: responseSchema and responseJsonSchema are mutually exclusive"
            )
        if (schema is not None or json_schema is not None) and mime != "application/json":
            raise _invalid(
                "generation_config.response_mime_type: must be application/json "
                "when a response schema is set"
            )
        chosen = json_schema if json_schema is not None else schema
        prompt = Prompt(
            system=_parts_text(
                _pick(body, "systemInstruction", "system_instruction"), "system_instruction"
            ),
            turns=_turns(body.get("contents")),
            max_tokens=optional_int(config, "maxOutputTokens", 1)
            or optional_int(config, "max_output_tokens", 1),
            stop=string_list(_pick(config, "stopSequences", "stop_sequences"), "stop_sequences"),
            schema=normalize(chosen) if isinstance(chosen, dict) else None,
            json_mode=mime == "application/json" and chosen is None,
            extra_input=json.dumps(chosen) if chosen is not None else "",
        )
        stream = route.endpoint.endswith(":streamGenerateContent")
        return GeminiCall(
            self.name,
            route.endpoint,
            route.model or "",
            prompt,
            stream,
            request.query.get("alt") == "sse",
        )

    # --- answers ----------------------------------------------------------------------------

    def answer(
        self,
        call: Call,
        completion: Completion,
        latency: Latency,
        request_id: str,
        admission: Admission,
    ) -> Reply:
        finish = _FINISH[completion.stop_reason]
        usage = _usage(completion.input_tokens, completion.output_tokens)
        if not call.stream:
            payload = _response(call, request_id, completion.text, finish, usage)
            return json_response(200, payload, delay_s=latency.total_s(completion.output_tokens))
        pieces = text_pieces(completion.text) or [""]
        chunks = []
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            chunk_usage = usage if last else _usage(completion.input_tokens, None)
            chunks.append(
                (_response(call, request_id, piece, finish if last else None, chunk_usage), piece)
            )
        return _stream(call, chunks, latency)

    def refusal(
        self, call: Call, completion: Completion, latency: Latency, request_id: str
    ) -> Reply:
        payload = {
            "promptFeedback": {
                "blockReason": "SAFETY",
                "safetyRatings": [
                    {
                        "category": "HARM_CATEGORY_DANGEROUS_CONTENT",
                        "probability": "HIGH",
                        "blocked": True,
                    }
                ],
            },
            "usageMetadata": _usage(completion.input_tokens, None),
            "modelVersion": call.model,
            "responseId": request_id,
        }
        if call.stream:
            return _stream(call, [(payload, "")], latency)
        return json_response(200, payload, delay_s=latency.ttft_s)

    def empty(self, call: Call, completion: Completion, latency: Latency, request_id: str) -> Reply:
        payload = _response(call, request_id, "", "STOP", None)
        if call.stream:
            return _stream(call, [(payload, "")], latency)
        return json_response(200, payload, delay_s=latency.ttft_s)

    def count(self, call: Call, input_tokens: int, request_id: str) -> Response:
        return json_response(200, {"totalTokens": input_tokens})

    def error(self, err: ApiError, request_id: str) -> Response:
        status, name, reason = _ERRORS[err.kind]
        status = err.status or status
        details: list[dict[str, Any]] = [
            {
                "@type": _TYPE + "ErrorInfo",
                "reason": reason,
                "domain": _DOMAIN,
                "metadata": {"service": _DOMAIN},
            }
        ]
        if err.kind in (ErrorKind.RATE_LIMIT, ErrorKind.SPEND_CAP):
            quota = (
                err.admission.exceeded if err.admission and err.admission.exceeded else "requests"
            )
            details.append(
                {
                    "@type": _TYPE + "QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": f"{_DOMAIN}/generate_content_{quota}",
                            "quotaId": f"GenerateContent{quota.title().replace('_', '')}"
                            "PerMinutePerProjectPerModel",
                        }
                    ],
                }
            )
        if err.retry_after_s is not None:
            details.append(
                {"@type": _TYPE + "RetryInfo", "retryDelay": _duration(err.retry_after_s)}
            )
        error = {
            "code": status,
            "message": err.message,
            "status": _STATUS_NAMES.get(status, name),
            "details": details,
        }
        return json_response(status, {"error": error})


def _duration(seconds: float) -> str:
    """A protobuf Duration in JSON: ``"7s"``, or ``"0.25s"`` for a fractional wait."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


def _pick(data: dict[str, Any], camel: str, snake: str) -> Any:
    return data.get(camel, data.get(snake))


def _invalid(message: str) -> ApiError:
    return ApiError(ErrorKind.INVALID_REQUEST, message)


def _parts_text(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, dict):
        raise _invalid(f"{where}: must be a Content object")
    parts = content.get("parts") or []
    if not isinstance(parts, list):
        raise _invalid(f"{where}.parts: must be a list")
    texts = []
    for part in parts:
        if not isinstance(part, dict):
            raise _invalid(f"{where}.parts: each part must be an object")
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        for key in ("functionCall", "function_call", "functionResponse", "function_response"):
            if key in part:
                texts.append(json.dumps(part[key]))
    return "\n".join(texts)


def _turns(contents: Any) -> tuple[Turn, ...]:
    if not isinstance(contents, list) or not contents:
        raise _invalid("* GenerateContentRequest.contents: contents is not specified")
    turns = []
    for i, content in enumerate(contents):
        if not isinstance(content, dict):
            raise _invalid(f"contents[{i}]: must be a Content object")
        role = content.get("role") or "user"
        if role not in ("user", "model"):
            raise _invalid(f"contents[{i}].role: Please use a valid role: user, model.")
        turns.append(
            Turn("user" if role == "user" else "assistant", _parts_text(content, f"contents[{i}]"))
        )
    return tuple(turns)


def _usage(input_tokens: int, output_tokens: int | None) -> dict[str, int]:
    usage = {
        "promptTokenCount": input_tokens,
        "totalTokenCount": input_tokens + (output_tokens or 0),
    }
    if output_tokens is not None:
        usage["candidatesTokenCount"] = output_tokens
    return usage


def _response(
    call: Call, request_id: str, text: str, finish: str | None, usage: dict[str, int] | None
) -> dict[str, Any]:
    candidate: dict[str, Any] = {
        "content": {"parts": [{"text": text}], "role": "model"},
        "index": 0,
    }
    if finish is not None:
        candidate["finishReason"] = finish
    payload: dict[str, Any] = {"candidates": [candidate]}
    if usage is not None:
        payload["usageMetadata"] = usage
    payload["modelVersion"] = call.model
    payload["responseId"] = request_id
    return payload


def _stream(call: Call, chunks: list[tuple[dict[str, Any], str]], latency: Latency) -> Stream:
    if isinstance(call, GeminiCall) and call.sse:
        events = [
            (f"data: {json.dumps(c, ensure_ascii=False)}\r\n\r\n".encode(), text)
            for c, text in chunks
        ]
        content_type = "text/event-stream"
    else:  # the default: one JSON array, written element by element
        events = [
            (
                ("[" if i == 0 else ",\r\n").encode() + json.dumps(c, ensure_ascii=False).encode(),
                text,
            )
            for i, (c, text) in enumerate(chunks)
        ]
        events.append((b"]", ""))
        content_type = "application/json; charset=UTF-8"
    return Stream(
        200, paced(events, latency), {"content-type": content_type}, delay_s=latency.ttft_s
    )
