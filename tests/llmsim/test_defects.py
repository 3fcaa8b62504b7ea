"""Planted defects: each one's shape through the real SDKs, the call log's ground truth, the
rates, determinism, and the start-up configuration from the command line and the environment."""

from __future__ import annotations

import collections
import re
from typing import Any

import anthropic
import openai
import pytest
from click.testing import CliRunner
from google import genai
from google.genai import types

from llmsim import Simulator
from llmsim.cli import sim as sim_command
from llmsim.defects import DEFECT_KINDS, DefectRates
from tests.llmsim.clients import http

SYSTEM = (
    "You are Ana, in a discussion with Ben.\n"
    "Topic: Should cities ban cars?\n"
    "An urban planner who has worked on three pedestrian schemes.\n"
    "Reply in a few sentences, in your own voice, to what was just said. "
    "When the discussion has run its course, wrap it up."
)
OPENER = "The topic is: Should cities ban cars?. Ana opens the discussion."
ANA_EARLIER = (
    "Let me start with the question of cars in city centres. The bill usually lands on the "
    "people with the least room in their budget. Who do you think should carry that cost?"
)
BEN_LAST = (
    "Ben: Shop owners like me depend on deliveries, and a ban would hit small businesses "
    "first. Buses in my district run twice an hour at best."
)
HISTORY: list[tuple[str, str]] = [("user", OPENER), ("assistant", ANA_EARLIER), ("user", BEN_LAST)]
SYSTEM_LINES = [line for line in SYSTEM.splitlines() if len(line.split()) >= 3]
SPANISH = {"que", "el", "la", "los", "las", "en", "es", "de", "por", "lo", "una"}
FRENCH = {"je", "que", "le", "la", "les", "est", "des", "une", "ce", "pas", "sur"}
GERMAN = {"ich", "die", "der", "das", "dass", "ist", "nicht", "den", "und", "wer", "da"}
ENGLISH = {"the", "and", "is", "that", "of", "with", "would", "this"}


def ask(provider: str, clients: dict[str, Any], last: str = BEN_LAST) -> tuple[str, bool]:
    """The answer to HISTORY (with ``last`` as the final message) and whether the API reported
    a normal finish."""
    history = [*HISTORY[:-1], ("user", last)]
    if provider == "anthropic":
        message = clients["anthropic"].messages.create(
            model="claude-sonnet-5-5",
            max_tokens=1024,
            system=SYSTEM,
            messages=[{"role": r, "content": t} for r, t in history],
        )
        return message.content[0].text, message.stop_reason == "end_turn"
    if provider == "google":
        response = clients["google"].models.generate_content(
            model="gemini-3.5-flash",
            contents=[
                types.Content(
                    role="model" if r == "assistant" else "user", parts=[types.Part(text=t)]
                )
                for r, t in history
            ],
            config=types.GenerateContentConfig(system_instruction=SYSTEM),
        )
        finish = response.candidates[0].finish_reason if response.candidates else None
        return response.text or "", finish == types.FinishReason.STOP
    completion = clients["openai"].chat.completions.create(
        model="gpt-5",
        messages=[{"role": "system", "content": SYSTEM}]
        + [{"role": r, "content": t} for r, t in history],
    )
    choice = completion.choices[0]
    return choice.message.content or "", choice.finish_reason == "stop"


@pytest.fixture
def clients(
    sim: Simulator, claude: anthropic.Anthropic, gemini: genai.Client, gpt: openai.OpenAI
) -> dict[str, Any]:
    return {"anthropic": claude, "google": gemini, "openai": gpt}


def shingles(text: str) -> set[tuple[str, ...]]:
    tokens = re.findall(r"[\w']+", text.lower())
    return set(zip(tokens, tokens[1:], tokens[2:], strict=False))


