"""Anthropic Messages: ``POST /v1/messages`` (plain and streamed) and ``/v1/messages/count_tokens``.

Validation follows the real API: a key in ``x-api-key`` or ``Authorization: Bearer``, an
``anthropic-version`` header, ``model`` and ``max_tokens`` present, roles alternating from
``user``; from version ``2026-10-21`` on, ``temperature``/``top_p``/``top_k`` are rejected.
``tool_choice: {"type": "tool"|"any"}`` forces a ``tool_use`` block whose input fits the tool's
``input_schema``; ``output_config.format`` (``messages.parse``) gives JSON text.  Any other
``tool_choice`` answers in text.
"""

from __future__ import annotations

import json
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
    char_pieces,
    paced,
    require_str,
    retry_after,
    rfc3339_in,
    string_list,
    text_pieces,
)
from llmsim.schema import normalize

#: From this API version on, the real API rejects sampling parameters; so does the simulator.
NO_SAMPLING_FROM_VERSION = "2026-10-21"

_ERRORS = {
    ErrorKind.INVALID_REQUEST: (400, "invalid_request_error"),
    ErrorKind.AUTHENTICATION: (401, "authentication_error"),
    ErrorKind.PERMISSION: (403, "permission_error"),
    ErrorKind.NOT_FOUND: (404, "not_found_error"),
    ErrorKind.RATE_LIMIT: (429, "rate_limit_error"),
    ErrorKind.SPEND_CAP: (429, "rate_limit_error"),
    ErrorKind.SERVER: (500, "api_error"),
    ErrorKind.UNAVAILABLE: (503, "api_error"),
    ErrorKind.OVERLOADED: (529, "overloaded_error"),
}
_QUOTA_HEADER = {
    "requests": "requests",
    "input_tokens": "input-tokens",
    "output_tokens": "output-tokens",
}


@dataclass(frozen=True)
class AnthropicCall(Call):
    tool_name: str | None = None  # a forced tool: answer with a tool_use block


