"""OpenTelemetry tracing: one trace per input event, from its Kafka record to every
LLM call, write and output record it causes.

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set: every helper below then returns
at once (a fraction of a microsecond), without even OpenTelemetry's no-op API,
which costs ~8 us a span here.  Each process
calls ``setup`` once at start (the bridge, the worker, the web app, beat); it
installs the SDK with an OTLP/HTTP exporter (the exporter reads the other
standard ``OTEL_EXPORTER_OTLP_*`` variables itself) and, in the worker, the
Celery instrumentation, which carries the context in task headers from the
bridge's hand-off through every chained turn, chord part and callback.

Kafka carries the context as a W3C ``traceparent`` header: the bridge continues
the trace a producer started, and every record Chimera produces (output events
and dead letters) carries the span that produced it.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.trace import INVALID_SPAN, Link, Span, SpanKind, Status, StatusCode

from chimera.settings import Settings

log = logging.getLogger(__name__)

TRACER = trace.get_tracer("chimera")

Headers = Sequence[tuple[str, bytes]]
P = ParamSpec("P")
R = TypeVar("R")

#: Attributes of a span around a Postgres write.
POSTGRES = {"db.system.name": "postgresql"}
#: Attributes of a span around a Redis operation.
REDIS = {"db.system.name": "redis"}

_lock = threading.Lock()


class _State:
    #: The provider ``setup`` installed (at most one per process: OpenTelemetry's rule).
    provider: TracerProvider | None = None
    #: Whether Chimera makes spans (what every helper below checks first).
    on = False


def enabled(settings: Settings) -> bool:
    """Whether this process exports traces (an OTLP endpoint is configured)."""
    disabled = os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    return bool(settings.otel_exporter_otlp_endpoint) and not disabled


def setup(
    settings: Settings, role: str, *, processor: SpanProcessor | None = None
) -> TracerProvider | None:
    """Install tracing for this process (once); None when it stays off.

    Tracing is on when an OTLP endpoint is configured or ``processor`` is given; a
    later call while it is on returns the same provider.  ``processor`` replaces the
    OTLP exporter (tests pass an in-memory one).
    ``role`` ("bridge", "worker", "web", "beat", "cli") becomes the ``chimera.role``
    resource attribute; the worker also gets the Celery instrumentation.
    """
    with _lock:
        provider = _State.provider
        if not _State.on and processor is None and not enabled(settings):
            return None  # off, and nothing asks for it (a provider left by ``stop`` stays off)
        if provider is None:
            if processor is None:
                # Imported here (~0.25 s): a process that does not trace never loads it.
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
                    OTLPSpanExporter,
                )
                from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

                processor = BatchSpanProcessor(OTLPSpanExporter())
            resource = Resource.create(
                {"service.name": settings.otel_service_name, "chimera.role": role}
            )
            provider = TracerProvider(resource=resource)
            provider.add_span_processor(processor)
            trace.set_tracer_provider(provider)
            _State.provider = provider
            log.info(
                "tracing on: %s spans to %s",
                role,
                settings.otel_exporter_otlp_endpoint or type(processor).__name__,
            )
        _State.on = True
    if role == "worker":
        instrument_celery(provider)
    return provider


def stop() -> None:
    """Make no more spans in this process (tests; ``setup`` turns it on again)."""
    with _lock:
        _State.on = False
        if _State.provider is None:
            return
    from opentelemetry.instrumentation.celery import CeleryInstrumentor  # noqa: PLC0415

    instrumentor = CeleryInstrumentor()  # type: ignore[no-untyped-call]
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    shutdown()


def instrument_celery(provider: TracerProvider) -> None:
    """Spans for every task run and publish, the context carried in task headers."""
    # ~0.4 s to import: only processes that trace load it.
    from opentelemetry.instrumentation.celery import CeleryInstrumentor  # noqa: PLC0415

    instrumentor = CeleryInstrumentor()  # type: ignore[no-untyped-call]
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=provider)


def shutdown() -> None:
    """Export what is pending (process exit does it too; workers call it at shutdown)."""
    if _State.provider is not None:
        _State.provider.force_flush(5_000)


# --- Kafka ------------------------------------------------------------------------------------


class _HeadersGetter(Getter[Headers]):
    """Reads a propagation field from Kafka record headers (a list of (str, bytes))."""

    def get(self, carrier: Headers, key: str) -> list[str] | None:
        values = [v.decode("latin-1") for k, v in carrier or () if k.lower() == key and v]
        return values or None

    def keys(self, carrier: Headers) -> list[str]:
        return [k for k, _ in carrier or ()]


_HEADERS = _HeadersGetter()


def start_consuming(record: Any) -> Span:
    """Start (not enter) the span of one consumed record, continuing the trace in its
    headers, if any; ``within`` enters it, ``end`` ends it."""
    if not _State.on:
        return INVALID_SPAN
    parent = propagate.extract(record.headers or (), getter=_HEADERS)
    return TRACER.start_span(
        f"{record.topic} process",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.destination.name": record.topic,
            "messaging.destination.partition.id": str(record.partition),
            "messaging.kafka.offset": record.offset,
        },
    )


@contextmanager
def within(current: Span) -> Iterator[Span]:
    """Make a started span the current one for the block, and end it after."""
    if not current.is_recording():
        yield current
        return
    with trace.use_span(
        current, end_on_exit=True, record_exception=False, set_status_on_exception=False
    ):
        try:
            yield current
        except BaseException as exc:
            failed(current, exc)
            raise


def end(current: Span, exc: BaseException | None = None) -> None:
    """End a started span unless it has ended (an ended span records nothing more)."""
    if current.is_recording():
        if exc is not None:
            failed(current, exc)
        current.end()


@contextmanager
def linked(name: str, spans: Sequence[Span]) -> Iterator[Span]:
    """A span of work done for several traces at once (a batch), in a trace of its own
    with a link to each."""
    if not _State.on:
        yield INVALID_SPAN
        return
    links = [Link(s.get_span_context()) for s in spans if s.get_span_context().is_valid]
    with TRACER.start_as_current_span(
        name, context=otel_context.Context(), links=links, record_exception=False
    ) as current:
        yield current


@contextmanager
def producing(topic: str, key: bytes | str | None = None) -> Iterator[Span]:
    """The span of producing to ``topic``; ``traceparent()`` inside it names this span."""
    if not _State.on:
        yield INVALID_SPAN
        return
    with TRACER.start_as_current_span(f"{topic} publish", kind=SpanKind.PRODUCER) as span:
        if span.is_recording():
            span.set_attributes({"messaging.system": "kafka", "messaging.destination.name": topic})
            if key is not None:
                k = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
                span.set_attribute("messaging.kafka.message.key", k)
        yield span


def traceparent() -> str | None:
    """The current span as a W3C ``traceparent`` value (None outside a recorded trace)."""
    if not _State.on:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def with_traceparent(headers: Headers) -> list[tuple[str, bytes]]:
    """``headers`` with their trace context replaced by the current span's, if any."""
    if not _State.on:
        return list(headers)
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if not carrier:
        return list(headers)
    return [(k, v) for k, v in headers if k.lower() not in carrier] + [
        (k, v.encode()) for k, v in carrier.items()
    ]


