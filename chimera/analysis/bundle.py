"""Four results -> one bundle and a status: ``ok``, ``partial`` (some failed) or ``failed``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from chimera.analysis.runner import PartResult
from chimera.models.analysis import ANALYSIS_KINDS

RunStatus = Literal["ok", "partial", "failed"]

#: Where each analysis's output goes in the bundle.
_PLACES: Mapping[str, Callable[[dict[str, Any] | None], dict[str, Any]]] = {
    "summary": lambda o: {"summary": o},
    "argument": lambda o: {"arguments": None if o is None else o["claims"]},
    "implication_sentiment": lambda o: {
        "implications": None if o is None else o["implications"],
        "sentiment": None if o is None else o["sentiment"],
    },
    "logic_bias": lambda o: {"logic_bias": o},
}


@dataclass(frozen=True)
class Aggregate:
    status: RunStatus
    bundle: dict[str, Any]
    #: Per analysis: status, and the error class when it failed (the stored column).
    worker_statuses: dict[str, dict[str, Any]]


def aggregate(parts: Mapping[str, PartResult], input_info: dict[str, Any]) -> Aggregate:
    """Merge the four results; an analysis missing from ``parts`` counts as failed."""
    bundle: dict[str, Any] = {}
    statuses: dict[str, dict[str, Any]] = {}
    details: dict[str, dict[str, Any]] = {}
    errors: dict[str, dict[str, Any]] = {}
    for kind in ANALYSIS_KINDS:
        part = parts.get(kind)
        bundle |= _PLACES[kind](part.output if part is not None and part.ok else None)
        if part is None:
            statuses[kind] = {"status": "error", "error_class": "Missing"}
            errors[kind] = {"error_class": "Missing", "message": "no result"}
            continue
        statuses[kind] = {"status": part.status}
        details[kind] = {
            "prompt_id": part.prompt_id,
            "provider": part.provider,
            "model": part.model,
            "latency_ms": part.latency_ms,
            "input_tokens": part.input_tokens,
            "output_tokens": part.output_tokens,
            "attempts": part.attempts,
        } | ({"notes": part.notes} if part.notes else {})
        if not part.ok:
            statuses[kind]["error_class"] = part.error_class
            errors[kind] = {"error_class": part.error_class, "message": part.error}
    failed = len(errors)
    status: RunStatus = "ok" if not failed else "failed" if failed == len(statuses) else "partial"
    bundle["worker_statuses"] = {k: v["status"] for k, v in statuses.items()}
    bundle["errors"] = errors
    bundle["analyses"] = details
    bundle["input"] = input_info
    return Aggregate(status, bundle, statuses)