class AnthropicAPI(Provider):
    name = "anthropic"

    def route(self, method: str, path: str) -> Route | None:
        if method == "POST" and path == "/v1/messages":
            return Route("/v1/messages", "generate")
        if method == "POST" and path == "/v1/messages/count_tokens":
            return Route("/v1/messages/count_tokens", "count")
        return None

    def api_key(self, request: Request) -> str | None:
        return request.header("x-api-key") or bearer(request)

    def missing_key(self) -> ApiError:
        return ApiError(ErrorKind.AUTHENTICATION, "x-api-key header is required")

    # --- parsing ----------------------------------------------------------------------------

    def parse(self, request: Request, route: Route) -> AnthropicCall:
        body = body_of(request)
        version = request.header("anthropic-version")
        if not version:
            raise ApiError(ErrorKind.INVALID_REQUEST, "anthropic-version: header is required")
        model = require_str(body, "model")
        max_tokens = None
        if route.action == "generate":
            max_tokens = body.get("max_tokens")
            if max_tokens is None:
                raise ApiError(ErrorKind.INVALID_REQUEST, "max_tokens: Field required")
            if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 0:
                raise ApiError(
                    ErrorKind.INVALID_REQUEST, "max_tokens: Input should be a non-negative integer"
                )
            if version >= NO_SAMPLING_FROM_VERSION:
                for key in ("temperature", "top_p", "top_k"):
                    if key in body:
                        raise ApiError(
                            ErrorKind.INVALID_REQUEST,
                            f"{key}: Extra inputs are not permitted "
                            f"with anthropic-version {version}",
                        )
        turns = _turns(body.get("messages"))
        tools = body.get("tools") or []
        if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
            raise ApiError(
                ErrorKind.INVALID_REQUEST, "tools: Input should be a list of tool definitions"
            )
        tool_name, schema = _forced_tool(tools, body.get("tool_choice"))
        if schema is None:
            schema = _output_schema(body.get("output_config"))
        prompt = Prompt(
            system=_text(body.get("system"), "system"),
            turns=turns,
            max_tokens=max_tokens,
            stop=string_list(body.get("stop_sequences"), "stop_sequences"),
            schema=schema,
            extra_input=json.dumps(tools) if tools else (json.dumps(schema) if schema else ""),
        )
        return AnthropicCall(
            self.name, route.endpoint, model, prompt, bool(body.get("stream")), tool_name
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
        tool_name = call.tool_name if isinstance(call, AnthropicCall) else None
        headers = {"request-id": request_id, **_limit_headers(admission)}
        stop_reason: str = completion.stop_reason
        if tool_name:
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": f"toolu_{request_id[8:]}",
                "name": tool_name,
                "input": completion.value if completion.structured else {},
            }
            stop_reason = "tool_use" if stop_reason == "end_turn" else stop_reason
        else:
            block = {"type": "text", "text": completion.text}
        if not call.stream:
            usage = _usage(completion.input_tokens, completion.output_tokens)
            message = _message(
                call,
                request_id,
                [block],
                stop_reason=stop_reason,
                stop_sequence=completion.stop_sequence,
                usage=usage,
            )
            delay_s = latency.total_s(completion.output_tokens)
            return json_response(200, message, headers, delay_s=delay_s)
        events = _stream_start(call, request_id, completion.input_tokens)
        events += _block_events(block)
        events += _stream_end(stop_reason, completion.stop_sequence, completion.output_tokens)
        return Stream(200, paced(events, latency), _sse_headers(headers), delay_s=latency.ttft_s)

    def refusal(
        self, call: Call, completion: Completion, latency: Latency, request_id: str
    ) -> Reply:
        usage = _usage(completion.input_tokens, 0)
        if not call.stream:
            message = _message(
                call, request_id, [], stop_reason="refusal", stop_sequence=None, usage=usage
            )
            return json_response(200, message, {"request-id": request_id}, delay_s=latency.ttft_s)
        events = _stream_start(call, request_id, completion.input_tokens) + _stream_end(
            "refusal", None, 0
        )
        return Stream(
            200, paced(events, latency), _sse_headers({"request-id": request_id}), latency.ttft_s
        )

    def empty(self, call: Call, completion: Completion, latency: Latency, request_id: str) -> Reply:
        if not call.stream:
            content = [{"type": "text", "text": ""}]
            message = _message(
                call, request_id, content, stop_reason="end_turn", stop_sequence=None, usage=None
            )
            return json_response(200, message, {"request-id": request_id}, delay_s=latency.ttft_s)
        events = _stream_start(call, request_id, completion.input_tokens)
        events.append((sse(_block_start({"type": "text", "text": ""}), "content_block_start"), ""))
        events.append((sse({"type": "content_block_stop", "index": 0}, "content_block_stop"), ""))
        events += _stream_end("end_turn", None, 0)
        return Stream(
            200, paced(events, latency), _sse_headers({"request-id": request_id}), latency.ttft_s
        )

    def count(self, call: Call, input_tokens: int, request_id: str) -> Response:
        return json_response(200, {"input_tokens": input_tokens}, {"request-id": request_id})

    def error(self, err: ApiError, request_id: str) -> Response:
        status, kind = _ERRORS[err.kind]
        error: dict[str, Any] = {"type": kind, "message": err.message}
        if err.kind is ErrorKind.SPEND_CAP:
            error["details"] = {"error_code": "enforced_spend_limit_reached"}
        headers = {"request-id": request_id}
        if err.retry_after_s is not None:
            headers["retry-after"] = retry_after(err.retry_after_s)
        if err.admission is not None:
            headers |= _limit_headers(err.admission)
        return json_response(
            err.status or status,
            {"type": "error", "error": error, "request_id": request_id},
            headers,
        )


def _message(
    call: Call,
    request_id: str,
    content: list[dict[str, Any]],
    *,
    stop_reason: str | None,
    stop_sequence: str | None,
    usage: dict[str, Any] | None,
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "id": f"msg_{request_id[8:]}",
        "type": "message",
        "role": "assistant",
        "model": call.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
    }
    if usage is not None:
        message["usage"] = usage
    return message


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "service_tier": "standard",
    }


