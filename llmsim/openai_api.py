"""OpenAI-compatible chat completions: ``POST /v1/chat/completions``, plain and streamed.

``response_format`` may be ``{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}``
(what ``client.chat.completions.parse(response_format=Model)`` sends) or
``{"type": "json_object"}``.
A stream is ``data: {chunk}`` lines ending with ``data: [DONE]``; with
``stream_options.include_usage`` the last chunk before it carries the usage and no choices.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from llmsim.calls import ApiError, Call, Completion, ErrorKind, Latency, Prompt
from llmsim.dialogue import Turn
from llmsim.http_types import Reply, Request, Response, Stream, json_response, sse
from llmsim.limits import Admission
from llmsim.provider import (
    Provider,
    Route,
    bearer,
    body_of,
    optional_int,
    paced,
    require_str,
    retry_after,
    string_list,
    text_pieces,
)
from llmsim.schema import normalize

_ERRORS = {
    ErrorKind.INVALID_REQUEST: (400, "invalid_request_error", None),
    ErrorKind.AUTHENTICATION: (401, "invalid_request_error", "invalid_api_key"),
    ErrorKind.PERMISSION: (403, "invalid_request_error", "permission_denied"),
    ErrorKind.NOT_FOUND: (404, "invalid_request_error", "model_not_found"),
    ErrorKind.RATE_LIMIT: (429, "requests", "rate_limit_exceeded"),
    ErrorKind.SPEND_CAP: (429, "insufficient_quota", "insufficient_quota"),
    ErrorKind.SERVER: (500, "server_error", None),
    ErrorKind.UNAVAILABLE: (503, "server_error", None),
    ErrorKind.OVERLOADED: (503, "server_error", "overloaded"),
}
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}


@dataclass(frozen=True)
class OpenAICall(Call):
    include_usage: bool = False


class OpenAIAPI(Provider):
    name = "openai"

    def route(self, method: str, path: str) -> Route | None:
        if method == "POST" and path == "/v1/chat/completions":
            return Route("/v1/chat/completions", "generate")
        return None

    def api_key(self, request: Request) -> str | None:
        return bearer(request)

    def missing_key(self) -> ApiError:
        return ApiError(
            ErrorKind.AUTHENTICATION,
            "You didn't provide an API key. You need to provide your API key in an Authorization "
            "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )

    def parse(self, request: Request, route: Route) -> OpenAICall:
        body = body_of(request)
        model = require_str(body, "model")
        system, turns = _messages(body.get("messages"))
        n = body.get("n")
        if n not in (None, 1):
            raise ApiError(ErrorKind.INVALID_REQUEST, "n: the simulator produces one choice (n=1)")
        stop = string_list(body.get("stop"), "stop")
        if len(stop) > 4:
            raise ApiError(ErrorKind.INVALID_REQUEST, "stop: at most 4 stop sequences")
        schema, json_mode = _response_format(body.get("response_format"))
        max_tokens = optional_int(body, "max_completion_tokens", 1)
        if max_tokens is None:
            max_tokens = optional_int(body, "max_tokens", 1)
        options = body.get("stream_options") or {}
        prompt = Prompt(
            system=system,
            turns=turns,
            max_tokens=max_tokens,
            stop=stop,
            schema=schema,
            json_mode=json_mode,
            extra_input=json.dumps(body["response_format"]) if schema is not None else "",
        )
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        return OpenAICall(
            self.name, route.endpoint, model, prompt, bool(body.get("stream")), include_usage
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
        headers = {"x-request-id": request_id, **_limit_headers(admission)}
        if not call.stream:
            payload = _completion(call, request_id, completion.text, finish, usage)
            return json_response(
                200, payload, headers, delay_s=latency.total_s(completion.output_tokens)
            )
        pieces = text_pieces(completion.text)
        return _stream(
            call, request_id, pieces, finish=finish, usage=usage, latency=latency, headers=headers
        )

    def refusal(
        self, call: Call, completion: Completion, latency: Latency, request_id: str
    ) -> Reply:
        usage = _usage(completion.input_tokens, 0)
        headers = {"x-request-id": request_id}
        if not call.stream:
            payload = _completion(call, request_id, "", "content_filter", usage)
            return json_response(200, payload, headers, delay_s=latency.ttft_s)
        return _stream(
            call,
            request_id,
            [],
            finish="content_filter",
            usage=usage,
            latency=latency,
            headers=headers,
        )

    def empty(self, call: Call, completion: Completion, latency: Latency, request_id: str) -> Reply:
        headers = {"x-request-id": request_id}
        if not call.stream:
            payload = _completion(call, request_id, "", "stop", None)
            return json_response(200, payload, headers, delay_s=latency.ttft_s)
        return _stream(
            call, request_id, [], finish="stop", usage=None, latency=latency, headers=headers
        )

    def count(self, call: Call, input_tokens: int, request_id: str) -> Response:
        raise NotImplementedError("the chat completions API has no token-counting endpoint")

    def error(self, err: ApiError, request_id: str) -> Response:
        status, kind, code = _ERRORS[err.kind]
        if (
            err.kind is ErrorKind.RATE_LIMIT
            and err.admission is not None
            and err.admission.exceeded
        ):
            kind = "requests" if err.admission.exceeded == "requests" else "tokens"
        headers = {"x-request-id": request_id}
        if err.retry_after_s is not None:
            headers["retry-after"] = retry_after(err.retry_after_s)
        if err.admission is not None:
            headers |= _limit_headers(err.admission)
        error = {"message": err.message, "type": kind, "param": None, "code": code}
        return json_response(err.status or status, {"error": error}, headers)


def _text(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict):
                raise ApiError(
                    ErrorKind.INVALID_REQUEST, f"{where}: each content part must be an object"
                )
            if part.get("type") == "text":
                parts.append(str(part.get("text", "")))
        return "\n".join(parts)
    raise ApiError(
        ErrorKind.INVALID_REQUEST, f"{where}: must be a string or a list of content parts"
    )


def _messages(messages: Any) -> tuple[str, tuple[Turn, ...]]:
    if not isinstance(messages, list) or not messages:
        raise ApiError(ErrorKind.INVALID_REQUEST, "messages: must be a non-empty array")
    system: list[str] = []
    turns: list[Turn] = []
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        text = _text(
            message.get("content") if isinstance(message, dict) else None, f"messages[{i}].content"
        )
        if role in ("system", "developer"):
            system.append(text)
        elif role in ("user", "tool", "function"):
            turns.append(Turn("user", text))
        elif role == "assistant":
            turns.append(Turn("assistant", text))
        else:
            raise ApiError(
                ErrorKind.INVALID_REQUEST,
                f"messages[{i}].role: must be one of "
                "'system', 'developer', 'user', 'assistant', 'tool'",
            )
    return "\n".join(system), tuple(turns)


def _response_format(value: Any) -> tuple[dict[str, Any] | None, bool]:
    if value is None:
        return None, False
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return None, False
    if kind == "json_object":
        return None, True
    if kind == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise ApiError(
                ErrorKind.INVALID_REQUEST, "response_format.json_schema.name: Field required"
            )
        schema = spec.get("schema", {})
        if not isinstance(schema, dict):
            raise ApiError(
                ErrorKind.INVALID_REQUEST, "response_format.json_schema.schema: must be an object"
            )
        normalized: dict[str, Any] = normalize(schema)
        return normalized, False
    raise ApiError(
        ErrorKind.INVALID_REQUEST,
        "response_format.type: must be one of 'text', 'json_object', 'json_schema'",
    )


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


def _completion(
    call: Call, request_id: str, content: str, finish: str, usage: dict[str, int] | None
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": f"chatcmpl-{request_id[8:]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": call.model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": content,
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "system_fingerprint": "fp_llmsim",
    }
    if usage is not None:
        payload["usage"] = usage
    return payload


def _stream(
    call: Call,
    request_id: str,
    pieces: list[str],
    *,
    finish: str,
    usage: dict[str, int] | None,
    latency: Latency,
    headers: dict[str, str],
) -> Stream:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {
            "id": f"chatcmpl-{request_id[8:]}",
            "object": "chat.completion.chunk",
            "created": created,
            "model": call.model,
            "system_fingerprint": "fp_llmsim",
            "choices": [choice],
        }

    events = [(sse(chunk({"role": "assistant", "content": "", "refusal": None}, None)), "")]
    events += [(sse(chunk({"content": piece}, None)), piece) for piece in pieces]
    events.append((sse(chunk({}, finish)), ""))
    if isinstance(call, OpenAICall) and call.include_usage and usage is not None:
        events.append((sse({**chunk({}, None), "choices": [], "usage": usage}), ""))
    events.append((sse("[DONE]"), ""))
    stream_headers = {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        **headers,
    }
    return Stream(200, paced(events, latency), stream_headers, delay_s=latency.ttft_s)


def _limit_headers(admission: Admission) -> dict[str, str]:
    headers = {}
    for quota in admission.quotas:
        suffix = (
            "requests"
            if quota.name == "requests"
            else "tokens"
            if quota.name == "input_tokens"
            else None
        )
        if suffix is None:
            continue
        headers[f"x-ratelimit-limit-{suffix}"] = str(quota.limit)
        headers[f"x-ratelimit-remaining-{suffix}"] = str(quota.remaining)
        headers[f"x-ratelimit-reset-{suffix}"] = f"{quota.reset_s:.0f}s"
    return headers
