"""The simulator's own per-model rate limits: a sliding 60 s window."""

from __future__ import annotations

import anthropic
import openai
import pytest
from google import genai
from google.genai import errors

from llmsim import Limits, Simulator
from llmsim.limits import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_requests_per_minute_slide() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    limits = Limits(rpm=3)
    for _ in range(3):
        assert limiter.admit("m", limits, 10).allowed
        clock.now += 10
    refused = limiter.admit("m", limits, 10)
    assert not refused.allowed and refused.exceeded == "requests"
    assert refused.retry_after_s == pytest.approx(30.0)  # the first call leaves the window at t+60
    assert refused.retry_after_whole_s == 30
    clock.now += 30
    assert limiter.admit("m", limits, 10).allowed
    assert limiter.admit("other-model", limits, 10).allowed  # windows are per model


def test_input_tokens_per_minute() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    limits = Limits(itpm=100)
    assert limiter.admit("m", limits, 60).allowed
    clock.now += 5
    assert limiter.admit("m", limits, 30).allowed
    refused = limiter.admit("m", limits, 20)
    assert refused.exceeded == "input_tokens" and refused.retry_after_s == pytest.approx(55.0)
    too_big = limiter.admit("m", limits, 101)
    assert not too_big.allowed and too_big.retry_after_s == 60.0


def test_output_tokens_are_charged_after_the_call() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    limits = Limits(otpm=50)
    first = limiter.admit("m", limits, 1)
    assert first.allowed
    limiter.record_output(first, 50)
    clock.now += 1
    refused = limiter.admit("m", limits, 1)
    assert refused.exceeded == "output_tokens" and refused.retry_after_s == pytest.approx(59.0)
    quota = {q.name: q for q in first.quotas}["output_tokens"]
    assert (quota.limit, quota.remaining) == (
        50,
        50,
    )  # as it stood when the first call was admitted


def test_unlimited_models_are_not_tracked() -> None:
    limiter = RateLimiter()
    assert all(limiter.admit("m", Limits(), 10**9).allowed for _ in range(1000))
    assert limiter._windows == {}


def test_anthropic_429_with_retry_after_and_ratelimit_headers(
    sim: Simulator, claude: anthropic.Anthropic
) -> None:
    sim.configure(limits={"rpm": 2, "itpm": 10_000})
    request = {
        "model": "claude-x",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "hi there"}],
    }
    ok = claude.messages.with_raw_response.create(**request)
    assert ok.headers["anthropic-ratelimit-requests-limit"] == "2"
    assert ok.headers["anthropic-ratelimit-requests-remaining"] == "1"
    assert ok.headers["anthropic-ratelimit-input-tokens-limit"] == "10000"
    assert ok.headers["anthropic-ratelimit-requests-reset"].endswith("Z")
    claude.messages.create(**request)
    with pytest.raises(anthropic.RateLimitError) as info:
        claude.messages.create(**request)
    headers = info.value.response.headers
    assert 55 <= int(headers["retry-after"]) <= 60
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert claude.messages.create(**{**request, "model": "claude-y"})
    log = sim.calls()
    assert log.count(model="claude-x", status=429) == 1 and log.calls[2].limited == "requests"


def test_per_model_override_and_other_providers(
    sim: Simulator, gemini: genai.Client, gpt: openai.OpenAI
) -> None:
    sim.configure(model_limits={"gemini-x": {"rpm": 1}, "gpt-x": {"rpm": 1}})
    gemini.models.generate_content(model="gemini-x", contents="hello")
    with pytest.raises(errors.ClientError) as gemini_info:
        gemini.models.generate_content(model="gemini-x", contents="hello")
    assert gemini_info.value.code == 429 and gemini_info.value.status == "RESOURCE_EXHAUSTED"
    retry = [
        d for d in gemini_info.value.details["error"]["details"] if d["@type"].endswith("RetryInfo")
    ]
    assert retry and 55 <= int(retry[0]["retryDelay"].rstrip("s")) <= 60
    gemini.models.generate_content(model="gemini-other", contents="hello")  # default: unlimited
    gpt.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.RateLimitError) as gpt_info:
        gpt.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": "hi"}])
    assert 55 <= int(gpt_info.value.response.headers["retry-after"]) <= 60
    assert gpt_info.value.response.headers["x-ratelimit-remaining-requests"] == "0"


def test_output_token_limit_end_to_end(sim: Simulator, gpt: openai.OpenAI) -> None:
    sim.configure(limits={"otpm": 20})
    gpt.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "Discuss rail policy."}]
    )
    with pytest.raises(openai.RateLimitError, match="output_tokens"):
        gpt.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Discuss rail policy."}]
        )
