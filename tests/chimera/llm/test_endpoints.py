"""Named OpenAI-compatible endpoints (CHIMERA_OPENAI_ENDPOINTS): participants of one
conversation on two servers, each endpoint with its own limits, breaker, catalog and
accounting, and the participant's ``endpoint`` checked by name.

Each endpoint is a simulator of its own; the session's simulator stands for the default
``openai`` (OPENAI_BASE_URL), which no call here may reach.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from chimera.analysis.executors import actor_env
from chimera.codec import decode_event
from chimera.conversation.engine import ConversationEngine
from chimera.conversation.export import export_conversations
from chimera.conversation.turns import Finish, Next, attempt_turn, conclude
from chimera.db.tables import ConversationTurn, LLMCall
from chimera.errors import CircuitOpen, LimiterRefused, RateLimited, SchemaInvalid
from chimera.llm.client import LLMClient
from chimera.llm.types import LLMRequest, Message
from chimera.settings import Settings, load_settings, to_env
from chimera.settings_values import ModelLimits, OpenAIEndpoint
from llmsim import SimConfig, Simulator
from tests.chimera.conversation.test_turns import row, started

MODEL = "llama-3.3-70b"  # the same model on both endpoints: only the endpoint tells them apart
ROUTES = {"openai:alpha": [MODEL], "openai:beta": [MODEL]}


@pytest.fixture(scope="module")
def two_sims() -> Iterator[tuple[Simulator, Simulator]]:
    with Simulator(SimConfig(seed=21)) as alpha, Simulator(SimConfig(seed=22)) as beta:
        yield alpha, beta


@pytest.fixture
def sims(two_sims: tuple[Simulator, Simulator]) -> Iterator[tuple[Simulator, Simulator]]:
    for sim in two_sims:
        sim.reset(config=True)
    yield two_sims
    for sim in two_sims:
        sim.reset(config=True)


def endpoints(sims: tuple[Simulator, Simulator]) -> dict[str, OpenAIEndpoint]:
    alpha, beta = sims
    return {
        "alpha": OpenAIEndpoint(base_url=f"{alpha.base_url}/v1", api_key="alpha-key-1234"),
        "beta": OpenAIEndpoint(base_url=f"{beta.base_url}/v1"),
    }


@pytest.fixture
def engine(
    make_engine: Callable[..., ConversationEngine], sims: tuple[Simulator, Simulator]
) -> ConversationEngine:
    """A conversation engine whose settings name the two endpoints."""
    return make_engine(openai_endpoints=endpoints(sims), llm_models=ROUTES)


def test_each_participant_reaches_its_own_endpoint(
    engine: ConversationEngine, db: Any, sims: tuple[Simulator, Simulator], sim_calls: Any
) -> None:
    alpha, beta = sims
    participants = [
        {"provider": "openai", "endpoint": "alpha", "model": MODEL, "name": "Local"},
        {"provider": "openai", "endpoint": "beta", "model": MODEL, "name": "Remote"},
    ]
    _, cid = started(engine, min_turns=4, max_turns=4, participants=participants)
    assert [attempt_turn(engine, cid, i) for i in range(4)] == [Next(), Next(), Next(), Finish()]
    assert conclude(engine, cid, analyse=lambda c: None) is None
    assert row(db, cid).status == "completed"

    # Turns 0 and 2 went to alpha, 1 and 3 to beta; none to the default openai.
    assert alpha.calls().count(provider="openai", model=MODEL, status=200) == 2
    assert beta.calls().count(provider="openai", model=MODEL, status=200) == 2
    assert sim_calls.calls().total == 0

    engine.llm.flush()
    with db.connect() as conn:
        calls = conn.execute(
            select(LLMCall.provider, LLMCall.model, LLMCall.step, LLMCall.status)
            .where(LLMCall.owner_id == cid)
            .order_by(LLMCall.step)
        ).all()
        turns = conn.execute(
            select(ConversationTurn.speaker, ConversationTurn.provider)
            .where(ConversationTurn.conversation_id == cid)
            .order_by(ConversationTurn.turn_index)
        ).all()
    # Each stored turn names its endpoint, as its llm_calls rows do.
    assert [tuple(t) for t in turns] == [
        ("Local", "openai:alpha"),
        ("Remote", "openai:beta"),
        ("Local", "openai:alpha"),
        ("Remote", "openai:beta"),
    ]
    # ... and the export reads them back with it.
    out = io.StringIO()
    assert export_conversations(db, out, fmt="openai") == 1
    exported = json.loads(out.getvalue())["metadata"]["turns"]
    assert [t["provider"] for t in exported] == ["openai:alpha", "openai:beta"] * 2
    assert [tuple(c) for c in calls] == [
        ("openai:alpha", MODEL, "0", "ok"),
        ("openai:beta", MODEL, "1", "ok"),
        ("openai:alpha", MODEL, "2", "ok"),
        ("openai:beta", MODEL, "3", "ok"),
    ]


@pytest.fixture
def endpoint_llm(
    make_llm: Callable[..., LLMClient], sims: tuple[Simulator, Simulator]
) -> Callable[..., LLMClient]:
    def make(**overrides: Any) -> LLMClient:
        return make_llm(openai_endpoints=endpoints(sims), llm_models=ROUTES, **overrides)

    return make


def ask(endpoint: str | None) -> LLMRequest:
    return LLMRequest(
        provider="openai",
        endpoint=endpoint,
        model=MODEL,
        messages=(Message(role="user", content="Hello there"),),
        max_output_tokens=32,
    )


def test_a_429_storm_on_one_endpoint_leaves_the_other_closed(
    endpoint_llm: Callable[..., LLMClient],
    sims: tuple[Simulator, Simulator],
    sim: Simulator,
    llm_rows: Callable[[], list[Any]],
) -> None:
    alpha, beta = sims
    llm = endpoint_llm(breaker_failure_threshold=2)
    # 429s without a retry-after: each is a failed attempt, counted by the breaker.
    alpha.add_fault("rate_limit", count=10, retry_after_s=0)
    for _ in range(2):
        with pytest.raises(RateLimited):
            llm.complete(ask("alpha"))
    with pytest.raises(CircuitOpen, match=r"openai:alpha/llama-3\.3-70b"):
        llm.complete(ask("alpha"))
    assert alpha.calls().count(status=429) == 2  # the open breaker sent nothing more
    assert llm.breaker.state("openai:alpha", MODEL) == "open"

    # The other endpoint and the default openai, same model: closed, and answering.
    assert llm.complete(ask("beta")).text
    assert llm.complete(ask(None)).text
    assert llm.breaker.state("openai:beta", MODEL) == "closed"
    assert llm.breaker.state("openai", MODEL) == "closed"
    assert beta.calls().count(status=200) == 1
    assert sim.calls().count(provider="openai", status=200) == 1
    assert [(r.provider, r.status) for r in llm_rows()] == [
        ("openai:alpha", "error"),
        ("openai:alpha", "error"),
        ("openai:beta", "ok"),
        ("openai", "ok"),
    ]


def test_each_endpoint_has_its_own_rate_limit(
    endpoint_llm: Callable[..., LLMClient], sims: tuple[Simulator, Simulator]
) -> None:
    alpha, beta = sims
    llm = endpoint_llm(llm_limits={"openai:alpha": ModelLimits(rpm=1)}, llm_max_wait_s=0.0)
    assert llm.complete(ask("alpha")).text
    with pytest.raises(LimiterRefused, match=r"openai:alpha/llama-3\.3-70b"):
        llm.complete(ask("alpha"))
    for _ in range(3):
        assert llm.complete(ask("beta")).text
    assert (alpha.calls().total, beta.calls().total) == (1, 3)


# --- the participant's endpoint -----------------------------------------------------------------


@pytest.fixture(scope="module")
def configured() -> Settings:
    return load_settings(
        openai_endpoints={"vllm": {"base_url": "http://127.0.0.1:9/v1"}},
        llm_models={"openai": ["gpt-5.1"], "openai:vllm": ["qwen-3"]},
    )


def errors_of(participants: list[dict[str, Any]], settings: Settings) -> dict[str, str]:
    body = {"event_id": "e", "topic": "t", "participants": participants}
    with pytest.raises(SchemaInvalid) as info:
        decode_event(json.dumps(body).encode(), "conversation", settings)
    assert info.value.dlq_reason == "schema_invalid"
    return {e["field"]: e["message"] for e in info.value.errors}


def test_a_participant_names_a_configured_endpoint(configured: Settings) -> None:
    body = {
        "event_id": "e",
        "topic": "t",
        "participants": [
            {"provider": "openai", "endpoint": "vllm", "model": "qwen-3"},
            {"provider": "openai", "model": "gpt-5.1"},
        ],
    }
    event, _ = decode_event(json.dumps(body).encode(), "conversation", configured)
    assert [p.route for p in event.participants] == ["openai:vllm", "openai"]


def test_an_unknown_endpoint_is_refused_naming_the_field(configured: Settings) -> None:
    assert errors_of(
        [
            {"provider": "openai", "model": "gpt-5.1"},
            {"provider": "openai", "endpoint": "ollama", "model": "qwen-3"},
        ],
        configured,
    ) == {
        "participants.1.endpoint": (
            'endpoint "ollama" is not configured (configured: vllm; see CHIMERA_OPENAI_ENDPOINTS)'
        )
    }


def test_an_endpoint_is_for_openai_only(configured: Settings) -> None:
    errors = errors_of(
        [
            {"provider": "anthropic", "endpoint": "vllm", "model": "claude-sonnet-5-5"},
            {"provider": "openai", "model": "gpt-5.1"},
        ],
        configured,
    )
    assert errors == {
        "participants.0.endpoint": "an endpoint is for provider openai only, not anthropic"
    }


def test_the_model_is_checked_against_the_endpoints_own_list(configured: Settings) -> None:
    errors = errors_of(
        [
            {"provider": "openai", "endpoint": "vllm", "model": "gpt-5.1"},
            {"provider": "openai", "model": "qwen-3"},
        ],
        configured,
    )
    assert errors == {
        "participants.0.model": 'model "gpt-5.1" is not configured for openai:vllm (allowed: qwen-3)',
        "participants.1.model": 'model "qwen-3" is not configured for openai (allowed: gpt-5.1)',
    }


def test_a_malformed_endpoint_name_is_refused(configured: Settings) -> None:
    errors = errors_of(
        [
            {"provider": "openai", "endpoint": "", "model": "qwen-3"},
            {"provider": "openai", "endpoint": 7, "model": "qwen-3"},
        ],
        configured,
    )
    assert set(errors) == {"participants.0.endpoint", "participants.1.endpoint"}


def test_ray_actors_are_given_no_endpoint(configured: Settings) -> None:
    keyed = configured.model_copy(
        update={
            "openai_endpoints": {
                "vllm": OpenAIEndpoint(base_url="http://127.0.0.1:9/v1", api_key="vllm-key-9876")
            }
        }
    )
    env = actor_env(keyed)
    assert "CHIMERA_OPENAI_ENDPOINTS" not in env
    assert not [name for name, value in env.items() if "vllm-key-9876" in value]
    assert "vllm-key-9876" in to_env(keyed)["CHIMERA_OPENAI_ENDPOINTS"]  # what others get
