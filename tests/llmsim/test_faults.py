"""Each injectable fault, as each real SDK surfaces it.

What the SDKs raise (anthropic 2.12, google-genai 3.4, openai 3.54; SDK retries off).  Error
classification code depends on this table; every cell is asserted below.

============  =================================  ===============================  ===============================
fault         anthropic                          google-genai                     openai
============  =================================  ===============================  ===============================
rate_limit    RateLimitError (429),              errors.ClientError code 429,     RateLimitError (429),
              header retry-after                 status RESOURCE_EXHAUSTED,       header retry-after,
                                                 RetryInfo.retryDelay in          code rate_limit_exceeded
                                                 .details["error"]["details"]
spend_cap     EnforcedSpendLimitReachedError     ClientError 429                  RateLimitError (429),
              (⊂ RateLimitError), .error_code    RESOURCE_EXHAUSTED, no           code insufficient_quota,
              enforced_spend_limit_reached,      RetryInfo                        no retry-after
              no retry-after
server_error  InternalServerError (500)          errors.ServerError code 500      InternalServerError (500)
unavailable   ServiceUnavailableError (503,      ServerError 503 UNAVAILABLE      InternalServerError (503)
              ⊂ InternalServerError)
overloaded    OverloadedError (529,              ServerError 503 UNAVAILABLE      InternalServerError (503),
              ⊂ InternalServerError)             "model is overloaded"            code overloaded
timeout       APITimeoutError                    httpx2.ReadTimeout (raw, not     APITimeoutError
              (⊂ APIConnectionError)             wrapped)
reset         APIConnectionError                 httpx2.ReadError (raw,           APIConnectionError
                                                 "Connection reset by peer")
truncated     json.JSONDecodeError (bare)        json.JSONDecodeError (bare)      json.JSONDecodeError (bare)
safety        no exception: stop_reason          no exception: .text is None,     no exception: finish_reason
              "refusal", content []              .prompt_feedback.block_reason    "content_filter", content ""
                                                 SAFETY, no candidates
bad_request   BadRequestError (400)              ClientError 400 INVALID_ARGUMENT BadRequestError (400)
unauthorized  AuthenticationError (401)          ClientError 401 UNAUTHENTICATED  AuthenticationError (401)
forbidden     PermissionDeniedError (403)        ClientError 403                  PermissionDeniedError (403)
                                                 PERMISSION_DENIED
empty         no exception: text "",             no exception: .text "",          no exception: content "",
              .usage is None                     .usage_metadata is None          .usage is None
============  =================================  ===============================  ===============================

Streaming calls raise the same errors when the stream is opened.  A ``truncated`` stream ends
early but cleanly: anthropic yields no ``message_stop`` (the final message has ``stop_reason``
None), google-genai and openai simply yield fewer chunks (no finish reason).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from google import genai
from google.genai import errors

from llmsim import Simulator
from tests.llmsim.clients import anthropic_for, gemini_for, http, openai_for

Calls = dict[str, Callable[[], Any]]


@pytest.fixture(scope="session")
def quick_clients(
    shared_sim: Simulator,
) -> Iterator[tuple[anthropic.Anthropic, genai.Client, openai.OpenAI]]:
    """Clients with a 1 s timeout, for the session."""
    clients = (
        anthropic_for(shared_sim, 1.0),
        gemini_for(shared_sim, 1.0),
        openai_for(shared_sim, 1.0),
    )
    yield clients
    for client in clients:
        client.close()


@pytest.fixture
def calls(
    sim: Simulator, quick_clients: tuple[anthropic.Anthropic, genai.Client, openai.OpenAI]
) -> Calls:
    """One plain (non-streamed) call per provider; a timeout fault stalls 3 s, the clients wait 1 s."""
    claude, gemini, gpt = quick_clients
    sim.configure(timeout_fault_delay_s=3.0)
    return {
        "anthropic": lambda: claude.messages.create(
            model="claude-x",
            max_tokens=200,
            messages=[{"role": "user", "content": "Talk about trains."}],
        ),
        "google": lambda: gemini.models.generate_content(
            model="gemini-x", contents="Talk about trains."
        ),
        "openai": lambda: gpt.chat.completions.create(
            model="gpt-x", messages=[{"role": "user", "content": "Talk about trains."}]
        ),
    }


STATUS_ERRORS: dict[str, dict[str, tuple[type[Exception], int]]] = {
    "rate_limit": {
        "anthropic": (anthropic.RateLimitError, 429),
        "google": (errors.ClientError, 429),
        "openai": (openai.RateLimitError, 429),
    },
    "spend_cap": {
        "anthropic": (anthropic.EnforcedSpendLimitReachedError, 429),
        "google": (errors.ClientError, 429),
        "openai": (openai.RateLimitError, 429),
    },
    "server_error": {
        "anthropic": (anthropic.InternalServerError, 500),
        "google": (errors.ServerError, 500),
        "openai": (openai.InternalServerError, 500),
    },
    "unavailable": {
        "anthropic": (anthropic.ServiceUnavailableError, 503),
        "google": (errors.ServerError, 503),
        "openai": (openai.InternalServerError, 503),
    },
    "overloaded": {
        "anthropic": (anthropic.OverloadedError, 529),
        "google": (errors.ServerError, 503),
        "openai": (openai.InternalServerError, 503),
    },
    "bad_request": {
        "anthropic": (anthropic.BadRequestError, 400),
        "google": (errors.ClientError, 400),
        "openai": (openai.BadRequestError, 400),
    },
    "unauthorized": {
        "anthropic": (anthropic.AuthenticationError, 401),
        "google": (errors.ClientError, 401),
        "openai": (openai.AuthenticationError, 401),
    },
    "forbidden": {
        "anthropic": (anthropic.PermissionDeniedError, 403),
        "google": (errors.ClientError, 403),
        "openai": (openai.PermissionDeniedError, 403),
    },
}
PROVIDERS = ("anthropic", "google", "openai")


def _status(exc: Exception) -> int:
    return int(exc.code if isinstance(exc, errors.APIError) else exc.status_code)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("kind", sorted(STATUS_ERRORS))
def test_status_faults(sim: Simulator, calls: Calls, kind: str, provider: str) -> None:
    expected, status = STATUS_ERRORS[kind][provider]
    sim.add_fault(kind, provider=provider)
    with pytest.raises(expected) as info:
        calls[provider]()
    assert type(info.value) is expected
    assert _status(info.value) == status
    calls[provider]()  # the fault was for one call only
    assert [(c.status, c.fault) for c in sim.calls().calls] == [(status, kind), (200, None)]


def test_rate_limit_fault_details(sim: Simulator, calls: Calls) -> None:
    for provider in PROVIDERS:
        sim.add_fault("rate_limit", provider=provider, retry_after_s=7)
    with pytest.raises(anthropic.RateLimitError) as claude_info:
        calls["anthropic"]()
    assert claude_info.value.response.headers["retry-after"] == "7"
    assert claude_info.value.type == "rate_limit_error"
    with pytest.raises(errors.ClientError) as gemini_info:
        calls["google"]()
    assert gemini_info.value.status == "RESOURCE_EXHAUSTED"
    details = gemini_info.value.details["error"]["details"]
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"} in details
    with pytest.raises(openai.RateLimitError) as gpt_info:
        calls["openai"]()
    assert gpt_info.value.response.headers["retry-after"] == "7"
    assert gpt_info.value.code == "rate_limit_exceeded"


def test_spend_cap_has_an_error_code_and_no_retry_after(sim: Simulator, calls: Calls) -> None:
    for provider in PROVIDERS:
        sim.add_fault("spend_cap", provider=provider)
    with pytest.raises(anthropic.EnforcedSpendLimitReachedError) as claude_info:
        calls["anthropic"]()
    assert isinstance(claude_info.value, anthropic.RateLimitError)
    assert claude_info.value.error_code == "enforced_spend_limit_reached"
    assert "retry-after" not in claude_info.value.response.headers
    with pytest.raises(errors.ClientError) as gemini_info:
        calls["google"]()
    kinds = {d["@type"].rsplit(".", 1)[-1] for d in gemini_info.value.details["error"]["details"]}
    assert "RetryInfo" not in kinds and "QuotaFailure" in kinds
    with pytest.raises(openai.RateLimitError) as gpt_info:
        calls["openai"]()
    assert gpt_info.value.code == "insufficient_quota"
    assert "retry-after" not in gpt_info.value.response.headers


def test_timeout(sim: Simulator, calls: Calls) -> None:
    sim.add_fault("timeout", count=3)
    with pytest.raises(anthropic.APITimeoutError):
        calls["anthropic"]()
    with pytest.raises(httpx2.ReadTimeout):
        calls["google"]()
    with pytest.raises(openai.APITimeoutError):
        calls["openai"]()
    assert [c.fault for c in sim.calls().calls] == ["timeout"] * 3


def test_reset(sim: Simulator, calls: Calls) -> None:
    sim.add_fault("reset", count=3)
    with pytest.raises(anthropic.APIConnectionError) as info:
        calls["anthropic"]()
    assert not isinstance(info.value, anthropic.APITimeoutError)
    with pytest.raises(httpx2.ReadError):
        calls["google"]()
    with pytest.raises(openai.APIConnectionError):
        calls["openai"]()
    assert [c.status for c in sim.calls().calls] == [None, None, None]
    assert sim.calls().count(status=None) == 3


@pytest.mark.parametrize("provider", PROVIDERS)
def test_truncated_body_is_a_bare_json_error(sim: Simulator, calls: Calls, provider: str) -> None:
    sim.add_fault("truncated", provider=provider)
    with pytest.raises(json.JSONDecodeError):
        calls[provider]()


def test_safety(sim: Simulator, calls: Calls) -> None:
    sim.add_fault("safety", count=3)
    message = calls["anthropic"]()
    assert message.stop_reason == "refusal" and message.content == []
    response = calls["google"]()
    assert response.text is None and not response.candidates
    assert response.prompt_feedback.block_reason.value == "SAFETY"
    choice = calls["openai"]().choices[0]
    assert choice.finish_reason == "content_filter" and choice.message.content == ""


def test_empty(sim: Simulator, calls: Calls) -> None:
    sim.add_fault("empty", count=3)
    message = calls["anthropic"]()
    assert message.content[0].text == "" and message.usage is None
    response = calls["google"]()
    assert response.text == "" and response.usage_metadata is None
    completion = calls["openai"]()
    assert completion.choices[0].message.content == "" and completion.usage is None


def test_faults_on_streams(
    sim: Simulator, claude: anthropic.Anthropic, gemini: genai.Client, gpt: openai.OpenAI
) -> None:
    sim.add_fault("overloaded", provider="anthropic")
    with pytest.raises(anthropic.OverloadedError):  # noqa: SIM117 - the error comes from opening
        with claude.messages.stream(
            model="c", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        ) as s:
            s.get_final_message()
    sim.add_fault("truncated", provider="anthropic")
    with claude.messages.stream(
        model="c", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as s:
        final = s.get_final_message()
    assert final.stop_reason is None
    sim.add_fault("truncated", provider="google")
    chunks = list(gemini.models.generate_content_stream(model="g", contents="Tell me about trams."))
    assert chunks and chunks[-1].candidates and chunks[-1].candidates[0].finish_reason is None
    sim.add_fault("truncated", provider="openai")
    stream = gpt.chat.completions.create(
        model="o", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    assert all(c.choices[0].finish_reason is None for c in stream if c.choices)
    sim.add_fault("safety", provider="google")
    [blocked] = list(gemini.models.generate_content_stream(model="g", contents="hi"))
    assert blocked.prompt_feedback and blocked.prompt_feedback.block_reason


def test_queued_faults_match_provider_and_model_in_order(sim: Simulator, calls: Calls) -> None:
    sim.add_fault("server_error", count=2, model="gemini-x")
    sim.add_fault("unavailable", provider="anthropic")
    calls["openai"]()  # neither fault matches
    with pytest.raises(anthropic.ServiceUnavailableError):
        calls["anthropic"]()
    for _ in range(2):
        with pytest.raises(errors.ServerError):
            calls["google"]()
    calls["google"]()
    calls["anthropic"]()
    assert sim.faults() == []
    log = sim.calls()
    assert log.count(status=200) == 3 and log.count(status=500) == 2 and log.count(status=503) == 1


def test_status_override(sim: Simulator, calls: Calls) -> None:
    sim.add_fault("overloaded", provider="google", status=529)
    with pytest.raises(errors.APIError) as info:
        calls["google"]()
    assert info.value.code == 529


def test_invalid_requests_do_not_consume_faults(sim: Simulator, calls: Calls) -> None:
    sim.add_fault("server_error")
    status, _, _ = http(
        sim,
        "POST",
        "/v1/chat/completions",
        {"model": "m", "messages": []},
        {"authorization": "Bearer k"},
    )
    assert status == 400
    with pytest.raises(openai.InternalServerError):
        calls["openai"]()


def test_fault_rates_are_seeded(make_sim: Callable[..., Simulator]) -> None:
    def pattern(seed: int) -> list[int | None]:
        simulator = make_sim(seed=seed)
        simulator.add_fault("server_error", rate=0.5)
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(30):
            http(simulator, "POST", "/v1/chat/completions", body, {"authorization": "Bearer k"})
        return [c.status for c in simulator.calls().calls]

    first = pattern(7)
    assert first == pattern(7)
    assert 5 < first.count(500) < 25
    assert first != pattern(8)
