"""What our LLM layer adds to a call: limiter + breaker + validation + accounting.

Against the simulator (its own process, zero latency), alternate N calls through
``LLMClient.complete`` with N bare ``anthropic`` SDK calls of the same request,
and report median and p99 of each and their difference.  Target: <= 1 ms median
added (LiteLLM publishes ~2 ms median for its router).

    PYTHONPATH=. .venv/bin/python bench/llm_overhead.py [--calls 400]
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.common import scratch_environment, simulator, summary_ms, write_result

TARGET_MS = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=400)
    args = parser.parse_args()

    with scratch_environment(), simulator() as base_url:
        import anthropic

        from chimera.db import admin
        from chimera.db.engine import make_engine
        from chimera.llm.registry import build_client
        from chimera.llm.types import LLMRequest, Message
        from chimera.redis_client import make_redis
        from chimera.settings import load_settings

        # A limit the run never reaches: the limiter still does all its work on every call.
        settings = load_settings(
            anthropic_base_url=base_url,
            anthropic_api_key="bench",
            rate_limit_requests_per_minute=1_000_000,
        )
        admin.upgrade(settings)
        engine = make_engine(settings)
        client = build_client(settings, redis_client=make_redis(settings), engine=engine)
        bare = anthropic.Anthropic(api_key="bench", base_url=base_url, max_retries=0)
        request = LLMRequest(
            provider="anthropic",
            model="claude-sonnet-5-5",
            system="You are a concise debater.",
            messages=(Message(role="user", content="Should cities ban cars?"),),
            max_output_tokens=64,
        )
        kwargs = {
            "model": request.model,
            "max_tokens": request.max_output_tokens,
            "system": request.system,
            "messages": [{"role": "user", "content": request.messages[0].content}],
        }
        for _ in range(20):  # warm connections, scripts and caches on both paths
            bare.messages.create(**kwargs)
            client.complete(request)

        ours: list[float] = []
        sdk: list[float] = []
        for _ in range(args.calls):
            t0 = time.perf_counter()
            bare.messages.create(**kwargs)
            t1 = time.perf_counter()
            client.complete(request)
            t2 = time.perf_counter()
            sdk.append(t1 - t0)
            ours.append(t2 - t1)
        client.close()
        bare.close()
        engine.dispose()

    added = [(o - s) for o, s in zip(ours, sdk, strict=True)]
    result = {
        "bare_sdk": summary_ms(sdk),
        "chimera_layer": summary_ms(ours),
        "added_median_ms": statistics.median(ours) * 1000 - statistics.median(sdk) * 1000,
        "added_p99_ms": summary_ms(ours)["p99_ms"] - summary_ms(sdk)["p99_ms"],
        "paired_added": summary_ms(added),
        "target_added_median_ms": TARGET_MS,
    }
    result["pass"] = result["added_median_ms"] <= TARGET_MS
    write_result("llm_overhead", result)
    print("| path | median ms | p99 ms |\n|---|---:|---:|")
    for label, key in (("bare anthropic SDK", "bare_sdk"), ("through LLMClient", "chimera_layer")):
        print(f"| {label} | {result[key]['median_ms']:.2f} | {result[key]['p99_ms']:.2f} |")
    verdict = "PASS" if result["pass"] else "MISS"
    print(
        f"added: median {result['added_median_ms']:.2f} ms, p99 {result['added_p99_ms']:.2f} ms "
        f"(target <= {TARGET_MS} ms median): {verdict}"
    )


if __name__ == "__main__":
    main()
