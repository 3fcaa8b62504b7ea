"""HTTP requests are traced: a server span continues the caller's ``traceparent`` and
the synchronous analysis's LLM calls, run on a thread pool, are its children."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from opentelemetry.trace import SpanKind

from tests.web.test_analyze import BODY, make_client

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"


@pytest.fixture
def traced_client(settings: Any, db: Any, sim_calls: Any, spans: Any) -> Iterator[FlaskClient]:
    yield from make_client(settings)


def test_a_request_continues_the_callers_trace_down_to_each_llm_call(
    traced_client: FlaskClient, spans: Any, sim_calls: Any
) -> None:
    response = traced_client.post(
        "/orchestrator/analyze",
        json=BODY,
        headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
    )
    assert response.status_code == 200, response.json
    response.close()  # the server span ends when the response has been sent

    trace = [s for s in spans.finished() if format(s.context.trace_id, "032x") == CALLER_TRACE]
    (server,) = [s for s in trace if s.kind is SpanKind.SERVER]
    assert server.parent.span_id == int(CALLER_SPAN, 16) and server.parent.is_remote
    assert server.attributes["http.method"] == "POST"
    assert server.attributes["http.target"] == "/orchestrator/analyze"
    assert server.attributes["http.status_code"] == 200
    by_id = {s.context.span_id: s for s in trace}
    calls = [s for s in trace if s.name.startswith("chat ")]
    assert len(calls) == 4 == sim_calls.calls().total
    for call in calls:  # on the pool's threads, still under the request
        parent = by_id[call.parent.span_id]
        while parent is not server:
            parent = by_id[parent.parent.span_id]
    assert sum(s.name == "analysis_runs.record" for s in trace) == 1


def test_the_probes_need_no_trace_and_answer_with_tracing_on(
    traced_client: FlaskClient, spans: Any
) -> None:
    response = traced_client.get("/healthz")
    assert response.status_code == 200
    response.close()
    (server,) = [s for s in spans.finished() if s.kind is SpanKind.SERVER]
    assert server.parent is None  # no caller context: a trace of its own
