"""Bad input at the HTTP edge: every answer is JSON with the right status, names what is
wrong, and nothing is written or paid for.

The matrix runs through the Flask test client (the app the server runs, on real
Redis and Postgres, with the session's LLM simulator behind it); a handful of the
same requests go through gunicorn, where the bytes are parsed for real.
"""

from __future__ import annotations

import contextlib
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydantic import SecretStr
from sqlalchemy import text
from werkzeug.test import TestResponse

from chimera import defaults as d
from chimera.settings import Settings
from tests.helpers import free_port, wait_for
from tests.web.gunicorn import Server
from web import create_app

ANALYZE = "/orchestrator/analyze"
SEGMENTS = [{"speaker": "Ana", "text": "Cars make cities loud."}]
GOOD = {"context_id": "doc-1", "segments": SEGMENTS}
#: Small limits, so "too large" is cheap: the request body, and the event inside it.
HTTP_MAX_BODY_BYTES = 8_192
MAX_EVENT_BYTES = 6_144
TOKEN = "tok-7d1c9a"


def make_app(settings: Settings, **overrides: Any) -> Iterator[Flask]:
    app = create_app(settings.model_copy(update=overrides))
    try:
        yield app
    finally:
        close = app.extensions.get("chimera.analyzer.close")
        if close is not None:
            close()
        from web.app import close_app

        close_app(app)


@pytest.fixture
def app(redis_ns: Settings, db: Any, sim_calls: Any) -> Iterator[Flask]:
    yield from make_app(
        redis_ns, http_max_body_bytes=HTTP_MAX_BODY_BYTES, max_event_bytes=MAX_EVENT_BYTES
    )


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def counts(db: Any) -> dict[str, int]:
    with db.connect() as conn:
        return {
            table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("analysis_runs", "llm_calls", "events", "conversations")
        }


NOTHING = {"analysis_runs": 0, "llm_calls": 0, "events": 0, "conversations": 0}


def error_of(response: TestResponse, status: int) -> dict[str, Any]:
    """The JSON error of ``response``, checked for what every error answer must be."""
    raw = response.get_data(as_text=True)
    assert response.status_code == status, raw
    assert response.mimetype == "application/json", raw
    assert "Traceback" not in raw and "<html" not in raw.lower(), raw
    body: dict[str, Any] = json.loads(raw)
    assert isinstance(body["error"], str) and body["error"], body
    assert isinstance(body["message"], str) and body["message"], body
    return body


def fields_of(body: dict[str, Any]) -> list[str]:
    return [e["field"] for e in body.get("errors", [])]


# --- POST /orchestrator/analyze: the fields ---------------------------------------------------

