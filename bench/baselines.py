"""Baselines measured in the same run as the figures they divide: what the simulator and the
SDK cost without Chimera, and what Celery costs without our tasks (``bench.pool_tasks`` on the
same pool, broker and worker as the scenario)."""

from __future__ import annotations

import time
from typing import Any

from celery import Celery, chain, chord

TURN_PROMPT = "Should cities ban cars? Give your view in a few sentences."


class BareSdk:
    """Turn-sized requests sent straight through the SDKs of the default participants
    (Anthropic and Gemini, alternately): a call without limiter, breaker or accounting."""

    def __init__(self, sim_url: str) -> None:
        import anthropic
        from google import genai
        from google.genai import types

        self._claude = anthropic.Anthropic(api_key="bench", base_url=sim_url, max_retries=0)
        self._gemini = genai.Client(
            api_key="bench", http_options=types.HttpOptions(base_url=sim_url)
        )
        self._config = types.GenerateContentConfig(
            max_output_tokens=400, system_instruction="Debate."
        )
        self._i = 0
        for _ in range(4):
            self.call()

    def call(self) -> float:
        """One call; its seconds."""
        self._i += 1
        t0 = time.perf_counter()
        if self._i % 2:
            self._gemini.models.generate_content(
                model="gemini-3.5-flash", contents=TURN_PROMPT, config=self._config
            )
        else:
            self._claude.messages.create(
                model="claude-sonnet-5-5",
                max_tokens=400,
                system="Debate.",
                messages=[{"role": "user", "content": TURN_PROMPT}],
            )
        return time.perf_counter() - t0

    def close(self) -> None:
        self._claude.close()


def noop_round_trip(app: Celery) -> float:
    """Seconds for one ``bench.noop`` sent and its result read."""
    t0 = time.perf_counter()
    app.send_task("bench.noop").get(timeout=30)
    return time.perf_counter() - t0


def chain_link(app: Celery, links: int) -> float:
    """Seconds per link of a chain of ``links`` no-ops, end to end."""
    noop = app.signature("bench.noop", immutable=True)
    t0 = time.perf_counter()
    chain(*[noop.clone() for _ in range(links)]).apply_async().get(timeout=30)
    return (time.perf_counter() - t0) / links


def chains_at_once(app: Celery, count: int, links: int) -> float:
    """``count`` chains of ``links`` no-ops sent at once; seconds until all have finished."""
    noop = app.signature("bench.noop", immutable=True)
    t0 = time.perf_counter()
    results = [chain(*[noop.clone() for _ in range(links)]).apply_async() for _ in range(count)]
    for result in results:
        result.get(timeout=60)
    return time.perf_counter() - t0


def chord_of_four(app: Celery) -> float:
    """Seconds for a chord of four no-ops and a ``bench.collect`` callback."""
    noop = app.signature("bench.noop", immutable=True)
    t0 = time.perf_counter()
    result = chord([noop.clone() for _ in range(4)])(app.signature("bench.collect"))
    counted = result.get(timeout=30)
    elapsed = time.perf_counter() - t0
    result.forget()
    if counted != 4:
        raise RuntimeError(f"the chord callback saw {counted} results, not 4")
    return elapsed


def publish_rate(app: Celery, queue: str, count: int) -> float:
    """Tasks per second a client publishes (results ignored, as the bridge sends hand-offs)
    to ``queue``, which no worker consumes."""
    with app.producer_or_acquire() as producer:
        t0 = time.perf_counter()
        for _ in range(count):
            app.send_task("bench.noop", queue=queue, producer=producer, ignore_result=True)
        return count / (time.perf_counter() - t0)


def sim_settings(sim_config: dict[str, Any]) -> dict[str, Any]:
    """The simulator's configured latency and limits, recorded beside the figures."""
    keys = ("ttft_ms", "ms_per_token", "limits", "model_limits")
    return {k: sim_config.get(k) for k in keys}
