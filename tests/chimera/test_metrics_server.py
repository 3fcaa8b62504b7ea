"""A process's own /metrics listener: where it may listen, and who may read it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from chimera import metrics, metrics_server
from chimera.errors import ConfigError
from chimera.settings import Settings
from tests.helpers import ANY_ADDRESS, free_port, http_get


@pytest.fixture
def serving(settings: Settings) -> Iterator[Any]:
    servers: list[metrics_server.MetricsServer] = []

    def start(**update: Any) -> metrics_server.MetricsServer:
        s = settings.model_copy(update={"metrics_port": free_port(), **update})
        server = metrics_server.serve(s, "test")
        assert server is not None
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def test_port_zero_serves_nothing(settings: Settings) -> None:
    off = settings.model_copy(update={"metrics_port": 0, "metrics_host": ANY_ADDRESS})
    assert metrics_server.serve(off, "test") is None


def test_a_network_address_without_a_token_is_refused_naming_the_settings(
    settings: Settings,
) -> None:
    open_ = settings.model_copy(
        update={
            "metrics_port": free_port(),
            "metrics_host": ANY_ADDRESS,
            "metrics_token": None,
            "api_token": None,
        }
    )
    with pytest.raises(ConfigError) as refused:
        metrics_server.serve(open_, "test")
    message = str(refused.value)
    assert "CHIMERA_METRICS_HOST: 0.0.0.0 is not a loopback address" in message
    assert "CHIMERA_METRICS_TOKEN" in message
    # With a token the same address is allowed.
    metrics_server.check_bind(open_.model_copy(update={"metrics_token": SecretStr("t" * 32)}))


def test_a_taken_port_is_refused_naming_the_setting(settings: Settings) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        taken = settings.model_copy(update={"metrics_port": port, "metrics_host": "127.0.0.1"})
        with pytest.raises(ConfigError, match="CHIMERA_METRICS_PORT: the test's /metrics cannot"):
            metrics_server.serve(taken, "test")


def test_serves_this_process_metrics_on_loopback_without_a_token(serving: Any) -> None:
    metrics.RATE_LIMITED.labels("sim", "metrics-server-test").inc()
    server = serving(metrics_token=None, api_token=None)
    status, body = http_get(server.url)
    assert status == 200
    assert (
        'chimera_llm_rate_limited_total{model="metrics-server-test",provider="sim"} 1.0' in body
        or 'chimera_llm_rate_limited_total{provider="sim",model="metrics-server-test"} 1.0' in body
    ), body
    status, _ = http_get(server.url.removesuffix("/metrics") + "/other")
    assert status == 404


def test_with_a_token_only_a_bearer_of_an_operator_token_reads(serving: Any) -> None:
    server = serving(metrics_token=SecretStr("m" * 32), api_token=SecretStr("a" * 32))
    status, body = http_get(server.url)
    assert status == 401 and "CHIMERA_METRICS_TOKEN" in body
    assert http_get(server.url, "wrong")[0] == 401
    for token in ("m" * 32, "a" * 32):
        status, body = http_get(server.url, token)
        assert status == 200 and "# TYPE chimera_llm_calls_total counter" in body
