"""The bridge process serves its own /metrics (CHIMERA_METRICS_PORT), and refuses an open one."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from chimera.settings import Settings
from tests.helpers import ANY_ADDRESS, free_port, http_get, wait_for


def test_bridge_serves_its_metrics_behind_the_token(
    bridge_settings: Settings, bridge_process: Any
) -> None:
    port = free_port()
    token = "b" * 32
    s = bridge_settings.model_copy(update={"metrics_port": port, "metrics_token": SecretStr(token)})
    bridge = bridge_process(s)
    url = f"http://127.0.0.1:{port}/metrics"

    def answered() -> tuple[int, str] | None:
        bridge.assert_alive()
        try:
            return http_get(url, token)
        except OSError:  # not listening yet
            return None

    answer = wait_for(answered, timeout_s=60, what="the bridge's /metrics")
    assert answer is not None
    status, body = answer
    assert status == 200, body
    assert "# TYPE chimera_llm_calls_total counter" in body
    assert "chimera_conversations_running" in body
    assert http_get(url)[0] == 401
    assert f"the bridge serves its metrics on {url}" in bridge.log()


def test_bridge_refuses_an_open_metrics_listener_on_the_network(
    bridge_settings: Settings, bridge_process: Any
) -> None:
    s = bridge_settings.model_copy(
        update={
            "metrics_port": free_port(),
            "metrics_host": ANY_ADDRESS,
            "metrics_token": None,
            "api_token": None,
        }
    )
    bridge = bridge_process(s)
    assert bridge.wait(60) == 2, bridge.log()
    assert "CHIMERA_METRICS_HOST: 0.0.0.0 is not a loopback address" in bridge.log()
