"""Worker logging and tracing: chimera's own log setup (text locally, JSON lines in
production) instead of Celery's; every line a task logs carries the task and the ids of
its work, and so does the task's span when tracing is on."""

from __future__ import annotations

from typing import Any

from celery.signals import setup_logging, task_postrun, task_prerun, worker_init
from opentelemetry.sdk.trace import SpanProcessor

from chimera import tracing
from chimera.logs import bind, clear, configure_logging
from chimera.settings import Settings, get_settings

#: The positional arguments of each task that name its work (None: not an id).
ARG_IDS: dict[str, tuple[str | None, ...]] = {
    "chimera.conversation.start": ("event_id",),
    "chimera.conversation.turn": ("conversation_id", "turn_index"),
    "chimera.conversation.finalize": ("conversation_id",),
    "chimera.analysis.start": ("event_id",),
    "chimera.analysis.part": ("event_id", "analysis"),
    "chimera.analysis.aggregate": (None, "event_id"),
}


@setup_logging.connect
def _configure(**_: Any) -> None:
    configure_logging(get_settings())


def _ids(task: Any, args: tuple[Any, ...]) -> dict[str, Any]:
    names = ARG_IDS.get(task.name, ())
    return {name: value for name, value in zip(names, args, strict=False) if name}


@task_prerun.connect
def _bind(task_id: str, task: Any, args: tuple[Any, ...] = (), **_: Any) -> None:
    bind(task=task.name, task_id=task_id, **_ids(task, args))


@worker_init.connect
def _trace(**_: Any) -> None:
    trace_worker(get_settings())


def trace_worker(settings: Settings, *, processor: SpanProcessor | None = None) -> bool:
    """Trace this worker's tasks when tracing is on (or ``processor`` is given)."""
    if tracing.setup(settings, "worker", processor=processor) is None:
        return False
    # Connected after the Celery instrumentation's own hook, so the task's span exists.
    task_prerun.connect(_annotate, weak=False, dispatch_uid="chimera-span-ids")
    return True


def _annotate(
    task: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None, **_: Any
) -> None:
    ids = {f"chimera.{k}": v for k, v in _ids(task, args).items()}
    if kwargs and "attempt" in kwargs:
        ids["chimera.attempt"] = kwargs["attempt"]
    tracing.annotate(**ids)


@task_postrun.connect
def _clear(**_: Any) -> None:
    clear()
