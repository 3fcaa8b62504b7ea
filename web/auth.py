"""Bearer-token authentication: with ``CHIMERA_API_TOKEN`` set, every route but the
probes and ``/metrics`` needs ``Authorization: Bearer <token>``.

Probes and scrapers reach the service from inside the deployment and carry no
secret; everything else can read stored data or spend LLM money.
"""

from __future__ import annotations

import hmac

from flask import Flask, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

from chimera.settings import Settings

#: Endpoints open without a token.
OPEN_ENDPOINTS = frozenset({"health.healthz", "health.readyz", "metrics.metrics"})


def init_app(app: Flask, settings: Settings) -> None:
    if settings.api_token is None or not settings.api_token.get_secret_value():
        return
    expected = settings.api_token.get_secret_value().encode()

    @app.before_request
    def require_token() -> None:
        # No rule: the request ends in 404/405, which reveals nothing.
        if request.url_rule is None or request.endpoint in OPEN_ENDPOINTS:
            return
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise Unauthorized(
                "a valid bearer token is required: Authorization: Bearer <CHIMERA_API_TOKEN>",
                www_authenticate=WWWAuthenticate("bearer", {"realm": "chimera"}),
            )
