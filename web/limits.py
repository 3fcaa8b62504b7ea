"""The request body limit (``CHIMERA_HTTP_MAX_BODY_BYTES``).

A declared ``Content-Length`` over the limit is refused before any view reads a
byte.  A chunked body declares no length, and werkzeug would cut it at the limit
without a word (the view would see a truncated body), so one is read here, up to
one byte past the limit, and refused or handed on whole.  Either way the client
gets a 413 JSON answer.
"""

from __future__ import annotations

import io

from flask import Flask, request
from werkzeug.exceptions import RequestEntityTooLarge

from chimera.settings import Settings


def init_app(app: Flask, settings: Settings) -> None:
    limit = settings.http_max_body_bytes
    app.config["MAX_CONTENT_LENGTH"] = limit

    def too_large(size: str) -> RequestEntityTooLarge:
        return RequestEntityTooLarge(
            f"the request body has {size} bytes; the limit is {limit} (CHIMERA_HTTP_MAX_BODY_BYTES)"
        )

    @app.before_request
    def refuse_large_bodies() -> None:
        length = request.content_length
        if length is not None and length > limit:
            raise too_large(str(length))
        chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        if length is None and chunked and "wsgi.input_terminated" in request.environ:
            body = request.environ["wsgi.input"].read(limit + 1)
            if len(body) > limit:
                raise too_large(f"more than {limit}")
            request.environ["wsgi.input"] = io.BytesIO(body)
