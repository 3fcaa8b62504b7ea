"""The Flask app factory and its one error mapping."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from chimera.errors import (
    ConflictingDuplicate,
    DatabaseUnavailable,
    EventTooLarge,
    NotFound,
    SchemaInvalid,
)
from web import create_app


@pytest.fixture
def app(settings: Any) -> Flask:
    app = create_app(settings)

    @app.get("/boom/<kind>")
    def boom(kind: str) -> None:
        raise {
            "schema": SchemaInvalid(
                "bad body", [{"field": "context_id", "message": "Field required"}]
            ),
            "large": EventTooLarge("too big"),
            "dup": ConflictingDuplicate("same id, other payload", event_id="e1"),
            "missing": NotFound("no such conversation", conversation_id="c9"),
            "down": DatabaseUnavailable("postgres is down"),
            "bug": RuntimeError("unexpected"),
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
    body = response.get_json()
    assert body["error"] == error
    if kind == "schema":
        assert body["errors"] == [{"field": "context_id", "message": "Field required"}]
    if kind == "missing":
        assert "conversation_id=c9" in body["message"]


def test_unknown_routes_answer_json(app: Flask) -> None:
    response = app.test_client().get("/nowhere")
    assert response.status_code == 404
    assert response.get_json()["error"] == "Not Found"
