"""The shape every wire format implements, and helpers they share (stream pacing, text pieces).

A provider module is a translator: it matches its routes, parses its request into a
:class:`Call`, and renders completions and :class:`ApiError` in its own JSON.  It makes no
decisions — faults, limits and generation are the server's.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from llmsim.calls import ApiError, Call, Completion, ErrorKind, Latency
from llmsim.http_types import BadJson, Reply, Request, Response
from llmsim.limits import Admission
from llmsim.textstats import count_tokens

_PIECE_RE = re.compile(r"\S+\s*|\s+")


@dataclass(frozen=True)
class Route:
    endpoint: str  # path template for the call log, e.g. "/v1beta/models/{model}:generateContent"
    action: str  # "generate" or "count"
    model: str | None = None  # when the path names it


class Provider(ABC):
    name: ClassVar[str]

    @abstractmethod
    def route(self, method: str, path: str) -> Route | None:
        """The route this request is for, or None when it is not this provider's."""

    @abstractmethod
    def api_key(self, request: Request) -> str | None: ...

    @abstractmethod
    def missing_key(self) -> ApiError:
        """The error the real API gives a request without a key."""

    @abstractmethod
    def parse(self, request: Request, route: Route) -> Call:
        """The call a request asks for; raises :class:`ApiError` when it is malformed."""

    @abstractmethod
    def error(self, err: ApiError, request_id: str) -> Response: ...

    @abstractmethod
    def answer(
        self,
        call: Call,
        completion: Completion,
        latency: Latency,
        request_id: str,
        admission: Admission,
    ) -> Reply:
        """The normal answer, streamed when the call asked for a stream."""

    @abstractmethod
    def refusal(
        self, call: Call, completion: Completion, latency: Latency, request_id: str
    ) -> Reply:
        """The answer when a safety system stops the output."""

    @abstractmethod
    def empty(self, call: Call, completion: Completion, latency: Latency, request_id: str) -> Reply:
        """A 200 with empty text and no usage."""

    @abstractmethod
    def count(self, call: Call, input_tokens: int, request_id: str) -> Response:
        """The answer of the token-counting endpoint."""


def body_of(request: Request) -> dict[str, Any]:
    """The JSON object in the request body; a malformed body is an invalid request."""
    try:
        return request.json_object()
    except BadJson as exc:
        raise ApiError(ErrorKind.INVALID_REQUEST, str(exc)) from exc


def bearer(request: Request) -> str | None:
    value = request.header("authorization") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def text_pieces(text: str, words: int = 3) -> list[str]:
    """``text`` in pieces of a few words (whitespace kept), as a model streams it."""
    tokens = _PIECE_RE.findall(text)
    return ["".join(tokens[i : i + words]) for i in range(0, len(tokens), words)]


def char_pieces(text: str, size: int = 24) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def paced(events: list[tuple[bytes, str]], latency: Latency) -> list[tuple[float, bytes]]:
    """Stream events with the pause before each: ``per_token_s`` times the tokens of its text."""
    return [(latency.per_token_s * count_tokens(text), data) for data, text in events]


def retry_after(seconds: float) -> str:
    """A ``retry-after`` value: whole seconds, rounded up."""
    return str(math.ceil(seconds))


def rfc3339_in(seconds: float) -> str:
    """The time ``seconds`` from now, as RFC 3339 in UTC (Anthropic's ``*-reset`` headers)."""
    return (datetime.now(UTC) + timedelta(seconds=max(0.0, seconds))).strftime("%Y-%m-%dT%H:%M:%SZ")


def require_str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ApiError(ErrorKind.INVALID_REQUEST, f"{key}: Field required (a non-empty string)")
    return value


def optional_int(body: dict[str, Any], key: str, minimum: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ApiError(ErrorKind.INVALID_REQUEST, f"{key}: must be an integer >= {minimum}")
    return value


def string_list(value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ApiError(ErrorKind.INVALID_REQUEST, f"{key}: must be a list of strings")