FIELD_CASES: list[tuple[str, dict[str, Any], str]] = [
    # (name, body, the field the answer must name)
    ("empty object", {}, "context_id"),
    ("context_id missing", {"segments": SEGMENTS}, "context_id"),
    ("context_id a number", {"context_id": 42}, "context_id"),
    ("context_id a boolean", {"context_id": True}, "context_id"),
    ("context_id null", {"context_id": None}, "context_id"),
    ("context_id a list", {"context_id": ["doc-1"]}, "context_id"),
    ("context_id an object", {"context_id": {"id": "doc-1"}}, "context_id"),
    ("context_id empty", {"context_id": ""}, "context_id"),
    ("context_id with a space", {"context_id": "doc 1"}, "context_id"),
    ("context_id with a tab", {"context_id": "doc\t1"}, "context_id"),
    ("context_id too long", {"context_id": "c" * 129}, "context_id"),
    ("language a number", GOOD | {"language": 5}, "language"),
    ("language null", GOOD | {"language": None}, "language"),
    ("language a list", GOOD | {"language": ["en"]}, "language"),
    ("language empty", GOOD | {"language": ""}, "language"),
    ("language not a tag", GOOD | {"language": "english!"}, "language"),
    (
        "language too long a tag",
        GOOD | {"language": "en-" + "-".join(["abcdefgh"] * 3)},
        "language",
    ),
    ("segments a string", {"context_id": "d", "segments": "Ana: hi"}, "segments"),
    ("segments a number", {"context_id": "d", "segments": 3}, "segments"),
    ("segments an object", {"context_id": "d", "segments": {"speaker": "A"}}, "segments"),
    ("segments empty", {"context_id": "d", "segments": []}, "segments"),
    ("a segment a string", {"context_id": "d", "segments": ["Ana: hi"]}, "segments.0"),
    ("a segment null", {"context_id": "d", "segments": [None]}, "segments.0"),
    ("speaker missing", {"context_id": "d", "segments": [{"text": "x"}]}, "segments.0.speaker"),
    ("text missing", {"context_id": "d", "segments": [{"speaker": "A"}]}, "segments.0.text"),
    (
        "speaker a number",
        {"context_id": "d", "segments": [{"speaker": 1, "text": "x"}]},
        "segments.0.speaker",
    ),
    (
        "text a list",
        {"context_id": "d", "segments": [{"speaker": "A", "text": ["x"]}]},
        "segments.0.text",
    ),
    (
        "text empty",
        {"context_id": "d", "segments": [{"speaker": "A", "text": ""}]},
        "segments.0.text",
    ),
    (
        "speaker too long",
        {"context_id": "d", "segments": [{"speaker": "s" * 201, "text": "x"}]},
        "segments.0.speaker",
    ),
    (
        "extra field in a segment",
        {"context_id": "d", "segments": [{"speaker": "A", "text": "x", "at": 1}]},
        "segments.0.at",
    ),
    (
        "the second segment bad",
        {"context_id": "d", "segments": [*SEGMENTS, {"speaker": "B", "text": 7}]},
        "segments.1.text",
    ),
    ("prompt_ids a string", GOOD | {"prompt_ids": "summary.v1"}, "prompt_ids"),
    ("prompt_ids a list", GOOD | {"prompt_ids": ["summary.v1"]}, "prompt_ids"),
    ("prompt_ids unknown analysis", GOOD | {"prompt_ids": {"poetry": "p.v1"}}, "prompt_ids"),
    ("prompt id a number", GOOD | {"prompt_ids": {"summary": 1}}, "prompt_ids.summary"),
    ("prompt id empty", GOOD | {"prompt_ids": {"summary": ""}}, "prompt_ids"),
    ("prompt id too long", GOOD | {"prompt_ids": {"summary": "p" * 65}}, "prompt_ids"),
    ("prompt id not printable", GOOD | {"prompt_ids": {"summary": "a\nb"}}, "prompt_ids"),
    ("extra field", GOOD | {"extra": 1}, "extra"),
    ("an event_id (Kafka only)", GOOD | {"event_id": "evt-1"}, "event_id"),
    ("a schema_version (Kafka only)", GOOD | {"schema_version": 1}, "schema_version"),
    (
        "NUL in text",
        {"context_id": "d", "segments": [{"speaker": "A", "text": "a\x00b"}]},
        "segments[0].text",
    ),
    ("NUL in context_id", {"context_id": "d\x00"}, "context_id"),
]


@pytest.mark.parametrize(
    ("body", "field"), [c[1:] for c in FIELD_CASES], ids=[c[0] for c in FIELD_CASES]
)
def test_a_bad_field_is_a_400_naming_it(
    client: FlaskClient, db: Any, sim_calls: Any, body: dict[str, Any], field: str
) -> None:
    answer = error_of(client.post(ANALYZE, json=body), 400)
    assert answer["error"] == "SchemaInvalid"
    named = fields_of(answer)
    assert any(f == field or f.startswith(field + ".") for f in named), named
    assert field in answer["message"]
    assert sim_calls.calls().total == 0
    assert counts(db) == NOTHING


# --- POST /orchestrator/analyze: the body ------------------------------------------------------