def jaccard(a: set[Any], b: set[Any]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def has_shape(kind: str, text: str) -> bool:
    """Whether ``text`` shows the defect ``kind`` (what a detector would look for)."""
    low = text.lower().replace("\u2019", "'")
    tokens = re.findall(r"[\w']+", low)
    if kind == "refusal":
        return bool(
            re.search(r"\b(as an ai|i can't|i cannot|i'm unable|i'm not able|i apologi[sz]e)", low)
        )
    if kind == "leakage":
        scaffold = re.match(r"(Turn \d+ - assistant|<assistant_turn|### Response)", text)
        return any(line in text for line in SYSTEM_LINES) or bool(scaffold)
    if kind == "repetition":
        earlier = [ANA_EARLIER, BEN_LAST.removeprefix("Ben: ")]
        return max(jaccard(shingles(text), shingles(e)) for e in earlier) >= 0.6
    if kind == "truncation":
        return bool(text) and not re.search(r"[.!?][\"')\u201d]*$", text.rstrip())
    if kind == "language_switch":
        words = set(tokens)
        foreign = max(len(words & lang) for lang in (SPANISH, FRENCH, GERMAN))
        return foreign >= 3 and not words & ENGLISH
    if kind == "role_confusion":
        return text.startswith("Ben: ") or ("Ana: " in text and "\n\nBen: " in text)
    raise AssertionError(kind)


def configure(sim: Simulator, rates: dict[str, float]) -> dict[str, Any]:
    status, _, config = http(sim, "POST", "/_sim/config", {"defects": rates})
    assert status == 200, config
    return config


@pytest.mark.parametrize("provider", ["anthropic", "google", "openai"])
@pytest.mark.parametrize("kind", DEFECT_KINDS)
def test_each_defect_at_rate_one_has_its_shape_and_is_logged(
    sim: Simulator, clients: dict[str, Any], kind: str, provider: str
) -> None:
    config = configure(sim, {kind: 1.0})
    assert config["defects"][kind] == 1.0
    for i in range(3):  # three different requests
        text, finished = ask(provider, clients, last=f"{BEN_LAST} Point {i}.")
        assert has_shape(kind, text), (kind, text)
        assert finished  # the API says all is well: the defect is in the text
        assert not any(has_shape(k, text) for k in DEFECT_KINDS if k != kind), (kind, text)
    status, _, log = http(sim, "GET", "/_sim/calls")
    assert status == 200
    assert [c["planted"] for c in log["calls"]] == [kind] * 3
    assert [c.planted for c in sim.calls().calls] == [kind] * 3


def test_rate_zero_plants_nothing(sim: Simulator, clients: dict[str, Any]) -> None:
    for i, provider in enumerate(["anthropic", "google", "openai"] * 5):
        text, _ = ask(provider, clients, last=f"{BEN_LAST} Point {i}.")
        assert not any(has_shape(k, text) for k in DEFECT_KINDS), text
    assert {c.planted for c in sim.calls().calls} == {None}
    assert http(sim, "GET", "/_sim/config")[2]["defects"] == dict.fromkeys(DEFECT_KINDS, 0.0)


def test_rates_are_honoured_over_400_calls(sim: Simulator, gpt: openai.OpenAI) -> None:
    rates = {
        "refusal": 0.1,
        "leakage": 0.1,
        "repetition": 0.05,
        "truncation": 0.05,
        "language_switch": 0.05,
        "role_confusion": 0.05,
    }
    configure(sim, rates)
    clients = {"openai": gpt}
    shapes = collections.Counter[str]()
    for i in range(400):
        text, _ = ask("openai", clients, last=f"{BEN_LAST} Consider case {i}.")
        planted = sim.calls().calls[-1].planted
        if planted is not None:
            shapes[planted] += has_shape(planted, text)
    planted_counts = collections.Counter(c.planted for c in sim.calls().calls)
    for kind, rate in rates.items():
        expected = 400 * rate
        assert expected / 2 <= planted_counts[kind] <= expected * 1.6, (kind, planted_counts)
        assert shapes[kind] == planted_counts[kind], kind  # every planted one has its shape
    assert 400 * 0.6 / 1.3 <= planted_counts[None] <= 400 * 0.6 * 1.3


def test_the_same_request_plants_the_same_defect(sim: Simulator, gpt: openai.OpenAI) -> None:
    configure(sim, {"refusal": 0.3, "language_switch": 0.3})
    clients = {"openai": gpt}
    first = [ask("openai", clients, last=f"{BEN_LAST} Case {i}.")[0] for i in range(30)]
    again = [ask("openai", clients, last=f"{BEN_LAST} Case {i}.")[0] for i in range(30)]
    assert first == again
    planted = [c.planted for c in sim.calls().calls]
    assert planted[:30] == planted[30:]
    assert {"refusal", "language_switch", None} == set(planted)
    # A call that gets no defect reads exactly as with every rate at 0.
    clean = [i for i, p in enumerate(planted[:30]) if p is None]
    configure(sim, {"refusal": 0.0, "language_switch": 0.0})
    for i in clean:
        assert ask("openai", clients, last=f"{BEN_LAST} Case {i}.")[0] == first[i]
    # Another simulator seed draws again.
    sim.configure(seed=99, defects={"refusal": 0.3, "language_switch": 0.3})
    reseeded = [ask("openai", clients, last=f"{BEN_LAST} Case {i}.")[0] for i in range(30)]
    assert reseeded != first


def test_structured_answers_are_never_spoiled(sim: Simulator, gpt: openai.OpenAI) -> None:
    configure(sim, {"refusal": 1.0})
    completion = gpt.chat.completions.create(
        model="gpt-5",
        messages=[{"role": "user", "content": "Return JSON with a summary of: cars are loud."}],
        response_format={"type": "json_object"},
    )
    assert completion.choices[0].message.content.startswith("{")
    assert sim.calls().calls[-1].planted is None


def test_bad_rates_are_rejected(sim: Simulator) -> None:
    for body, message in (
        ({"defects": {"refusal": 0.7, "leakage": 0.7}}, "add up to 1.4"),
        ({"defects": {"gremlins": 0.1}}, "gremlins"),
        ({"defects": {"refusal": 2}}, "less than or equal to 1"),
    ):
        status, _, answer = http(sim, "POST", "/_sim/config", body)
        assert status == 400 and message in answer["error"], answer
    assert sim.config.defects == DefectRates()


def test_start_up_rates_from_the_command_line_and_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[DefectRates] = []

    class Probe:
        def __init__(self, config: Any) -> None:
            seen.append(config.defects)

        def start(self) -> None:
            raise OSError("not listening in this test")

    monkeypatch.setattr("llmsim.cli.Simulator", Probe)
    runner = CliRunner()
    runner.invoke(sim_command, ["--defect-rate", "refusal=0.05", "--defect-rate", "leakage=0.1"])
    runner.invoke(sim_command, [], env={"LLMSIM_DEFECT_RATES": "truncation=0.2 role_confusion=0.1"})
    assert seen == [
        DefectRates(refusal=0.05, leakage=0.1),
        DefectRates(truncation=0.2, role_confusion=0.1),
    ]
    result = runner.invoke(
        sim_command, ["--defect-rate", "refusal=0.8", "--defect-rate", "leakage=0.8"]
    )
    assert result.exit_code == 2 and "add up to 1.6" in result.output
