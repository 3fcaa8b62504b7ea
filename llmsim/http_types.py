"""The simulator's HTTP vocabulary: a parsed request and the three kinds of reply.

Replies are plans, not actions: a :class:`Response` says how long to wait before answering, a
:class:`Stream` lists its events with the pause before each, :class:`Reset` says to drop the
connection.  The transport (:mod:`llmsim.httpd`) carries them out, so everything above it
is plain, testable functions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit


class BadJson(ValueError):
    """Raised when a request body is not a JSON object."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-cased names
    body: bytes = b""

    @classmethod
    def build(
        cls, method: str, target: str, headers: Mapping[str, str], body: bytes = b""
    ) -> Request:
        parts = urlsplit(target)
        return cls(
            method=method.upper(),
            path=parts.path,
            query=dict(parse_qsl(parts.query)),
            headers={k.lower(): v for k, v in headers.items()},
            body=body,
        )

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json_object(self) -> dict[str, Any]:
        try:
            data = json.loads(self.body or b"null")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadJson(f"request body is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise BadJson("request body must be a JSON object")
        return data


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # wait this long before sending anything


@dataclass
class Stream:
    """A chunked ``text/event-stream`` answer: each event is sent after its pause."""

    status: int
    events: list[tuple[float, bytes]]
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # before the status line (time to first token)


@dataclass(frozen=True)
class Reset:
    """Close the connection abruptly (TCP RST), without any response."""


Reply = Response | Stream | Reset


def json_response(
    status: int, payload: Any, headers: Mapping[str, str] | None = None, *, delay_s: float = 0.0
) -> Response:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return Response(status, body, {"content-type": "application/json", **(headers or {})}, delay_s)


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event; ``data`` is JSON-encoded unless it is already a string."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()
