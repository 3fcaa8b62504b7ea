"""Traces leave the process over OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set,
and tracing stays off, with no SDK or exporter loaded, when it is not."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from chimera.kafka.clients import make_producer
from chimera.settings import Settings, to_env
from tests.bridges.conftest import (  # noqa: F401 - fixtures
    CELERYCONFIG_DEPRECATION,
    bridge_process,
    bridge_settings,
    conversation,
    queued,
)
from tests.conftest import PROJECT_ROOT
from tests.helpers import wait_for

pytestmark = pytest.mark.filterwarnings(CELERYCONFIG_DEPRECATION)

UPSTREAM_TRACE = "5b8efff798038103d269b633813fc60c"
UPSTREAM_SPAN = "eee19b7ec3c1b174"


class Collector:
    """A minimal OTLP/HTTP trace endpoint: keeps each export request it is sent."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, ExportTraceServiceRequest]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                collector.requests.append((self.path, request))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def spans(self) -> list[tuple[dict[str, Any], Any]]:
        """(resource attributes, span) of every span received."""
        found = []
        for _, request in self.requests:
            for rs in request.resource_spans:
                resource = {a.key: a.value.string_value for a in rs.resource.attributes}
                found.extend((resource, span) for ss in rs.scope_spans for span in ss.spans)
        return found


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.server.shutdown()


def test_the_bridge_process_exports_its_spans_over_otlp(
    bridge_settings: Settings,  # noqa: F811
    db: Any,
    bridge_process: Any,  # noqa: F811
    collector: Collector,
) -> None:
    s = bridge_settings.model_copy(
        update={"otel_exporter_otlp_endpoint": collector.url, "otel_service_name": "chimera-bridge"}
    )
    producer = make_producer(s)
    try:
        producer.send(
            s.topic_conversation_new,
            key=b"evt-otlp",
            value=json.dumps(conversation("evt-otlp")).encode(),
            headers=[("traceparent", f"00-{UPSTREAM_TRACE}-{UPSTREAM_SPAN}-01".encode())],
        ).get(timeout=10)
    finally:
        producer.close()
    bridge = bridge_process(s)
    wait_for(lambda: len(queued(s)) == 1, timeout_s=60, what="the hand-off")
    bridge.signal(signal.SIGTERM)
    assert bridge.wait(30) == 0, bridge.log()

    # Sent by the end of the process at the latest (the batch is flushed at exit).
    assert {path for path, _ in collector.requests} == {"/v1/traces"}
    spans = collector.spans()
    (resource, record) = next(
        (r, sp) for r, sp in spans if sp.name == f"{s.topic_conversation_new} process"
    )
    assert resource["service.name"] == "chimera-bridge"
    assert resource["chimera.role"] == "bridge"
    assert record.trace_id.hex() == UPSTREAM_TRACE
    assert record.parent_span_id.hex() == UPSTREAM_SPAN
    attributes = {a.key: a.value for a in record.attributes}
    assert attributes["chimera.event_id"].string_value == "evt-otlp"
    # The batch's inbox writes are spans of their own, linked to each record's.
    batches = {
        sp.span_id: sp.name
        for _, sp in spans
        if any(link.span_id == record.span_id for link in sp.links)
    }
    writes = {
        sp.name: batches[sp.parent_span_id] for _, sp in spans if sp.parent_span_id in batches
    }
    assert writes == {"inbox.accept": "1 records recorded", "inbox.mark": "1 events dispatched"}
    # The hand-off's task message carries the trace on to the worker.
    (task,) = queued(s)
    assert task.traceparent is not None and task.traceparent.split("-")[1] == UPSTREAM_TRACE


OFF = """
import sys
from opentelemetry import trace
from chimera import tracing
from chimera.settings import load_settings

settings = load_settings()
provider = tracing.setup(settings, "bridge")
with tracing.span("step") as span:
    recording = span.is_recording()
print(provider is None, recording, type(trace.get_tracer_provider()).__name__,
      "opentelemetry.exporter.otlp.proto.http.trace_exporter" in sys.modules)
"""


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, "True False ProxyTracerProvider False"),
        ({"OTEL_SDK_DISABLED": "true"}, "True False ProxyTracerProvider False"),
    ],
    ids=["no-endpoint", "sdk-disabled"],
)
def test_without_an_endpoint_tracing_stays_off(
    settings: Settings, collector: Collector, extra: dict[str, str], expected: str
) -> None:
    env = {k: v for k, v in to_env(settings).items() if not k.startswith("OTEL_")}
    if extra:  # an endpoint, but the SDK switched off
        env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url} | extra
    result = subprocess.run(
        [sys.executable, "-c", OFF],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env={"PATH": "/usr/bin:/bin"} | env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected
    assert collector.requests == []