BODY_CASES: list[tuple[str, bytes, str, int, str, str]] = [
    # (name, raw body, content type, status, error, text the message must contain)
    ("empty body", b"", "application/json", 400, "InvalidJSON", "not valid JSON"),
    ("whitespace", b" \n", "application/json", 400, "InvalidJSON", "not valid JSON"),
    ("cut-off JSON", b'{"context_id": ', "application/json", 400, "InvalidJSON", "not valid JSON"),
    ("single quotes", b"{'context_id': 'd'}", "application/json", 400, "InvalidJSON", "not valid"),
    (
        "trailing data",
        b'{"context_id": "d"} {}',
        "application/json",
        400,
        "InvalidJSON",
        "Extra data",
    ),
    ("null", b"null", "application/json", 400, "InvalidJSON", "JSON object"),
    ("array", b'[{"context_id": "d"}]', "application/json", 400, "InvalidJSON", "JSON object"),
    ("string", b'"doc-1"', "application/json", 400, "InvalidJSON", "JSON object"),
    ("number", b"42", "application/json", 400, "InvalidJSON", "JSON object"),
    ("NaN", b'{"context_id": NaN}', "application/json", 400, "InvalidJSON", "NaN"),
    (
        "byte-order mark",
        b'\xef\xbb\xbf{"context_id": "d"}',
        "application/json",
        400,
        "InvalidJSON",
        "BOM",
    ),
    (
        "nested too deeply",
        b'{"context_id": "d", "x": ' + b"[" * 2_000 + b"]" * 2_000 + b"}",
        "application/json",
        400,
        "InvalidJSON",
        "nested too deeply",
    ),
    (
        "nested past the depth limit",
        b'{"context_id": "d", "x": ' + b"[" * 100 + b"]" * 100 + b"}",
        "application/json",
        400,
        "InvalidJSON",
        "more than 100 levels",
    ),
    (
        "integer of 5,000 digits",
        b'{"context_id": ' + b"7" * 5_000 + b"}",
        "application/json",
        400,
        "InvalidJSON",
        "4300 digits",
    ),
    (
        "number too large for a float",
        b'{"context_id": "d", "segments": [{"speaker": "A", "text": 1e400}]}',
        "application/json",
        400,
        "InvalidJSON",
        "1e400 is out of range",
    ),
    (
        "raw NUL byte in a string",
        b'{"context_id": "d\x00"}',
        "application/json",
        400,
        "InvalidJSON",
        "Invalid control character",
    ),
    ("not UTF-8", b'{"context_id": "\xff"}', "application/json", 400, "UndecodableEvent", "UTF-8"),
    (
        "Latin-1 despite the charset",
        '{"context_id": "café"}'.encode("latin-1"),
        "application/json; charset=latin-1",
        400,
        "UndecodableEvent",
        "UTF-8",
    ),
    (
        "lone surrogate escape",
        b'{"context_id": "d", "segments": [{"speaker": "A", "text": "\\udfff"}]}',
        "application/json",
        400,
        "UndecodableEvent",
        "segments[0].text",
    ),
    (
        "lone surrogate escape in a key",
        b'{"context_id": "d", "\\ud83d": 1}',
        "application/json",
        400,
        "UndecodableEvent",
        "surrogate",
    ),
    (
        "over the event limit",
        json.dumps(
            {"context_id": "d", "segments": [{"speaker": "A", "text": "x" * 7_000}]}
        ).encode(),
        "application/json",
        413,
        "EventTooLarge",
        f"limit is {MAX_EVENT_BYTES}",
    ),
    (
        "over the body limit",
        json.dumps(
            {"context_id": "d", "segments": [{"speaker": "A", "text": "x" * 9_000}]}
        ).encode(),
        "application/json",
        413,
        "Request Entity Too Large",
        f"limit is {HTTP_MAX_BODY_BYTES}",
    ),
    (
        "text/plain",
        json.dumps(GOOD).encode(),
        "text/plain",
        415,
        "Unsupported Media Type",
        "application/json",
    ),
    (
        "form",
        b"context_id=doc-1",
        "application/x-www-form-urlencoded",
        415,
        "Unsupported Media Type",
        "application/json",
    ),
    (
        "no content type",
        json.dumps(GOOD).encode(),
        "",
        415,
        "Unsupported Media Type",
        "application/json",
    ),
    (
        "multipart",
        b"--b\r\n\r\n--b--",
        "multipart/form-data; boundary=b",
        415,
        "Unsupported Media Type",
        "json",
    ),
]


