"""Counting the runs of a task that died with their worker.

With late acks and reject-on-worker-lost, a task that kills its worker (a
segfault, an OOM kill on one input) is redelivered for ever, taking the worker
and everything else it ran down each time (celery#9082, docs/reliability.md).  A run
increments its task id's counter when it begins; one that is put back for later
(a retry) takes its own increment back; one that finishes clears the counter.
What is left counts the runs that died.  Copies of a task share its id (a
re-sent chain), so a copy that bounces off a busy lease must not clear what the
others left.  Past a small cap the next run gives up instead of running, and its
work is failed and dead-lettered.
"""

from __future__ import annotations

import logging

import redis

from chimera import defaults as d
from chimera.errors import ChimeraError
from chimera.redis_errors import redis_errors
from chimera.settings import Settings

log = logging.getLogger(__name__)

_RELEASE = """
if redis.call('DECR', KEYS[1]) <= 0 then redis.call('DEL', KEYS[1]) end
return 1
"""


class CrashCounter:
    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self._redis = client
        self._settings = settings
        self._release = client.register_script(_RELEASE)
        # Longer than any redelivery cycle (the visibility timeout), bounded anyway.
        self._ttl_s = settings.visibility_timeout_s * (d.TASK_MAX_CRASHES + 2)

    def _key(self, task_id: str) -> str:
        return self._settings.redis_key(d.KEY_TASK_STARTS, task_id)

    def begin(self, task_id: str) -> int:
        """Note a run beginning; return how many earlier runs never ended.

        Redis away: 0 (the run goes ahead; the task meets the outage itself).
        """
        try:
            with redis_errors("INCR failed"):
                pipe = self._redis.pipeline()
                pipe.incr(self._key(task_id))
                pipe.expire(self._key(task_id), self._ttl_s)
                started = int(pipe.execute()[0])
        except ChimeraError as exc:
            log.debug("cannot count the runs of %s: %s", task_id, exc)
            return 0
        return started - 1

    def end(self, task_id: str) -> None:
        """The task finished (done or failed for good): its history no longer matters."""
        try:
            with redis_errors("DEL failed"):
                self._redis.delete(self._key(task_id))
        except ChimeraError as exc:  # it expires by itself
            log.debug("cannot clear the runs of %s: %s", task_id, exc)

    def put_back(self, task_id: str) -> None:
        """This run ended by asking to be retried later: take back its own count only."""
        try:
            with redis_errors("DECR failed"):
                self._release(keys=[self._key(task_id)])
        except ChimeraError as exc:  # it expires by itself
            log.debug("cannot count down the runs of %s: %s", task_id, exc)

    @staticmethod
    def exhausted(crashes: int) -> bool:
        return crashes >= d.TASK_MAX_CRASHES
