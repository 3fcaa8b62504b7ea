"""What the two analysis scenarios share: the input text, the simulated latency L, the
simulator's call log, and the floor they are set beside (the four requests sent straight
through the SDK on four threads)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.common import Sim

#: The simulated latency of every LLM call, in ms.
L_MS = 1000.0
SEGMENTS = [
    {"speaker": "Ana", "text": "Cars make cities loud. Everyone knows bans always work."},
    {"speaker": "Ben", "text": "A ban would hurt shops. Ana only says that because she cycles."},
    {"speaker": "Ana", "text": "Shops did well on every pedestrian street I have seen."},
]


def sim_calls(sim: Sim, last: int) -> tuple[int, list[float]]:
    """The simulator's call count, and when it had each of its ``last`` calls (Unix time,
    taken before it waits out its latency)."""
    answer = sim.calls(last)
    return int(answer["total"]), [float(c["ts"]) for c in answer["calls"]]


class BareFanout:
    """The four analyses' requests sent straight through the ``anthropic`` SDK on four
    threads: what the simulator and the SDK cost without Chimera."""

    def __init__(self, sim_url: str) -> None:
        import anthropic

        from chimera.analysis.prompts import PROMPTS
        from chimera.settings import load_settings

        settings = load_settings()
        self._client = anthropic.Anthropic(api_key="bench", base_url=sim_url, max_retries=0)
        self._model = settings.analysis_model
        self._max_tokens = settings.analysis_max_output_tokens
        self._text = "The text to analyse:\n\n" + "\n\n".join(
            f"{s['speaker']}: {s['text']}" for s in SEGMENTS
        )
        self._specs = [p for p in PROMPTS.values() if p.id.endswith(".v1")]
        self._pool = ThreadPoolExecutor(max_workers=len(self._specs))
        self.sample()  # warm up

    def _call(self, spec: Any) -> None:
        name = spec.schema.__name__
        self._client.messages.create(
            model=self._model,
            max_tokens=self._max_tokens,
            system=spec.system("en"),
            messages=[{"role": "user", "content": self._text}],
            tools=[{"name": name, "input_schema": spec.schema.model_json_schema()}],
            tool_choice={"type": "tool", "name": name},
        )

    def sample(self) -> float:
        """Milliseconds for the four, in parallel."""
        t0 = time.perf_counter()
        list(self._pool.map(self._call, self._specs))
        return (time.perf_counter() - t0) * 1000

    def close(self) -> None:
        self._pool.shutdown()
        self._client.close()