@pytest.mark.parametrize(
    ("data", "content_type", "status", "error", "says"),
    [c[1:] for c in BODY_CASES],
    ids=[c[0] for c in BODY_CASES],
)
def test_a_bad_body_is_refused_as_json(
    client: FlaskClient,
    db: Any,
    sim_calls: Any,
    data: bytes,
    content_type: str,
    status: int,
    error: str,
    says: str,
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    answer = error_of(client.post(ANALYZE, data=data, headers=headers), status)
    assert answer["error"] == error
    assert says in answer["message"], answer
    assert sim_calls.calls().total == 0
    assert counts(db) == NOTHING


#: A key quoted once per item under it: one path string per item asked for 400 KB x
#: 200,000 items (80 GB) before the first error was raised, and the worker was killed.
WIDE = {"context_id": "d", "segments": SEGMENTS, "x": {"K" * 400_000: [0] * 200_000}}
#: A key the credential-shape masking of error text once took minutes over.
SLOW_KEY = "key " + "a." * 450_000

BIG_BODY_CASES: list[tuple[str, bytes, str, str]] = [
    # (name, body, error, text the message must contain)
    ("a wide key", json.dumps(WIDE).encode(), "SchemaInvalid", "x: Extra inputs are not permitted"),
    (
        "a slow key",
        json.dumps({"context_id": "d", SLOW_KEY: 1}).encode(),
        "SchemaInvalid",
        "AnalyzeRequest is invalid: key a.a.a.",
    ),
    (
        "a megabyte of brackets",
        b'{"context_id": "d", "x": ' + b"[" * 500_000 + b"]" * 500_000 + b"}",
        "InvalidJSON",
        "nested too deeply",
    ),
    (
        "a megabyte of surrogate escapes",
        b'{"context_id": "d", "x": "' + b"\\udfff" * 170_000 + b'"}',
        "UndecodableEvent",
        "x holds an unpaired surrogate",
    ),
    (
        "a megabyte of NUL escapes",
        b'{"context_id": "d", "x": "' + b"\\u0000" * 170_000 + b'"}',
        "SchemaInvalid",
        "x: must not contain NUL",
    ),
]


@pytest.fixture
def full_size(redis_ns: Settings, db: Any, sim_calls: Any) -> Iterator[FlaskClient]:
    """The app with the default limits: a 1 MiB event in a body of up to 2 MiB."""
    for app in make_app(redis_ns):
        yield app.test_client()


@pytest.mark.parametrize(
    ("data", "error", "says"), [c[1:] for c in BIG_BODY_CASES], ids=[c[0] for c in BIG_BODY_CASES]
)
def test_a_megabyte_body_built_to_be_costly_is_a_400_naming_the_problem(
    full_size: FlaskClient, db: Any, sim_calls: Any, data: bytes, error: str, says: str
) -> None:
    assert 900_000 < len(data) <= d.MAX_EVENT_BYTES
    response = full_size.post(ANALYZE, data=data, content_type="application/json")
    answer = error_of(response, 400)
    assert answer["error"] == error
    assert says in answer["message"], answer["message"][:500]
    # What the body chose is quoted, never echoed: the answer stays small.
    assert len(response.get_data()) < 16 * d.MAX_QUOTED_CHARS
    assert sim_calls.calls().total == 0
    assert counts(db) == NOTHING


def test_a_stored_context_that_does_not_exist_and_an_unknown_prompt_cost_nothing(
    client: FlaskClient, db: Any, sim_calls: Any
) -> None:
    missing = error_of(client.post(ANALYZE, json={"context_id": "conv-nowhere"}), 400)
    assert missing["error"] == "ContextNotFound" and "conv-nowhere" in missing["message"]
    other = error_of(
        client.post(ANALYZE, json=GOOD | {"prompt_ids": {"summary": "argument.v1"}}), 400
    )
    assert other["error"] == "UnknownPrompt" and "summary.v1" in other["message"]
    assert sim_calls.calls().total == 0
    assert counts(db) == NOTHING


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_a_wrong_method_is_a_json_405_with_allow(client: FlaskClient, db: Any, method: str) -> None:
    answer = error_of(client.open(ANALYZE, method=method, json=GOOD), 405)
    assert answer["error"] == "Method Not Allowed"
    assert counts(db) == NOTHING


# --- unicode that is fine --------------------------------------------------------------------

UNICODE_TEXTS = [
    "Cars 🚗🚲 make cities loud 👩‍👩‍👧‍👦 (ZWJ family) and 🇫🇷 flags.",
    "الحظر يضر بالمتاجر. מכוניות רועשות.",  # right-to-left: Arabic and Hebrew
    "Cafe\u0301 e\u0308 a\u030a\u0323 Z\u0351\u0352\u0353\u0354\u0355",  # combining marks
    "\u202eRTL override\u202c, zero\u200bwidth, BOM\ufeff inside, nbsp\u00a0here.",
    "漢字かなカナ한국어 " * 20,
    "x" * 2_000,  # long, within the event limit
]


def test_unicode_edge_cases_are_analysed_and_stored_intact(
    client: FlaskClient, db: Any, sim_calls: Any
) -> None:
    segments = [{"speaker": f"Sp€aker-{i}-ع", "text": t} for i, t in enumerate(UNICODE_TEXTS)]
    body = {"context_id": "doc-ü-😀", "language": "ar-EG", "segments": segments}
    # Escaped surrogate pairs are valid JSON for characters outside the BMP.
    raw = json.dumps(body, ensure_ascii=True).encode()
    assert b"\\ud83d\\ude00" in raw and len(raw) < MAX_EVENT_BYTES
    response = client.post(ANALYZE, data=raw, content_type="application/json; charset=utf-8")
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert answer["status"] == "ok"
    with db.connect() as conn:
        run = conn.execute(text("SELECT id, context_id, language FROM analysis_runs")).one()
    assert (run.id, run.context_id, run.language) == (answer["run_id"], "doc-ü-😀", "ar-EG")
    assert sim_calls.calls().total == 4


# --- the read endpoints --------------------------------------------------------------------------

MALFORMED_IDS = [
    "bad%20id",
    "nul%00byte",
    "tab%09id",
    "x" * 65,
    "%C3%A9t%C3%A9",  # non-ASCII
    "%F0%9F%98%80",  # an emoji
    "%FF%FE",  # not UTF-8 once decoded
    "-leading-dash",
    "..",
    "semi;colon",
    "quote%22id",
    "%3Cscript%3E",
]


@pytest.mark.parametrize("raw_id", MALFORMED_IDS)
@pytest.mark.parametrize(
    ("prefix", "field"), [("/conversations/", "conversation_id"), ("/analysis-runs/", "run_id")]
)
def test_a_malformed_id_is_a_400_naming_the_field(
    client: FlaskClient, db: Any, prefix: str, field: str, raw_id: str
) -> None:
    response = client.get(prefix + raw_id)
    answer = error_of(response, 400)
    assert answer["error"] == "SchemaInvalid"
    assert fields_of(answer) == [field]


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/conversations/conv-unknown", "conversation_id=conv-unknown"),
        ("/conversations/" + "c" * 64, "conversation_id=" + "c" * 64),
        ("/analysis-runs/run-unknown", "run_id=run-unknown"),
        ("/analysis-runs/R.1:2_3-4", "run_id=R.1:2_3-4"),
    ],
)
def test_an_unknown_id_is_a_json_404_naming_it(
    client: FlaskClient, db: Any, path: str, name: str
) -> None:
    answer = error_of(client.get(path), 404)
    assert answer["error"] == "NotFound"
    assert name in answer["message"]


