"""Worker logging: chimera's own setup (text locally, JSON lines in production) instead of
Celery's, and every line a task logs carries the task and the ids of its work."""

from __future__ import annotations

from typing import Any

from celery.signals import setup_logging, task_postrun, task_prerun

from chimera.logs import bind, clear, configure_logging
from chimera.settings import get_settings

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


@task_prerun.connect
def _bind(task_id: str, task: Any, args: tuple[Any, ...] = (), **_: Any) -> None:
    names = ARG_IDS.get(task.name, ())
    ids = {name: value for name, value in zip(names, args, strict=False) if name}
    bind(task=task.name, task_id=task_id, **ids)


@task_postrun.connect
def _clear(**_: Any) -> None:
    clear()