def _block_start(block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": 0, "content_block": block}


def _block_events(block: dict[str, Any]) -> list[tuple[bytes, str]]:
    """One content block, streamed: start, deltas of a few words (or JSON characters), stop."""
    if block["type"] == "tool_use":
        start = {**block, "input": {}}
        pieces = char_pieces(json.dumps(block["input"], ensure_ascii=False))
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
    else:
        start = {"type": "text", "text": ""}
        pieces = text_pieces(block["text"])
        deltas = [{"type": "text_delta", "text": p} for p in pieces]
    events = [
        (sse(_block_start(start), "content_block_start"), ""),
        (sse({"type": "ping"}, "ping"), ""),
    ]
    for piece, delta in zip(pieces, deltas, strict=True):
        event = {"type": "content_block_delta", "index": 0, "delta": delta}
        events.append((sse(event, "content_block_delta"), piece))
    events.append((sse({"type": "content_block_stop", "index": 0}, "content_block_stop"), ""))
    return events


def _stream_start(call: Call, request_id: str, input_tokens: int) -> list[tuple[bytes, str]]:
    message = _message(
        call, request_id, [], stop_reason=None, stop_sequence=None, usage=_usage(input_tokens, 1)
    )
    return [(sse({"type": "message_start", "message": message}, "message_start"), "")]


def _stream_end(
    stop_reason: str, stop_sequence: str | None, output_tokens: int
) -> list[tuple[bytes, str]]:
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
        "usage": {"output_tokens": output_tokens},
    }
    return [(sse(delta, "message_delta"), ""), (sse({"type": "message_stop"}, "message_stop"), "")]


def _sse_headers(headers: dict[str, str]) -> dict[str, str]:
    return {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        **headers,
    }


def _limit_headers(admission: Admission) -> dict[str, str]:
    headers = {}
    for quota in admission.quotas:
        name = _QUOTA_HEADER[quota.name]
        headers[f"anthropic-ratelimit-{name}-limit"] = str(quota.limit)
        headers[f"anthropic-ratelimit-{name}-remaining"] = str(quota.remaining)
        headers[f"anthropic-ratelimit-{name}-reset"] = rfc3339_in(quota.reset_s)
    return headers


def _text(content: Any, where: str) -> str:
    """The text of a ``content``/``system`` value: a string or a list of blocks."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise ApiError(
            ErrorKind.INVALID_REQUEST, f"{where}: Input should be a string or a list of blocks"
        )
    parts = []
    for block in content:
        if not isinstance(block, dict):
            raise ApiError(ErrorKind.INVALID_REQUEST, f"{where}: each block must be an object")
        kind = block.get("type")
        if kind == "text":
            parts.append(str(block.get("text", "")))
        elif kind == "tool_result":
            parts.append(_text(block.get("content"), f"{where}.tool_result"))
        elif kind == "tool_use":
            parts.append(json.dumps(block.get("input", {})))
    return "\n".join(p for p in parts if p)


def _turns(messages: Any) -> tuple[Turn, ...]:
    if not isinstance(messages, list) or not messages:
        raise ApiError(ErrorKind.INVALID_REQUEST, "messages: at least one message is required")
    turns = []
    previous = None
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            raise ApiError(
                ErrorKind.INVALID_REQUEST,
                f"messages.{i}.role: Input should be 'user' or 'assistant'",
            )
        if i == 0 and role != "user":
            raise ApiError(
                ErrorKind.INVALID_REQUEST, 'messages: first message must use the "user" role'
            )
        if role == previous:
            raise ApiError(
                ErrorKind.INVALID_REQUEST,
                f'messages: roles must alternate between "user" and "assistant", '
                f'but found multiple "{role}" roles in a row',
            )
        previous = role
        turns.append(Turn(role, _text(message.get("content"), f"messages.{i}.content")))
    return tuple(turns)


def _forced_tool(
    tools: list[dict[str, Any]], choice: Any
) -> tuple[str | None, dict[str, Any] | None]:
    if not tools or not isinstance(choice, dict) or choice.get("type") not in ("tool", "any"):
        return None, None
    if choice["type"] == "any":
        tool = tools[0]
    else:
        matching = [t for t in tools if t.get("name") == choice.get("name")]
        if not matching:
            raise ApiError(
                ErrorKind.INVALID_REQUEST,
                f"tool_choice.name: no tool named {choice.get('name')!r} in tools",
            )
        tool = matching[0]
    schema = tool.get("input_schema")
    if not isinstance(schema, dict):
        raise ApiError(
            ErrorKind.INVALID_REQUEST, f"tools.{tool.get('name')}.input_schema: Field required"
        )
    return str(tool.get("name")), normalize(schema)


def _output_schema(output_config: Any) -> dict[str, Any] | None:
    if not isinstance(output_config, dict):
        return None
    fmt = output_config.get("format")
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
        raise ApiError(
            ErrorKind.INVALID_REQUEST, "output_config.format: expected {type: json_schema, schema}"
        )
    schema: dict[str, Any] = normalize(fmt["schema"])
    return schema