@contextmanager
def continuing(traceparent: str | None) -> Iterator[None]:
    """Run the block as part of the trace ``traceparent`` names (from another process)."""
    if not traceparent or not _State.on:
        yield
        return
    token = otel_context.attach(propagate.extract({"traceparent": traceparent}))
    try:
        yield
    finally:
        otel_context.detach(token)


def inject(carrier: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Write the current trace context into ``carrier`` (e.g. Celery task headers)."""
    if _State.on:
        propagate.inject(carrier)
    return carrier


# --- spans of Chimera's own steps --------------------------------------------------------------


@contextmanager
def span(
    name: str, kind: SpanKind = SpanKind.INTERNAL, attributes: Mapping[str, Any] | None = None
) -> Iterator[Span]:
    """A child span of the current one; an exception marks it failed (class name only:
    exception messages can carry input text)."""
    if not _State.on:
        yield INVALID_SPAN
        return
    with TRACER.start_as_current_span(
        name, kind=kind, record_exception=False, set_status_on_exception=False
    ) as current:
        if attributes and current.is_recording():
            current.set_attributes({k: v for k, v in attributes.items() if v is not None})
        try:
            yield current
        except BaseException as exc:
            failed(current, exc)
            raise


def traced(
    name: str, attributes: Mapping[str, Any] | None = None, kind: SpanKind = SpanKind.INTERNAL
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function so each call is a child span ``name``."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            if not _State.on:
                return fn(*args, **kwargs)
            with span(name, kind, attributes):
                return fn(*args, **kwargs)

        return inner

    return decorate


def postgres(name: str, operation: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a Postgres write: each call is a client span ``name``."""
    return traced(name, POSTGRES | {"db.operation.name": operation}, SpanKind.CLIENT)


def failed(current: Span, exc: BaseException) -> None:
    """Mark ``current`` failed with the exception's class (its message may hold input text)."""
    if current.is_recording():
        current.set_attribute("error.type", type(exc).__name__)
        current.set_status(Status(StatusCode.ERROR, type(exc).__name__))


def current_ids() -> dict[str, str]:
    """The current trace and span ids (hex), for log lines; empty when not tracing."""
    if not _State.on:
        return {}
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
    }


def annotate(**attributes: Any) -> None:
    """Set attributes on the current span (a task's run span, for instance)."""
    if not _State.on:
        return
    current = trace.get_current_span()
    if current.is_recording():
        current.set_attributes({k: v for k, v in attributes.items() if v is not None})
