"""Bearer-token authentication.

Three kinds of route:

* **probes** (``/healthz``, ``/readyz``): always open; orchestrators' probes carry no
  secret.  ``/readyz`` answers its status to anyone, and its details (internal hosts,
  the database user) only to a caller an operator route would let in
  (``may_read_operator_data``).
* **operator routes** (``/metrics``): with ``CHIMERA_API_TOKEN`` or
  ``CHIMERA_METRICS_TOKEN`` set, either token opens them; a scraper needs no API token.
* **everything else** (stored data, LLM spend): with ``CHIMERA_API_TOKEN`` set, that
  token only.

A kind of route with no token configured for it stays open: that is the loopback-only
app (``chimera.exposure`` refuses a network address without an API token).  The token
check itself is ``chimera.bearer``'s, shared with each process's own metrics listener.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

from chimera import bearer
from chimera.settings import Settings

#: Endpoints open without a token.
OPEN_ENDPOINTS = frozenset({"health.healthz", "health.readyz"})
#: Endpoints the API token or the metrics token opens.
OPERATOR_ENDPOINTS = frozenset({"metrics.metrics"})
_EXTENSION = "chimera.tokens"


@dataclass(frozen=True)
class Tokens:
    """The tokens each kind of route accepts; an empty tuple means open."""

    api: tuple[bytes, ...]
    operator: tuple[bytes, ...]


def init_app(app: Flask, settings: Settings) -> None:
    tokens = Tokens(api=bearer.api_tokens(settings), operator=bearer.operator_tokens(settings))
    app.extensions[_EXTENSION] = tokens

    @app.before_request
    def require_token() -> None:
        # No rule: the request ends in 404/405, which reveals nothing.
        if request.url_rule is None or request.endpoint in OPEN_ENDPOINTS:
            return
        if request.endpoint in OPERATOR_ENDPOINTS:
            if not _presents(tokens.operator):
                raise _unauthorized(bearer.OPERATOR_TOKENS)
        elif not _presents(tokens.api):
            raise _unauthorized("CHIMERA_API_TOKEN")


def may_read_operator_data() -> bool:
    """Whether the current request may read what operator routes show."""
    tokens: Tokens = current_app.extensions[_EXTENSION]
    return _presents(tokens.operator)


def _presents(accepted: tuple[bytes, ...]) -> bool:
    """True when no token is required, or the request carries one of ``accepted``."""
    return bearer.presents(request.headers.get("Authorization"), accepted)


def _unauthorized(which: str) -> Unauthorized:
    return Unauthorized(
        f"a valid bearer token is required: Authorization: Bearer <{which}>",
        www_authenticate=WWWAuthenticate("bearer", {"realm": "chimera"}),
    )
