"""Request dispatch and the life of a generation call.

Order of checks, as the real APIs do it: route → key → request validation → injected fault →
the simulator's rate limits → generation.  A malformed or unauthenticated request therefore never
consumes a queued fault, and a faulted call (other than timeout/truncated/safety/empty, which do
produce output) does not count against the rate limits.  Every call ends in exactly one call-log
record and one INFO log line.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from typing import Any

from llmsim import admin, engine
from llmsim.anthropic_api import AnthropicAPI
from llmsim.calls import ApiError, Call, Completion, ErrorKind
from llmsim.faults import ERROR_KINDS, FaultSpec
from llmsim.gemini_api import GeminiAPI
from llmsim.http_types import BadJson, Reply, Request, Reset, Response, Stream, json_response
from llmsim.limits import Admission
from llmsim.openai_api import OpenAIAPI
from llmsim.provider import Provider, Route
from llmsim.state import SimState

log = logging.getLogger("llmsim")

_FAULT_ERRORS: dict[str, tuple[ErrorKind, str]] = {
    "rate_limit": (ErrorKind.RATE_LIMIT, "Rate limit exceeded for this model (simulated fault)."),
    "spend_cap": (
        ErrorKind.SPEND_CAP,
        "You have reached your specified API usage limits; "
        "access returns next month (simulated fault).",
    ),
    "server_error": (ErrorKind.SERVER, "Internal server error (simulated fault)."),
    "unavailable": (
        ErrorKind.UNAVAILABLE,
        "The service is currently unavailable (simulated fault).",
    ),
    "overloaded": (
        ErrorKind.OVERLOADED,
        "The model is overloaded. Please try again later (simulated fault).",
    ),
    "bad_request": (ErrorKind.INVALID_REQUEST, "Invalid request (simulated fault)."),
    "unauthorized": (ErrorKind.AUTHENTICATION, "Invalid API key (simulated fault)."),
    "forbidden": (ErrorKind.PERMISSION, "Your key may not use this resource (simulated fault)."),
}


@dataclass
class _Outcome:
    """What the call log and the log line say about one call."""

    provider: str
    model: str
    endpoint: str
    request_id: str
    stream: bool = False
    fault: str | None = None
    limited: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    body: dict[str, Any] | None = None
    planted: str | None = None


class SimApp:
    """The simulator as a function from :class:`Request` to :class:`Reply`."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        self.providers: tuple[Provider, ...] = (AnthropicAPI(), GeminiAPI(), OpenAIAPI())

    def __call__(self, request: Request) -> Reply:
        if request.path == "/_sim" or request.path.startswith("/_sim/"):
            return admin.handle(self.state, request)
        for provider in self.providers:
            route = provider.route(request.method, request.path)
            if route is not None:
                return self._call(provider, route, request)
        return self._not_found(request)

    def _call(self, provider: Provider, route: Route, request: Request) -> Reply:
        state, config = self.state, self.state.config
        model = route.model or _peek_model(request)
        outcome = _Outcome(provider.name, model, route.endpoint, state.request_id())
        try:
            if config.require_auth and not provider.api_key(request):
                raise provider.missing_key()
            call = provider.parse(request, route)
            outcome.model, outcome.stream = call.model, call.stream
            if config.record_bodies:
                outcome.body = request.json_object()
            outcome.input_tokens = engine.input_tokens(call.prompt)
            if route.action == "count":
                return self._finish(
                    outcome, provider.count(call, outcome.input_tokens, outcome.request_id)
                )
            fault = state.faults.draw(provider.name, call.model)
            outcome.fault = fault.kind if fault else None
            if fault is not None and fault.kind == "reset":
                return self._finish(outcome, Reset())
            if fault is not None and fault.kind in ERROR_KINDS:
                kind, message = _FAULT_ERRORS[fault.kind]
                retry = fault.retry_after_s if fault.kind == "rate_limit" else None
                raise ApiError(kind, message, retry_after_s=retry, status=fault.status)
            admission = state.limiter.admit(
                call.model, config.limits_for(call.model), outcome.input_tokens
            )
            if not admission.allowed:
                outcome.limited = admission.exceeded
                raise ApiError(
                    ErrorKind.RATE_LIMIT,
                    f"This request would exceed the simulator's {admission.exceeded} "
                    "per minute limit "
                    f"for {call.model}; retry after {admission.retry_after_whole_s} s.",
                    retry_after_s=admission.retry_after_whole_s,
                    admission=admission,
                )
            completion = engine.complete(
                call.prompt,
                model=call.model,
                seed=config.seed,
                pacing=config.pacing,
                defect_rates=config.defects,
            )
            state.limiter.record_output(admission, completion.output_tokens)
            reply = self._render(
                provider, call, completion, fault=fault, admission=admission, outcome=outcome
            )
            return self._finish(outcome, reply)
        except ApiError as err:
            return self._finish(outcome, provider.error(err, outcome.request_id))
        except Exception:
            log.exception(
                "simulator failed on %s %s (%s)", request.method, request.path, outcome.request_id
            )
            body = {
                "type": "error",
                "error": {"type": "api_error", "message": "simulator internal error"},
            }
            return self._finish(outcome, json_response(500, body))

    def _render(
        self,
        provider: Provider,
        call: Call,
        completion: Completion,
        *,
        fault: FaultSpec | None,
        admission: Admission,
        outcome: _Outcome,
    ) -> Reply:
        latency = self.state.config.latency
        kind = fault.kind if fault else None
        rid = outcome.request_id
        if kind == "safety":
            reply = provider.refusal(call, completion, latency, rid)
        elif kind == "empty":
            reply = provider.empty(call, completion, latency, rid)
        else:
            if kind == "nul":  # a NUL in the answer (Postgres stores no U+0000)
                completion = _with_nul(completion)
            reply = provider.answer(call, completion, latency, rid, admission)
            outcome.output_tokens = completion.output_tokens
            outcome.planted = completion.planted
        if kind == "truncated":
            reply = _truncated(reply)
        if kind == "timeout" and fault is not None and isinstance(reply, Response | Stream):
            stall = (
                fault.delay_s
                if fault.delay_s is not None
                else self.state.config.timeout_fault_delay_s
            )
            reply.delay_s += stall
        return reply

    def _not_found(self, request: Request) -> Reply:
        outcome = _Outcome("unknown", "", request.path, self.state.request_id())
        message = f"the simulator has no route for {request.method} {request.path}"
        body = {
            "type": "error",
            "error": {"type": "not_found_error", "message": message, "code": 404},
        }
        return self._finish(outcome, json_response(404, body))

    def _finish(self, outcome: _Outcome, reply: Reply) -> Reply:
        status = None if isinstance(reply, Reset) else reply.status
        self.state.log.append(
            provider=outcome.provider,
            model=outcome.model,
            endpoint=outcome.endpoint,
            status=status,
            request_id=outcome.request_id,
            fault=outcome.fault,
            limited=outcome.limited,
            input_tokens=outcome.input_tokens,
            output_tokens=outcome.output_tokens,
            stream=outcome.stream,
            body=outcome.body,
            planted=outcome.planted,
        )
        level = logging.WARNING if status == 404 else logging.INFO
        log.log(
            level,
            "%s %s model=%s status=%s fault=%s limited=%s planted=%s in=%d out=%d stream=%s id=%s",
            outcome.provider,
            outcome.endpoint,
            outcome.model or "-",
            status if status is not None else "reset",
            outcome.fault or "-",
            outcome.limited or "-",
            outcome.planted or "-",
            outcome.input_tokens,
            outcome.output_tokens,
            outcome.stream,
            outcome.request_id,
        )
        return reply


def _peek_model(request: Request) -> str:
    """The body's ``model``, best effort, so that even a refused call is logged by model."""
    try:
        model = request.json_object().get("model")
    except BadJson:
        return ""
    return model if isinstance(model, str) else ""


def _truncated(reply: Reply) -> Reply:
    """Half the body (a cut JSON document), or half the events of a stream, ended cleanly."""
    if isinstance(reply, Response):
        return replace(reply, body=reply.body[: len(reply.body) // 2])
    if isinstance(reply, Stream):
        return replace(reply, events=reply.events[: max(1, len(reply.events) // 2)])
    return reply


def _with_nul(completion: Completion) -> Completion:
    """The answer with a NUL character in its text (and in every string of its value)."""

    def spoil(value: Any) -> Any:
        if isinstance(value, str):
            return value[:1] + "\x00" + value[1:]
        if isinstance(value, dict):
            return {k: spoil(v) for k, v in value.items()}
        if isinstance(value, list):
            return [spoil(v) for v in value]
        return value

    if completion.value is None:
        return replace(completion, text=spoil(completion.text))
    value = spoil(completion.value)
    return replace(completion, value=value, text=json.dumps(value))
