"""The Flask app factory, its one error mapping, the body limit and the bearer token."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from pydantic import SecretStr

from chimera.errors import (
    ConflictingDuplicate,
    DatabaseUnavailable,
    EventTooLarge,
    NotFound,
    SchemaInvalid,
)
from chimera.settings import Settings


@pytest.fixture
def app(make_app: Callable[[Settings], Flask], settings: Settings) -> Flask:
    # No dependency is reached: these routes raise before touching any.
    app = make_app(settings)

    @app.route("/boom/<kind>", methods=["GET", "POST"])
    def boom(kind: str) -> None:
        raise {
            "schema": SchemaInvalid(
                "bad body", [{"field": "context_id", "message": "Field required"}]
            ),
            "large": EventTooLarge("too big"),
            "dup": ConflictingDuplicate("same id, other payload", event_id="e1"),
            "missing": NotFound("no such conversation", conversation_id="c9"),
            "down": DatabaseUnavailable("postgres is down"),
            "bug": RuntimeError("unexpected: secret internals"),
        }[kind]

    return app


def test_healthz_needs_no_dependency(app: Flask) -> None:
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("kind", "status", "error"),
    [
        ("schema", 400, "SchemaInvalid"),
        ("large", 413, "EventTooLarge"),
        ("dup", 409, "ConflictingDuplicate"),
        ("missing", 404, "NotFound"),
        ("down", 503, "DatabaseUnavailable"),
    ],
)
def test_errors_map_to_json_with_the_right_status(
    app: Flask, kind: str, status: int, error: str
) -> None:
    response = app.test_client().get(f"/boom/{kind}")
    assert response.status_code == status
    assert response.is_json
    body = response.get_json()
    assert body["error"] == error
    if kind == "schema":
        assert body["errors"] == [{"field": "context_id", "message": "Field required"}]
    if kind == "missing":
        assert "conversation_id=c9" in body["message"]


def test_an_unexpected_error_is_a_json_500_without_details(app: Flask) -> None:
    response = app.test_client().get("/boom/bug")
    assert response.status_code == 500
    assert response.is_json
    body = response.get_json()
    assert body["error"] == "Internal Server Error"
    assert "secret internals" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


def test_unknown_routes_answer_json(app: Flask) -> None:
    response = app.test_client().get("/nowhere")
    assert response.status_code == 404
    assert response.is_json
    assert response.get_json()["error"] == "Not Found"


def test_a_wrong_method_answers_json_405_with_allow(app: Flask) -> None:
    response = app.test_client().delete("/healthz")
    assert response.status_code == 405
    assert response.is_json
    assert response.get_json()["error"] == "Method Not Allowed"
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "HEAD"}


def test_a_body_over_the_limit_is_a_json_413(
    make_app: Callable[[Settings], Flask], settings: Settings
) -> None:
    app = make_app(settings.model_copy(update={"http_max_body_bytes": 2_048}))

    @app.post("/echo")
    def echo() -> dict[str, Any]:
        from flask import request

        return {"bytes": len(request.get_data())}

    client = app.test_client()
    assert client.post("/echo", data=b"x" * 2_048).get_json() == {"bytes": 2_048}
    response = client.post("/echo", data=b"x" * 2_049)
    assert response.status_code == 413
    assert response.is_json
    body = response.get_json()
    assert body["error"] == "Request Entity Too Large"
    assert "2049 bytes; the limit is 2048" in body["message"]
    # Refused before routing: the same for any path.
    assert client.post("/boom/schema", data=b"x" * 4_096).status_code == 413


def test_a_chunked_body_over_the_limit_is_a_json_413(
    make_app: Callable[[Settings], Flask], settings: Settings
) -> None:
    app = make_app(settings.model_copy(update={"http_max_body_bytes": 2_048}))

    @app.post("/echo")
    def echo() -> dict[str, Any]:
        from flask import request

        return {"bytes": len(request.get_data())}

    def post_chunked(size: int) -> Any:
        # No Content-Length: the server de-chunks and marks the stream terminated (gunicorn).
        return app.test_client().post(
            "/echo",
            input_stream=io.BytesIO(b"x" * size),
            headers={"Transfer-Encoding": "chunked"},
            environ_overrides={"wsgi.input_terminated": True},
        )

    assert post_chunked(2_048).get_json() == {"bytes": 2_048}  # whole, not cut
    response = post_chunked(4_096)
    assert response.status_code == 413
    body = response.get_json()
    assert body["error"] == "Request Entity Too Large"
    assert "more than 2048 bytes" in body["message"]


def test_the_api_token_guards_everything_but_the_probes(
    make_app: Callable[[Settings], Flask], settings: Settings
) -> None:
    app = make_app(settings.model_copy(update={"api_token": SecretStr("tok-123456")}))
    client = app.test_client()
    denied = client.get("/conversations/conv-1")
    assert denied.status_code == 401
    assert denied.get_json()["error"] == "Unauthorized"
    assert denied.headers["WWW-Authenticate"].lower().startswith("bearer")
    wrong = client.get("/conversations/conv-1", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 401  # the scrape too (or CHIMERA_METRICS_TOKEN)
    # With the token the request reaches the view (and Postgres, unreachable here or not).
    allowed = client.get("/conversations/bad%20id", headers={"Authorization": "Bearer tok-123456"})
    assert allowed.status_code == 400
    assert "tok-123456" not in denied.get_data(as_text=True)
