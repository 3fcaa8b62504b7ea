"""The LLM layer end to end: real SDKs over HTTP to the simulator, real Redis and Postgres."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal

import pytest
from prometheus_client import REGISTRY, generate_latest
from pydantic import BaseModel, Field, field_validator

from chimera import errors as e
from chimera.llm.client import LLMClient
from chimera.llm.types import CallMeta, LLMRequest, Message
from llmsim import Simulator
from tests.chimera.llm.conftest import MODELS
from tests.helpers import wait_for

PROVIDERS = list(MODELS)


def request(provider: str, text: str = "Should cities ban cars?", **kw: Any) -> LLMRequest:
    return LLMRequest(
        provider=provider,  # type: ignore[arg-type]
        model=MODELS[provider],
        system="You are Ada, a pragmatic urban planner. Topic: should cities ban cars?",
        messages=(Message(role="user", content=text),),
        max_output_tokens=200,
        meta=CallMeta(task="turn", owner_type="conversation", owner_id="conv-1", step="0"),
        **kw,
    )


class Digest(BaseModel):
    summary: str = Field(min_length=1)
    key_points: list[str] = Field(min_length=1, max_length=5)
    sentiment: Literal["positive", "negative", "neutral"]


# --- happy paths ----------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_call_returns_text_usage_and_one_accounted_row(
    provider: str, llm: LLMClient, sim: Simulator, llm_rows: Callable[[], list[Any]]
) -> None:
    response = llm.complete(request(provider))
    assert response.text.strip()
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.provider == provider
    (call,) = sim.calls().calls
    assert (call.provider, call.model, call.status) == (provider, MODELS[provider], 200)
    (row,) = llm_rows()
    assert (row.provider, row.model, row.status, row.attempt) == (
        provider,
        MODELS[provider],
        "ok",
        1,
    )
    assert (row.input_tokens, row.output_tokens) == (call.input_tokens, call.output_tokens)
    assert (row.task, row.owner_type, row.owner_id, row.step) == (
        "turn",
        "conversation",
        "conv-1",
        "0",
    )
    assert (
        row.cost_usd == Decimal(str(response.cost_usd))
        or abs(float(row.cost_usd) - response.cost_usd) < 1e-9
    )


def test_cost_comes_from_the_price_table(llm: LLMClient) -> None:
    response = llm.complete(request("anthropic"))
    expected = (2 * response.usage.input_tokens + 10 * response.usage.output_tokens) / 1_000_000
    assert response.cost_usd == pytest.approx(expected)
    assert llm.complete(request("openai")).cost_usd == 0  # no list price for a local model


@pytest.mark.parametrize("provider", PROVIDERS)
def test_structured_output_validates_against_the_model(
    provider: str, llm: LLMClient, sim: Simulator
) -> None:
    text = "A: Cars pollute the city. B: But buses are slow and crowded. A: Bikes are great."
    response, digest = llm.complete_structured(request(provider, text), Digest)
    assert isinstance(digest, Digest)
    assert response.data is not None
    assert sim.calls().total == 1


class Impossible(BaseModel):
    summary: str

    @field_validator("summary")
    @classmethod
    def _never(cls, v: str) -> str:
        raise ValueError("summary must be written in Latin")


def test_an_invalid_answer_gets_one_repair_then_a_clear_error(
    llm: LLMClient, sim: Simulator, llm_rows: Callable[[], list[Any]]
) -> None:
    with pytest.raises(e.StructuredOutputInvalid, match="written in Latin") as info:
        llm.complete_structured(request("anthropic"), Impossible)
    assert not info.value.retryable
    assert sim.calls().total == 2
    assert [r.prompt_ref for r in llm_rows()] == [None, "adhoc#repair"]


def test_an_unconfigured_provider_is_a_clear_permanent_error(
    make_llm: Callable[..., LLMClient],
) -> None:
    client = make_llm(openai_base_url=None)
    with pytest.raises(e.ProviderNotConfigured, match="'openai' is not configured"):
        client.complete(request("openai"))


# --- faults: each provider's SDK, translated ---------------------------------------------------


RETRYABLE = [
    ("rate_limit", e.RateLimited),
    ("server_error", e.ProviderOverloaded),
    ("unavailable", e.ProviderOverloaded),
    ("overloaded", e.ProviderOverloaded),
    ("timeout", e.LLMTimeout),
    ("reset", e.LLMTimeout),
    ("truncated", e.MalformedResponse),
    ("empty", e.MalformedResponse),
]
PERMANENT = [
    ("bad_request", e.LLMBadRequest),
    ("unauthorized", e.LLMAuthError),
    ("forbidden", e.LLMAuthError),
    ("safety", e.SafetyBlocked),
]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(("fault", "error"), RETRYABLE)
def test_retryable_faults(
    provider: str,
    fault: str,
    error: type[e.LLMError],
    make_llm: Callable[..., LLMClient],
    sim: Simulator,
    llm_rows: Callable[[], list[Any]],
) -> None:
    llm = make_llm(llm_timeout_s=0.5)
    sim.add_fault(fault, provider=provider, retry_after_s=0.2, delay_s=1.5)  # type: ignore[arg-type]
    with pytest.raises(error) as info:
        llm.complete(request(provider))
    assert info.value.retryable
    (row,) = llm_rows()
    assert row.status == "error" and row.error.startswith(error.__name__)
    # The next call goes through (after the 429's hint, which the limiter enforces).
    assert llm.complete(request(provider)).text


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(("fault", "error"), PERMANENT)
def test_permanent_faults_make_exactly_one_call(
    provider: str, fault: str, error: type[e.LLMError], llm: LLMClient, sim: Simulator
) -> None:
    sim.add_fault(fault, provider=provider, count=3)  # type: ignore[arg-type]
    with pytest.raises(error) as info:
        llm.complete_with_retries(request(provider), max_attempts=3)
    assert not info.value.retryable
    assert sim.calls().total == 1


def test_a_spend_cap_429_is_permanent(llm: LLMClient, sim: Simulator) -> None:
    sim.add_fault("spend_cap", provider="anthropic", count=3)
    with pytest.raises(e.SpendCapReached):
        llm.complete_with_retries(request("anthropic"), max_attempts=3)
    assert sim.calls().total == 1


# --- retry-after, fleet-wide ----------------------------------------------------------------------


def test_a_429_hint_is_honoured_by_the_whole_fleet(
    make_llm: Callable[..., LLMClient], sim: Simulator, llm_rows: Callable[[], list[Any]]
) -> None:
    first, second = make_llm(), make_llm()
    sim.add_fault("rate_limit", provider="google", retry_after_s=1.0)
    with pytest.raises(e.RateLimited) as info:
        first.complete(request("google"))
    assert info.value.retry_after_s == pytest.approx(1.0)
    second.complete(request("google"))  # another process: waits out the hint first
    calls = sim.calls().calls
    assert [c.status for c in calls] == [429, 200]
    assert calls[1].ts - calls[0].ts >= 0.95
    assert [r.status for r in llm_rows()] == ["error", "ok"]


def test_sync_retries_wait_for_the_hint(llm: LLMClient, sim: Simulator) -> None:
    sim.add_fault("rate_limit", provider="anthropic", retry_after_s=0.6)
    response = llm.complete_with_retries(request("anthropic"), max_attempts=2, base_s=0.01)
    assert response.attempt == 2
    calls = sim.calls().calls
    assert calls[1].ts - calls[0].ts >= 0.55


def test_a_hint_longer_than_the_wait_bound_becomes_try_later(
    make_llm: Callable[..., LLMClient], sim: Simulator
) -> None:
    llm = make_llm(llm_max_wait_s=0.2)
    slept: list[float] = []
    llm._sleep = slept.append  # the client's own sleep hook: record the waits, take none
    sim.add_fault("rate_limit", provider="openai", retry_after_s=5)
    with pytest.raises(e.RateLimited):
        llm.complete(request("openai"))
    with pytest.raises(e.RateLimited) as info:
        llm.complete(request("openai"))
    assert sum(slept) <= 0.2  # did not hold the caller for the 5 s hint
    assert 4 < (info.value.retry_after_s or 0) <= 5
    assert sim.calls().total == 1  # the second never reached the provider


# --- one budget per provider -------------------------------------------------------------------------


@pytest.mark.parametrize(("scope", "paid"), [("provider", 3), ("model", 6)])
def test_the_models_of_a_provider_share_its_budget_unless_scoped_per_model(
    make_llm: Callable[..., LLMClient],
    sim: Simulator,
    llm_rows: Callable[[], list[Any]],
    scope: str,
    paid: int,
) -> None:
    llm = make_llm(rate_limit_requests_per_minute=3, llm_limit_scope=scope, llm_max_wait_s=0.0)
    refused: list[str] = []
    for model in ["llama-3.3-70b", "m"] * 5:
        try:
            llm.complete(request("openai").model_copy(update={"model": model}))
        except e.RateLimited:
            refused.append(model)
    calls = sim.calls().calls
    assert len(calls) == paid and all(c.status == 200 for c in calls)
    # Whichever name a call uses, it is refused once the budget it counts in is spent.
    assert len(refused) == 10 - paid and set(refused) == {"llama-3.3-70b", "m"}
    assert len(llm_rows()) == paid  # a refused call never reached the provider


# --- the breaker, fleet-wide ------------------------------------------------------------------------


def test_a_storm_opens_the_breaker_for_everyone_and_one_probe_closes_it(
    make_llm: Callable[..., LLMClient], sim: Simulator
) -> None:
    settings = {"breaker_failure_threshold": 3, "breaker_cooldown_s": 2.0, "llm_timeout_s": 10.0}
    a, b = make_llm(**settings), make_llm(**settings)
    sim.add_fault("overloaded", provider="anthropic", count=3)
    for client in (a, b, a):
        with pytest.raises(e.ProviderOverloaded):
            client.complete(request("anthropic"))
    with pytest.raises(e.CircuitOpen) as info:
        b.complete(request("anthropic"))
    assert info.value.retryable and 0 < (info.value.retry_after_s or 0) <= 2.0
    assert sim.calls().total == 3  # the open breaker kept the 4th call away

    time.sleep(2.05)  # past the cooldown
    sim.configure(ttft_ms=3_000)  # the probe takes a while; a second caller arrives meanwhile
    outcomes: dict[str, Any] = {}

    def call(name: str, client: LLMClient) -> None:
        try:
            outcomes[name] = client.complete(request("anthropic")).text
        except e.ChimeraError as exc:
            outcomes[name] = exc

    probe = threading.Thread(target=call, args=("probe", a))
    probe.start()
    wait_for(lambda: sim.calls().total == 4, what="the probe to reach the provider")
    call("other", b)
    probe.join()
    assert isinstance(outcomes["probe"], str)
    assert isinstance(outcomes["other"], e.CircuitOpen)
    assert sim.calls().total == 4  # exactly one probe
    sim.configure(ttft_ms=0)
    assert b.complete(request("anthropic")).text  # closed again, for everyone


def test_permanent_errors_do_not_open_the_breaker(
    make_llm: Callable[..., LLMClient], sim: Simulator
) -> None:
    llm = make_llm(breaker_failure_threshold=2)
    sim.add_fault("bad_request", provider="openai", count=4)
    for _ in range(4):
        with pytest.raises(e.LLMBadRequest):
            llm.complete(request("openai"))
    assert llm.complete(request("openai")).text


# --- accounting matches the provider's own log ---------------------------------------------------


def test_every_attempt_has_one_row_matching_the_providers_log(
    make_llm: Callable[..., LLMClient], sim: Simulator, llm_rows: Callable[[], list[Any]]
) -> None:
    llm = make_llm(llm_timeout_s=0.5)
    sim.add_fault("server_error", provider="google")
    sim.add_fault("truncated", provider="openai")
    sim.add_fault("safety", provider="anthropic")
    for provider in PROVIDERS * 3:
        with contextlib.suppress(e.LLMError):
            llm.complete(request(provider, f"Round on {provider}"))
    calls, rows = sim.calls().calls, llm_rows()
    assert len(rows) == len(calls) == 9
    for call, row in zip(calls, rows, strict=True):
        assert (row.provider, row.model) == (call.provider, call.model)
        assert row.status == ("ok" if call.status == 200 and call.fault is None else "error")
        if row.status == "ok":
            assert (row.input_tokens, row.output_tokens) == (call.input_tokens, call.output_tokens)
    assert sum(r.status == "error" for r in rows) == 3


def test_a_call_for_a_model_that_is_not_configured_is_counted_as_other(
    llm: LLMClient, sim: Simulator
) -> None:
    def calls_of(model: str) -> float:
        labels = {"provider": "openai", "model": model, "status": "ok", "error_class": ""}
        return REGISTRY.get_sample_value("chimera_llm_calls_total", labels) or 0.0

    before = calls_of("other")
    llm.complete(request("openai").model_copy(update={"model": "gpt-unlisted"}))
    assert sim.calls().calls[0].model == "gpt-unlisted"
    assert calls_of("other") == before + 1
    assert b"gpt-unlisted" not in generate_latest(REGISTRY)


# --- limits shared by OS processes, counted by the provider ------------------------------------------


WORKER = """
import json, sys
from chimera import errors
from chimera.db.engine import make_engine
from chimera.llm.registry import build_client
from chimera.llm.types import LLMRequest, Message
from chimera.redis_client import make_redis
from chimera.settings import get_settings

