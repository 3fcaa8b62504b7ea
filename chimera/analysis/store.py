"""Each analysis's result kept under (run, analysis), first writer wins: a re-run header
returns what was stored, so a chord never sees two different results for one header.

Beside the results, a run's parts mark themselves active while one calls or waits to
retry; the reconciler leaves an active run alone (slow, not stuck) rather than send
its chord again beside the one still running.
"""

from __future__ import annotations

import contextlib
import json

import redis
from redis.exceptions import RedisError

from chimera.analysis.runner import PartResult
from chimera.errors import RedisUnavailable
from chimera.models import ANALYSIS_KINDS
from chimera.settings import Settings


class PartStore:
    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self._redis = client
        self._settings = settings
        self._ttl_ms = settings.result_expires_s * 1000

    def _key(self, run_id: str, kind: str) -> str:
        return self._settings.redis_key("analysis", f"{{{run_id}}}", kind)

    def get(self, run_id: str, kind: str) -> PartResult | None:
        try:
            raw = self._redis.get(self._key(run_id, kind))
        except RedisError as exc:
            raise RedisUnavailable(f"cannot read an analysis result: {exc}", run_id=run_id) from exc
        return PartResult.from_dict(json.loads(raw)) if raw else None

    def put(self, run_id: str, result: PartResult) -> PartResult:
        """Keep ``result`` unless one is kept already; returns the one kept."""
        key = self._key(run_id, result.kind)
        try:
            if self._redis.set(key, json.dumps(result.to_dict()), nx=True, px=self._ttl_ms):
                return result
            raw = self._redis.get(key)
        except RedisError as exc:
            raise RedisUnavailable(f"cannot keep an analysis result: {exc}", run_id=run_id) from exc
        return PartResult.from_dict(json.loads(raw)) if raw else result

    def _active_key(self, run_id: str, kind: str) -> str:
        return self._settings.redis_key("analysis", f"{{{run_id}}}", kind, "active")

    def hold(self, run_id: str, kind: str, seconds: float) -> None:
        """Mark ``kind`` of the run active for ``seconds`` (it calls, or waits to retry).
        Best effort: without the mark the reconciler may re-send a chord, which costs
        a duplicate header, never a second stored result."""
        with contextlib.suppress(RedisError):
            self._redis.set(self._active_key(run_id, kind), "1", px=max(1, int(seconds * 1000)))

    def active(self, run_id: str) -> bool:
        """True while any part of the run is marked active."""
        keys = [self._active_key(run_id, kind) for kind in ANALYSIS_KINDS]
        try:
            return bool(self._redis.exists(*keys))
        except RedisError as exc:
            raise RedisUnavailable(
                f"cannot read an analysis's progress: {exc}", run_id=run_id
            ) from exc

    def mark_sent(self, run_id: str) -> bool:
        """True the first time a run's chord is sent (later hand-offs send nothing)."""
        try:
            return bool(self._redis.set(self._key(run_id, "chord"), "1", nx=True, px=self._ttl_ms))
        except RedisError as exc:
            raise RedisUnavailable(f"cannot mark the chord sent: {exc}", run_id=run_id) from exc

    def forget(self, run_id: str, kinds: tuple[str, ...]) -> None:
        """Drop a finished run's results and marker (they expire anyway)."""
        with contextlib.suppress(RedisError):  # they expire by themselves
            self._redis.delete(
                *(self._key(run_id, k) for k in (*kinds, "chord")),
                *(self._active_key(run_id, k) for k in kinds),
            )
