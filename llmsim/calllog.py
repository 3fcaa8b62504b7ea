"""The call log: one record per provider request, plus running counts per (provider, model, status).

A record is written once the simulator has decided the outcome, before the first byte of the
answer is sent, so a client that has its answer always finds its call here.  The list keeps the
latest ``max_records`` records (bounded memory under load); the counts cover every call since
the last reset.  ``status`` is ``None`` for a connection reset (no response at all).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import Any

CountKey = tuple[str, str, int | None]
_ANY = "any"


@dataclass(frozen=True)
class CallRecord:
    id: int
    ts: float  # Unix time
    provider: str  # "anthropic", "google", "openai" or "unknown"
    model: str
    endpoint: str  # the path template, e.g. "/v1/messages"
    status: int | None
    fault: str | None  # the injected fault kind, if any
    limited: str | None  # the simulator limit that refused the call: "requests", "input_tokens"…
    input_tokens: int
    output_tokens: int
    stream: bool
    request_id: str
    #: The JSON request body, kept only with ``record_bodies`` (sampling parameters, prompts).
    body: dict[str, Any] | None = None
    #: The defect planted in the answer (``llmsim.defects``): ground truth for a scorer.
    planted: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CallLogSnapshot:
    calls: list[CallRecord]
    counts: dict[CountKey, int]
    total: int

    def count(
        self,
        provider: str | None = None,
        model: str | None = None,
        status: int | str | None = _ANY,
    ) -> int:
        """Calls matching every filter given (``status="any"`` by default; ``None`` = reset)."""
        return sum(
            n
            for (p, m, s), n in self.counts.items()
            if (provider is None or p == provider)
            and (model is None or m == model)
            and status in (_ANY, s)
        )

    def to_json(self) -> dict[str, Any]:
        counts = [
            {"provider": p, "model": m, "status": s, "count": n}
            for (p, m, s), n in sorted(
                self.counts.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or 0)
            )
        ]
        return {"calls": [c.to_json() for c in self.calls], "counts": counts, "total": self.total}


class CallLog:
    def __init__(self, max_records: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._records: deque[CallRecord] = deque(maxlen=max_records)
        self._counts: Counter[CountKey] = Counter()
        self._ids = itertools.count(1)

    def append(
        self,
        *,
        provider: str,
        model: str,
        endpoint: str,
        status: int | None,
        request_id: str,
        fault: str | None = None,
        limited: str | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        stream: bool = False,
        body: dict[str, Any] | None = None,
        planted: str | None = None,
    ) -> CallRecord:
        with self._lock:
            record = CallRecord(
                id=next(self._ids),
                ts=time.time(),
                provider=provider,
                model=model,
                endpoint=endpoint,
                status=status,
                fault=fault,
                limited=limited,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                stream=stream,
                request_id=request_id,
                body=body,
                planted=planted,
            )
            self._records.append(record)
            self._counts[(provider, model, status)] += 1
            return record

    def snapshot(self, limit: int | None = None) -> CallLogSnapshot:
        """The latest ``limit`` records (all kept ones by default) and the counts."""
        with self._lock:
            records = list(self._records)
            counts = dict(self._counts)
        if limit is not None:
            records = records[-limit:] if limit > 0 else []
        return CallLogSnapshot(records, counts, sum(counts.values()))

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self._counts.clear()
