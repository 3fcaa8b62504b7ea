"""Sampling parameters reach each provider under its SDK's own names (read back from the
simulator's recorded request bodies)."""

from __future__ import annotations

from typing import Any

import pytest

from chimera.llm.client import LLMClient
from chimera.llm.types import CallMeta, LLMRequest, Message
from llmsim import Simulator
from tests.chimera.llm.conftest import MODELS


def request(provider: str, **sampling: Any) -> LLMRequest:
    return LLMRequest(
        provider=provider,  # type: ignore[arg-type]
        model=MODELS[provider],
        system="You are Ada.",
        messages=(Message(role="user", content="Should cities ban cars?"),),
        meta=CallMeta(task="turn", owner_type="conversation", owner_id="conv-1", step="0"),
        **sampling,
    )


def sent(provider: str, body: dict[str, Any]) -> dict[str, Any]:
    """(temperature, top_p, max tokens) as the provider's wire format carries them."""
    if provider == "google":
        config = body.get("generationConfig", {})
        return {
            "temperature": config.get("temperature"),
            "top_p": config.get("topP"),
            "max_tokens": config.get("maxOutputTokens"),
        }
    return {k: body.get(k) for k in ("temperature", "top_p", "max_tokens")}


@pytest.mark.parametrize("provider", ["google", "openai"])
def test_sampling_parameters_reach_the_provider(
    provider: str, llm: LLMClient, sim: Simulator
) -> None:
    sim.configure(record_bodies=True)
    llm.complete(request(provider, temperature=0.3, top_p=0.9, max_output_tokens=77))
    llm.complete(request(provider))
    tuned, plain = (call.body for call in sim.calls().calls)
    assert tuned is not None and plain is not None
    assert sent(provider, tuned) == {"temperature": 0.3, "top_p": 0.9, "max_tokens": 77}
    # Left unset, they are not sent: the provider's defaults apply.
    assert sent(provider, plain) == {"temperature": None, "top_p": None, "max_tokens": 1_024}


def test_anthropic_takes_max_tokens_only(llm: LLMClient, sim: Simulator) -> None:
    """Its API (version 2026-10-21) answers 400 to any temperature or top_p: refused here."""
    sim.configure(record_bodies=True)
    llm.complete(request("anthropic", max_output_tokens=77))
    (call,) = sim.calls().calls
    assert call.body is not None
    assert sent("anthropic", call.body) == {"temperature": None, "top_p": None, "max_tokens": 77}
    for field in ("temperature", "top_p"):
        with pytest.raises(ValueError, match="anthropic takes no temperature or top_p"):
            request("anthropic", **{field: 0.5})


@pytest.mark.parametrize(
    ("field", "value"),
    [("temperature", -0.1), ("temperature", 2.1), ("top_p", 0), ("top_p", 1.5)],
)
def test_sampling_parameters_are_bounded(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        request("openai", **{field: value})