@pytest.mark.parametrize(
    ("path", "status"),
    [("/conversations/", 404), ("/conversations", 404), ("/analysis-runs/a/b", 404)],
)
def test_paths_without_an_id_are_json_404s(client: FlaskClient, path: str, status: int) -> None:
    assert error_of(client.get(path), status)["error"] == "Not Found"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["/conversations/conv-1", "/analysis-runs/run-1"])
def test_reads_refuse_other_methods_as_json_405(
    client: FlaskClient, db: Any, method: str, path: str
) -> None:
    response = client.open(path, method=method, json={"status": "done"})
    assert error_of(response, 405)["error"] == "Method Not Allowed"
    assert "GET" in response.headers["Allow"]
    assert counts(db) == NOTHING


# --- authentication ----------------------------------------------------------------------------

BAD_AUTH: list[tuple[str, dict[str, str]]] = [
    ("no header", {}),
    ("empty header", {"Authorization": ""}),
    ("scheme only", {"Authorization": "Bearer"}),
    ("empty token", {"Authorization": "Bearer "}),
    ("wrong token", {"Authorization": "Bearer tok-wrong"}),
    ("token with a suffix", {"Authorization": f"Bearer {TOKEN}x"}),
    ("token prefix", {"Authorization": f"Bearer {TOKEN[:-1]}"}),
    ("basic scheme", {"Authorization": f"Basic {TOKEN}"}),
    ("token without scheme", {"Authorization": TOKEN}),
    ("token in another header", {"X-Api-Token": TOKEN}),
    ("non-ASCII token", {"Authorization": "Bearer tök-ü"}),
]


