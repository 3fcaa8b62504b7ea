"""The admin API over plain HTTP, and the Python handle that mirrors it."""

from __future__ import annotations

from llmsim import Simulator
from tests.llmsim.clients import http

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi there"}]}
AUTH = {"authorization": "Bearer k"}


def test_health(sim: Simulator) -> None:
    status, _, payload = http(sim, "GET", "/_sim/health")
    assert status == 200 and payload["status"] == "ok" and payload["calls"] == 0


def test_config_partial_updates(sim: Simulator) -> None:
    status, _, config = http(sim, "GET", "/_sim/config")
    assert (
        status == 200
        and config["ttft_ms"] == 0
        and config["limits"] == {"rpm": None, "itpm": None, "otpm": None}
    )
    status, _, config = http(sim, "POST", "/_sim/config", {"ttft_ms": 250, "limits": {"rpm": 60}})
    assert status == 200 and config["ttft_ms"] == 250 and config["limits"]["rpm"] == 60
    _, _, config = http(
        sim, "POST", "/_sim/config", {"limits": {"otpm": 500}, "model_limits": {"m": {"rpm": 1}}}
    )
    assert config["limits"] == {"rpm": 60, "itpm": None, "otpm": 500}  # merged, not replaced
    assert config["model_limits"] == {"m": {"rpm": 1, "itpm": None, "otpm": None}}
    _, _, config = http(sim, "POST", "/_sim/config", {"model_limits": {"m": None}})
    assert config["model_limits"] == {}
    assert sim.config.ttft_ms == 250
    for bad in ({"port": 1}, {"ttft_ms": -1}, {"nonsense": True}, {"limits": {"rpm": 0}}):
        status, _, payload = http(sim, "POST", "/_sim/config", bad)
        assert status == 400 and payload["error"], bad
    assert http(sim, "POST", "/_sim/config", raw=b"[1, 2]")[0] == 400


def test_faults_add_list_clear(sim: Simulator) -> None:
    status, _, payload = http(
        sim, "POST", "/_sim/faults", {"kind": "server_error", "count": 2, "provider": "openai"}
    )
    assert status == 200 and payload["added"][0]["kind"] == "server_error"
    batch = {
        "faults": [
            {"kind": "rate_limit", "retry_after_s": 3},
            {"kind": "unavailable", "rate": 0.1, "model": "x"},
        ]
    }
    assert http(sim, "POST", "/_sim/faults", batch)[0] == 200
    _, _, listed = http(sim, "GET", "/_sim/faults")
    assert [(f["kind"], f.get("remaining")) for f in listed["faults"]] == [
        ("server_error", 2),
        ("rate_limit", 1),
        ("unavailable", None),
    ]
    for bad in (
        {"kind": "meteor"},
        {"kind": "server_error", "count": 1, "rate": 0.5},
        {"kind": "server_error", "rate": 2},
        {"kind": "server_error", "provider": "acme"},
        {"faults": [{"kind": "reset"}, {"kind": "nope"}]},
    ):
        status, _, payload = http(sim, "POST", "/_sim/faults", bad)
        assert status == 400 and payload["error"], bad
    assert len(sim.faults()) == 3  # a bad batch adds nothing
    assert (
        http(sim, "POST", "/_sim/faults", {"kind": "reset", "provider": "gemini"})[2]["added"][0][
            "provider"
        ]
        == "google"
    )
    status, _, payload = http(sim, "DELETE", "/_sim/faults")
    assert status == 200 and payload["cleared"] == 4 and sim.faults() == []


def test_calls_and_counts_match_the_calls_made(sim: Simulator) -> None:
    sim.add_fault("server_error", count=2, provider="openai")
    for _ in range(5):
        http(sim, "POST", "/v1/chat/completions", CHAT, AUTH)
    http(sim, "POST", "/v1/chat/completions", CHAT)  # no key: 401
    http(sim, "POST", "/nowhere", {})
    status, _, log = http(sim, "GET", "/_sim/calls")
    assert status == 200 and log["total"] == 7
    assert log["counts"] == [
        {"provider": "openai", "model": "m", "status": 200, "count": 3},
        {"provider": "openai", "model": "m", "status": 401, "count": 1},
        {"provider": "openai", "model": "m", "status": 500, "count": 2},
        {"provider": "unknown", "model": "", "status": 404, "count": 1},
    ]
    first = log["calls"][0]
    assert set(first) == {
        "id", "ts", "provider", "model", "endpoint", "status", "fault", "limited",
        "input_tokens", "output_tokens", "stream", "request_id", "body", "planted",
    }  # fmt: skip
    assert first["body"] is None  # kept only with record_bodies
    assert (first["endpoint"], first["status"], first["fault"]) == (
        "/v1/chat/completions",
        500,
        "server_error",
    )
    assert log["calls"][2]["output_tokens"] > 0 and log["calls"][2]["input_tokens"] == 2
    _, _, last_two = http(sim, "GET", "/_sim/calls?limit=2")
    assert [c["status"] for c in last_two["calls"]] == [401, 404] and last_two["total"] == 7
    python = sim.calls()
    assert python.count() == 7 and python.count(provider="openai", status=500) == 2


def test_reset(sim: Simulator) -> None:
    sim.configure(limits={"rpm": 1})
    sim.add_fault("server_error", rate=0.5)
    http(sim, "POST", "/v1/chat/completions", CHAT, AUTH)
    assert http(sim, "POST", "/_sim/reset")[2] == {"status": "reset"}
    assert sim.calls().total == 0 and sim.faults() == []
    assert sim.config.limits.rpm == 1  # the configuration stays ...
    assert http(sim, "POST", "/v1/chat/completions", CHAT, AUTH)[0] == 200  # ... the window is new
    http(sim, "POST", "/_sim/reset", {"config": True})
    assert sim.config.limits.rpm is None


def test_unknown_admin_paths(sim: Simulator) -> None:
    assert http(sim, "GET", "/_sim/nothing")[0] == 404
    assert http(sim, "PUT", "/_sim/faults", {})[0] == 405
    assert sim.calls().total == 0  # admin calls are not provider calls
