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

from chimera.analysis.runner import PartResult
from chimera.errors import ChimeraError
from chimera.models import ANALYSIS_KINDS
from chimera.redis_errors import redis_errors
from chimera.settings import Settings


class PartStore:
    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self._redis = client
        self._settings = settings
        self._ttl_ms = settings.result_expires_s * 1000

    def _key(self, run_id: str, kind: str) -> str:
        return self._settings.redis_key("analysis", f"{{{run_id}}}", kind)

    def get(self, run_id: str, kind: str) -> PartResult | None:
        with redis_errors("cannot read an analysis result", run_id=run_id):
            raw = self._redis.get(self._key(run_id, kind))
        return PartResult.from_dict(json.loads(raw)) if raw else None

    def put(self, run_id: str, result: PartResult) -> PartResult:
        """Keep ``result`` unless one is kept already; returns the one kept."""
        key = self._key(run_id, result.kind)
        with redis_errors("cannot keep an analysis result", run_id=run_id):
            if self._redis.set(key, json.dumps(result.to_dict()), nx=True, px=self._ttl_ms):
                return result
            raw = self._redis.get(key)
        return PartResult.from_dict(json.loads(raw)) if raw else result

    def _active_key(self, run_id: str, kind: str) -> str:
        return self._settings.redis_key("analysis", f"{{{run_id}}}", kind, "active")

    def hold(self, run_id: str, kind: str, seconds: float) -> None:
        """Mark ``kind`` of the run active for ``seconds`` (it calls, or waits to retry).
        Best effort: without the mark the reconciler may re-send a chord, which costs
        a duplicate header, never a second stored result."""
        with contextlib.suppress(ChimeraError), redis_errors("cannot mark it active"):
            self._redis.set(self._active_key(run_id, kind), "1", px=max(1, int(seconds * 1000)))

    def active(self, run_id: str) -> bool:
        """True while any part of the run is marked active."""
        keys = [self._active_key(run_id, kind) for kind in ANALYSIS_KINDS]
        with redis_errors("cannot read an analysis's progress", run_id=run_id):
            return bool(self._redis.exists(*keys))

    def mark_sent(self, run_id: str) -> bool:
        """True the first time a run's chord is sent (later hand-offs send nothing)."""
        with redis_errors("cannot mark the chord sent", run_id=run_id):
            return bool(self._redis.set(self._key(run_id, "chord"), "1", nx=True, px=self._ttl_ms))

    def forget(self, run_id: str, kinds: tuple[str, ...]) -> None:
        """Drop a finished run's results and marker (they expire anyway)."""
        # They expire by themselves.
        with contextlib.suppress(ChimeraError), redis_errors("cannot forget the run"):
            self._redis.delete(
                *(self._key(run_id, k) for k in (*kinds, "chord")),
                *(self._active_key(run_id, k) for k in kinds),
            )
