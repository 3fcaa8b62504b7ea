"""Tasks for the Celery baselines (``bench/pool_choice.py``, ``bench/baselines.py``); loaded
into a bench worker with ``-I bench.pool_tasks``."""

from __future__ import annotations

import time

from celery import shared_task


@shared_task(name="bench.noop")  # type: ignore[untyped-decorator]  # celery is untyped
def noop() -> None:
    """Do nothing: the round trip measures broker, pool and result-backend overhead."""


@shared_task(name="bench.io_sleep")  # type: ignore[untyped-decorator]  # celery is untyped
def io_sleep(seconds: float) -> float:
    """Block for ``seconds`` like an LLM HTTP call would; return the wall time it ended."""
    time.sleep(seconds)
    return time.time()


@shared_task(name="bench.collect")  # type: ignore[untyped-decorator]  # celery is untyped
def collect(results: list[object]) -> int:
    """A chord callback that does nothing with its header's results but count them."""
    return len(results)
