"""``POST /orchestrator/analyze``: the four analyses now, in parallel, answered as one bundle.

The body is parsed by the same codec as Kafka events (so the same input is refused
for the same reasons, naming the field); the work runs on the executor the
settings choose (threads, or Ray), and the run is recorded with source ``realtime``.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any

from flask import Blueprint, Flask, current_app, request
from werkzeug.exceptions import UnsupportedMediaType

from chimera.analysis.executors import make_executor
from chimera.analysis.realtime import RealtimeAnalyzer
from chimera.codec import parse_json_object, validate_event
from chimera.llm.registry import build_client
from chimera.models import AnalyzeRequest
from chimera.redis_client import make_redis
from chimera.settings import Settings
from web.resources import resources

bp = Blueprint("analyze", __name__)

_EXTENSION = "chimera.analyzer"
_lock = threading.Lock()


@bp.post("/orchestrator/analyze")
def analyze() -> tuple[dict[str, Any], int]:
    if not request.is_json:
        raise UnsupportedMediaType("send the body as application/json")
    settings: Settings = current_app.config["CHIMERA_SETTINGS"]
    body = parse_json_object(request.get_data(cache=False), max_bytes=settings.max_event_bytes)
    analysis = validate_event(AnalyzeRequest, body)
    run = analyzer(current_app).analyze(analysis)
    return {
        "run_id": run.run_id,
        "status": run.result.status,
        "latency_ms": round(run.latency_ms, 1),
        **run.result.bundle,
    }, 200


def analyzer(app: Flask) -> RealtimeAnalyzer:
    """This app's analyzer and the clients it uses, made on first use (after any fork)."""
    found = app.extensions.get(_EXTENSION)
    if found is not None:
        return found  # type: ignore[no-any-return]
    with _lock:
        if _EXTENSION not in app.extensions:
            settings: Settings = app.config["CHIMERA_SETTINGS"]
            engine = resources(app).engine
            llm = build_client(settings, redis_client=make_redis(settings), engine=engine)
            executor = make_executor(settings, llm)
            app.extensions[_EXTENSION] = RealtimeAnalyzer(
                settings, engine=engine, executor=executor
            )

            def close() -> None:
                executor.close()
                llm.close()  # writes the pending llm_calls rows

            atexit.register(close)
            app.extensions[_EXTENSION + ".close"] = close
        return app.extensions[_EXTENSION]  # type: ignore[no-any-return]
