"""The server itself: latency and pacing, concurrency, determinism on the wire, a clean stop."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection

import anthropic
import pytest

from llmsim import Simulator
from tests.helpers import wait_for
from tests.llmsim.clients import anthropic_for, http

BODY = {
    "model": "claude-x",
    "max_tokens": 300,
    "messages": [{"role": "user", "content": "Discuss rail."}],
}
HEADERS = {"anthropic-version": "2026-10-21", "x-api-key": "sim"}


def test_latency_is_time_to_first_token_plus_time_per_token(
    sim: Simulator, claude: anthropic.Anthropic
) -> None:
    sim.configure(ttft_ms=200, ms_per_token=2)
    started = time.monotonic()
    message = claude.messages.create(**BODY)
    elapsed = time.monotonic() - started
    expected = 0.2 + 0.002 * message.usage.output_tokens
    assert elapsed >= expected  # a floor only: a busy machine may add any delay on top


def test_streams_are_paced(sim: Simulator, claude: anthropic.Anthropic) -> None:
    sim.configure(ttft_ms=150, ms_per_token=3)
    started = time.monotonic()
    arrivals = []
    with claude.messages.stream(**BODY) as stream:
        for _ in stream.text_stream:
            arrivals.append(time.monotonic() - started)
        tokens = stream.get_final_message().usage.output_tokens
    assert arrivals[0] >= 0.15
    assert arrivals[-1] >= 0.15 + 0.003 * tokens * 0.9
    assert arrivals[-1] - arrivals[0] > 0.05  # spread out, not one burst


def test_many_slow_calls_in_flight_at_once(make_sim: Callable[..., Simulator]) -> None:
    simulator = make_sim(ttft_ms=1000)
    client = anthropic_for(simulator, timeout_s=30)
    n = 150
    try:
        # Served one after the other, 150 calls of 1 s would outlast the client's 30 s timeout
        # (and no retries): every call answering is the proof they were in flight together.
        with ThreadPoolExecutor(max_workers=n) as pool:
            results = list(
                pool.map(
                    lambda i: client.messages.create(**{**BODY, "model": f"m{i % 3}"}), range(n)
                )
            )
    finally:
        client.close()
    assert all(r.stop_reason == "end_turn" for r in results)
    assert simulator.calls().count(status=200) == n


def test_same_request_same_answer_across_restarts(make_sim: Callable[..., Simulator]) -> None:
    answers = []
    for seed in (5, 5, 6):
        simulator = make_sim(seed=seed)
        answers.append(
            http(simulator, "POST", "/v1/messages", BODY, HEADERS)[2]["content"][0]["text"]
        )
    assert answers[0] == answers[1] != answers[2]


def test_stop_interrupts_stalled_calls_and_leaves_no_threads(
    make_sim: Callable[..., Simulator],
) -> None:
    simulator = make_sim()
    port = simulator.port
    simulator.add_fault("timeout", delay_s=60)
    client = anthropic_for(simulator, timeout_s=30)
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            client.messages.create(**BODY)
        except anthropic.APIError as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    wait_for(lambda: simulator.calls().total, what="the stalled call to arrive")
    simulator.stop()
    caller.join(60)  # only a guard against hanging: the client gives up after 30 s anyway
    client.close()
    assert not caller.is_alive()
    # Cut off by the stop, not by the client's own timeout (the stalled answer was 60 s away).
    assert isinstance(outcome[0], anthropic.APIConnectionError)
    assert not isinstance(outcome[0], anthropic.APITimeoutError)
    assert not [t for t in threading.enumerate() if t.name.endswith(f":{port}") and t.is_alive()]
    assert not simulator.running
    simulator.stop()  # idempotent


def test_unknown_routes_are_404_and_logged(sim: Simulator) -> None:
    status, _, payload = http(sim, "POST", "/v2/whatever", {})
    assert status == 404 and "no route" in payload["error"]["message"]
    assert http(sim, "GET", "/v1/messages")[0] == 404
    assert sim.calls().count(provider="unknown", status=404) == 2


def test_chunked_request_bodies_are_read(sim: Simulator) -> None:
    connection = HTTPConnection("127.0.0.1", sim.port, timeout=10)
    try:
        connection.request(
            "POST", "/v1/messages", body=iter([json.dumps(BODY).encode()]),
            headers={**HEADERS, "content-type": "application/json"}, encode_chunked=True,
        )  # fmt: skip
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read())["type"] == "message"
    finally:
        connection.close()


def test_handle_lifecycle(make_sim: Callable[..., Simulator]) -> None:
    simulator = make_sim(host="0.0.0.0")  # noqa: S104 - checks the base URL, on loopback in practice
    assert simulator.base_url == f"http://127.0.0.1:{simulator.port}"
    with pytest.raises(RuntimeError):
        simulator.start()
    simulator.stop()
    with pytest.raises(RuntimeError):
        _ = simulator.port