@pytest.fixture
def guarded(redis_ns: Settings, db: Any, sim_calls: Any) -> Iterator[FlaskClient]:
    for app in make_app(
        redis_ns, api_token=SecretStr(TOKEN), http_max_body_bytes=HTTP_MAX_BODY_BYTES
    ):
        yield app.test_client()


@pytest.mark.parametrize("headers", [c[1] for c in BAD_AUTH], ids=[c[0] for c in BAD_AUTH])
def test_without_the_token_every_guarded_endpoint_is_a_json_401(
    guarded: FlaskClient, db: Any, sim_calls: Any, headers: dict[str, str]
) -> None:
    requests = [
        guarded.post(ANALYZE, json=GOOD, headers=headers),
        guarded.get("/conversations/conv-1", headers=headers),
        guarded.get("/analysis-runs/run-1", headers=headers),
        # Refused before the body is looked at: its size and shape do not matter.
        guarded.post(ANALYZE, data=b"{" * 100, content_type="text/plain", headers=headers),
    ]
    for response in requests:
        answer = error_of(response, 401)
        assert answer["error"] == "Unauthorized"
        assert response.headers["WWW-Authenticate"].lower().startswith("bearer")
        assert TOKEN not in response.get_data(as_text=True)
    assert sim_calls.calls().total == 0
    assert counts(db) == NOTHING


def test_with_the_token_bad_input_is_still_named(guarded: FlaskClient, db: Any) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert guarded.get("/healthz").status_code == 200  # probes stay open
    answer = error_of(guarded.post(ANALYZE, json={"context_id": 5}, headers=auth), 400)
    assert fields_of(answer) == ["context_id"]
    lower = {"Authorization": f"bearer {TOKEN}"}  # the scheme is case-insensitive
    assert error_of(guarded.get("/conversations/conv-x", headers=lower), 404)["error"] == "NotFound"
    assert counts(db) == NOTHING