settings = get_settings()
client = build_client(settings, redis_client=make_redis(settings), engine=make_engine(settings))
outcomes = {"ok": 0, "limited": 0, "other": 0}
for i in range(int(sys.argv[1])):
    req = LLMRequest(provider="openai", model="llama-3.3-70b", max_output_tokens=50,
                     messages=(Message(role="user", content=f"call {i} " + "word " * 40),))
    try:
        client.complete(req)
        outcomes["ok"] += 1
    except errors.RateLimited:
        outcomes["limited"] += 1
    except errors.ChimeraError:
        outcomes["other"] += 1
client.close()  # writes the pending llm_calls rows
print(json.dumps(outcomes))
"""


@pytest.mark.parametrize(
    ("limits", "sim_limits"),
    [({"rpm": 12}, {"rpm": 12}), ({"rpm": 1000, "itpm": 1200}, {"itpm": 1200})],
    ids=["requests", "input-tokens"],
)
def test_two_processes_never_exceed_the_providers_limit(
    llm_settings: Any, sim: Simulator, limits: dict[str, int], sim_limits: dict[str, int]
) -> None:
    import json
    import os
    import subprocess
    import sys

    from chimera.settings import to_env
    from chimera.settings_values import ModelLimits
    from tests.conftest import PROJECT_ROOT

    sim.configure(model_limits={"llama-3.3-70b": sim_limits})
    settings = llm_settings.model_copy(
        update={
            "llm_limits": {"openai/llama-3.3-70b": ModelLimits(**limits)},
            "llm_max_wait_s": 0.0,
        }
    )
    env = os.environ | to_env(settings)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, "20"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outcomes = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    ok = sum(o["ok"] for o in outcomes)
    assert sum(o["other"] for o in outcomes) == 0
    assert sum(o["limited"] for o in outcomes) == 40 - ok
    snapshot = sim.calls()
    assert snapshot.count(status=429) == 0  # the provider never had to refuse anyone
    assert snapshot.count(status=200) == ok
    if "rpm" in sim_limits:
        assert ok == 12  # the whole budget was used, and not one call more
    else:
        used = sum(c.input_tokens for c in snapshot.calls)
        assert 0 < used <= 1200
        assert ok >= 2
