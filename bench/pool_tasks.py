"""Tasks for ``bench/pool_choice.py``; loaded into a worker with ``-I bench.pool_tasks``."""

from __future__ import annotations

import time

from celery import shared_task


@shared_task(name="bench.noop")
def noop() -> None:
    """Do nothing: the round trip measures broker, pool and result-backend overhead."""


@shared_task(name="bench.io_sleep")
def io_sleep(seconds: float) -> float:
    """Block for ``seconds`` like an LLM HTTP call would; return the wall time it ended."""
    time.sleep(seconds)
    return time.time()