# --- the same through gunicorn -------------------------------------------------------------------


@pytest.fixture
def server(redis_ns: Settings, db: Any, sim_calls: Any, tmp_path: Path) -> Iterator[Server]:
    settings = redis_ns.model_copy(
        update={
            "http_port": free_port(),
            "http_workers": 1,
            "http_threads": 2,
            "http_max_body_bytes": HTTP_MAX_BODY_BYTES,
            "max_event_bytes": MAX_EVENT_BYTES,
        }
    )
    served = Server(settings, tmp_path / "web.log", tmp_path / "metrics")
    try:
        wait_for(served.answers, timeout_s=60, what="gunicorn to answer /healthz")
        yield served
    finally:
        served.stop()


SERVED: list[tuple[str, str, str, bytes | None, dict[str, str], int, str]] = [
    # (name, method, path, body, headers, status, error)
    (
        "not JSON",
        "POST",
        ANALYZE,
        b"{nope",
        {"Content-Type": "application/json"},
        400,
        "InvalidJSON",
    ),
    (
        "not UTF-8",
        "POST",
        ANALYZE,
        b'{"context_id": "\xc3"}',
        {"Content-Type": "application/json"},
        400,
        "UndecodableEvent",
    ),
    (
        "lone surrogate",
        "POST",
        ANALYZE,
        b'{"context_id": "\\udc00"}',
        {"Content-Type": "application/json"},
        400,
        "UndecodableEvent",
    ),
    (
        "NUL",
        "POST",
        ANALYZE,
        b'{"context_id": "a\\u0000"}',
        {"Content-Type": "application/json"},
        400,
        "SchemaInvalid",
    ),
    (
        "wrong type",
        "POST",
        ANALYZE,
        b'{"context_id": []}',
        {"Content-Type": "application/json"},
        400,
        "SchemaInvalid",
    ),
    (
        "wrong content type",
        "POST",
        ANALYZE,
        b"{}",
        {"Content-Type": "text/plain"},
        415,
        "Unsupported Media Type",
    ),
    (
        "over the body limit",
        "POST",
        ANALYZE,
        b"{" * (HTTP_MAX_BODY_BYTES + 1),
        {"Content-Type": "application/json"},
        413,
        "Request Entity Too Large",
    ),
    (
        "over the event limit",
        "POST",
        ANALYZE,
        b" " * (MAX_EVENT_BYTES + 1) + b"{}",
        {"Content-Type": "application/json"},
        413,
        "EventTooLarge",
    ),
    ("wrong method", "GET", ANALYZE, None, {}, 405, "Method Not Allowed"),
    ("malformed id", "GET", "/conversations/%E2%80%AEevil", None, {}, 400, "SchemaInvalid"),
    ("raw non-ASCII path", "GET", "/analysis-runs/%FF", None, {}, 400, "SchemaInvalid"),
    ("unknown id", "GET", "/analysis-runs/run-none", None, {}, 404, "NotFound"),
]


def test_gunicorn_answers_bad_input_as_json_and_logs_no_traceback(
    server: Server, db: Any, sim_calls: Any
) -> None:
    for name, method, path, body, headers, status, error in SERVED:
        got, response_headers, raw = server.request(method, path, body, headers)
        assert got == status, (name, raw)
        assert response_headers["Content-Type"] == "application/json", name
        assert json.loads(raw)["error"] == error, (name, raw)
    # A request line the server itself refuses never reaches the app (no JSON then),
    # but it must not hurt the server either.
    with contextlib.closing(
        http.client.HTTPConnection("127.0.0.1", server.settings.http_port, timeout=30)
    ) as conn:
        conn.putrequest("GET", "/conversations/" + "x" * 9_000)
        conn.endheaders()
        assert conn.getresponse().status >= 400
    assert server.request("GET", "/healthz")[0] == 200
    assert sim_calls.calls().total == 0
    assert counts(db) == NOTHING
    log = server.log()
    assert "Traceback" not in log, log
