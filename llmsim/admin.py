"""The admin API under ``/_sim/`` (JSON in, JSON out; no authentication — bind to loopback).

=========================  =====================================================================
``GET  /_sim/health``      ``{"status": "ok", "uptime_s", "calls"}``
``GET  /_sim/config``      the configuration
``POST /_sim/config``      partial update, e.g. ``{"ttft_ms": 300, "limits": {"rpm": 60}}``
                           or planted defects ``{"defects": {"refusal": 0.05}}`` (see
                           ``defects.py``); answers the new configuration
``GET  /_sim/faults``      ``{"faults": [...]}``: queued faults (with ``remaining``) and rates
``POST /_sim/faults``      one fault spec or ``{"faults": [spec, ...]}`` (see ``faults.FaultSpec``):
                           ``{"kind": "rate_limit", "count": 2, "provider": "anthropic",
                           "retry_after_s": 3}``, ``{"kind": "server_error", "rate": 0.1}``
``DELETE /_sim/faults``    ``{"cleared": n}``
``GET  /_sim/calls``       ``{"calls": [...], "counts": [{"provider", "model", "status",
                           "count"}], "total"}``; ``?limit=N`` keeps the last N calls; each
                           call's ``planted`` names the defect planted in it (or null)
``POST /_sim/reset``       clears the call log, all faults and the rate-limit windows;
                           ``{"config": true}`` also restores the start-up configuration
=========================  =====================================================================

Errors are ``{"error": "message"}`` with 400 (bad body), 404 or 405.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from llmsim.faults import FaultSpec
from llmsim.http_types import BadJson, Request, Response, json_response
from llmsim.state import SimState


def handle(state: SimState, request: Request) -> Response:
    path = request.path.rstrip("/")
    handler = _ROUTES.get((request.method, path))
    if handler is None:
        if any(known == path for _, known in _ROUTES):
            return _error(405, f"{request.method} is not allowed on {path}")
        return _error(404, f"no admin endpoint {request.path}; see the llmsim.admin docstring")
    try:
        return handler(state, request)
    except ValidationError as exc:
        return _error(400, _describe(exc))
    except (BadJson, ValueError) as exc:
        return _error(400, str(exc))


def _health(state: SimState, request: Request) -> Response:
    payload = {
        "status": "ok",
        "uptime_s": round(state.uptime_s, 3),
        "calls": state.log.snapshot(0).total,
    }
    return json_response(200, payload)


def _get_config(state: SimState, request: Request) -> Response:
    return json_response(200, state.config.model_dump(mode="json"))


def _set_config(state: SimState, request: Request) -> Response:
    return json_response(200, state.configure(request.json_object()).model_dump(mode="json"))


def _get_faults(state: SimState, request: Request) -> Response:
    return json_response(200, {"faults": state.faults.active()})


def _add_faults(state: SimState, request: Request) -> Response:
    specs = _fault_specs(request.json_object())
    for spec in specs:
        state.faults.add(spec)
    added = [s.model_dump(exclude_none=True) for s in specs]
    return json_response(200, {"added": added, "faults": state.faults.active()})


def _clear_faults(state: SimState, request: Request) -> Response:
    return json_response(200, {"cleared": state.faults.clear()})


def _calls(state: SimState, request: Request) -> Response:
    limit = request.query.get("limit")
    return json_response(200, state.log.snapshot(int(limit) if limit else None).to_json())


def _reset(state: SimState, request: Request) -> Response:
    body = request.json_object() if request.body.strip() else {}
    state.reset(config=bool(body.get("config")))
    return json_response(200, {"status": "reset"})


_ROUTES: dict[tuple[str, str], Callable[[SimState, Request], Response]] = {
    ("GET", "/_sim/health"): _health,
    ("GET", "/_sim/config"): _get_config,
    ("POST", "/_sim/config"): _set_config,
    ("GET", "/_sim/faults"): _get_faults,
    ("POST", "/_sim/faults"): _add_faults,
    ("DELETE", "/_sim/faults"): _clear_faults,
    ("GET", "/_sim/calls"): _calls,
    ("POST", "/_sim/reset"): _reset,
}


def _fault_specs(body: dict[str, Any]) -> list[FaultSpec]:
    """All specs validated before any is added, so a bad batch changes nothing."""
    raw = body["faults"] if set(body) == {"faults"} else [body]
    if not isinstance(raw, list):
        raise ValueError("faults: expected a list of fault specs")
    return [FaultSpec.model_validate(item) for item in raw]


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
    )


def _error(status: int, message: str) -> Response:
    return json_response(status, {"error": message})
