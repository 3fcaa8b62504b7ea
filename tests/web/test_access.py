"""Closed by default: where the app listens, who reads /metrics and /readyz's details,
which Host names it answers, and how often /readyz reaches the stores.

Against the app factory (Flask's test client) and against gunicorn as the stack and
the image run it: the refusals happen at start-up, in gunicorn's master, before a
socket is opened.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydantic import SecretStr

from chimera import heartbeat
from chimera.errors import ConfigError
from chimera.exposure import host_name, is_loopback
from chimera.settings import Settings
from chimera.stack import web as stack_web
from tests.chimera.test_cli import chimera
from tests.helpers import free_port, wait_for
from tests.web.gunicorn import Server
from web.app import create_app
from web.resources import resources

API = "api-tok-123456"
METRICS = "metrics-tok-654321"
ANY_ADDRESS = "0.0.0.0"  # noqa: S104 - bound by gunicorn in a test, on a free port


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def with_tokens(settings: Settings, *, api: str | None, metrics: str | None) -> Settings:
    return settings.model_copy(
        update={
            "api_token": SecretStr(api) if api else None,
            "metrics_token": SecretStr(metrics) if metrics else None,
        }
    )


# --- where the app listens -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        (ANY_ADDRESS, False),
        ("::", False),
        ("", False),
        ("10.1.2.3", False),
        ("chimera.example.com", False),
    ],
)
def test_loopback_is_recognised(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("host", [ANY_ADDRESS, "::", "10.1.2.3"])
def test_the_app_refuses_a_network_address_without_a_token(settings: Settings, host: str) -> None:
    with pytest.raises(ConfigError) as refused:
        create_app(settings.model_copy(update={"http_host": host}))
    message = str(refused.value)
    for name in ("CHIMERA_HTTP_HOST", "CHIMERA_API_TOKEN", "CHIMERA_ALLOW_ANONYMOUS"):
        assert name in message
    # A metrics token is no API token: the API would still be open.
    scraper_only = settings.model_copy(
        update={"http_host": host, "metrics_token": SecretStr(METRICS)}
    )
    with pytest.raises(ConfigError, match="CHIMERA_HTTP_HOST"):
        create_app(scraper_only)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_loopback_needs_no_token(
    make_app: Callable[[Settings], Flask], settings: Settings, host: str
) -> None:
    app = make_app(settings.model_copy(update={"http_host": host}))
    assert app.test_client().get("/healthz").status_code == 200


def test_a_network_address_with_a_token_or_allowed_anonymous_access(
    make_app: Callable[[Settings], Flask],
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="web.app"):
        make_app(
            settings.model_copy(update={"http_host": ANY_ADDRESS, "api_token": SecretStr(API)})
        )
    assert not caplog.records
    with caplog.at_level(logging.WARNING, logger="web.app"):
        make_app(settings.model_copy(update={"http_host": ANY_ADDRESS, "allow_anonymous": True}))
    [warning] = caplog.records
    assert warning.levelno == logging.WARNING
    assert "without CHIMERA_API_TOKEN" in warning.getMessage()
    assert "CHIMERA_ALLOW_ANONYMOUS=true" in warning.getMessage()


def serve(settings: Settings, tmp_path: Path, name: str) -> Server:
    return Server(settings, tmp_path / f"{name}.log", tmp_path / f"{name}-metrics")


def test_gunicorn_refuses_a_network_address_without_a_token_before_listening(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    server = serve(
        settings.model_copy(update={"http_host": ANY_ADDRESS, "http_port": port}), tmp_path, "open"
    )
    try:
        assert server.proc.wait(60) == 2, server.log()
    finally:
        server.stop()
    log = server.log()
    assert "CHIMERA_HTTP_HOST: 0.0.0.0 is not a loopback address" in log
    assert "CHIMERA_API_TOKEN" in log
    assert "Listening at" not in log  # refused in the master, before any socket


def test_gunicorn_refuses_a_bind_other_than_the_settings(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    # GUNICORN_CMD_ARGS is a command line too: the way a --bind could slip past the settings.
    monkeypatch.setenv("GUNICORN_CMD_ARGS", f"--bind {ANY_ADDRESS}:{port}")
    server = serve(settings.model_copy(update={"http_port": port}), tmp_path, "rebound")
    try:
        assert server.proc.wait(60) == 2, server.log()
    finally:
        server.stop()
    log = server.log()
    assert f"gunicorn would listen on {ANY_ADDRESS}:{port}" in log
    assert f"CHIMERA_HTTP_PORT say 127.0.0.1:{port}" in log


def test_gunicorn_serves_anonymously_on_the_network_only_when_allowed_and_says_so(
    web_settings: Settings, tmp_path: Path
) -> None:
    open_settings = web_settings.model_copy(
        update={"http_host": ANY_ADDRESS, "http_port": free_port(), "allow_anonymous": True}
    )
    server = serve(open_settings, tmp_path, "anonymous")
    try:
        wait_for(server.answers, timeout_s=30, what="gunicorn to answer /healthz")
        status, _, _ = server.request("GET", "/conversations/conv-1")
        assert status == 404  # open: the view answers, nothing is stored
        # Not loopback and no CHIMERA_HTTP_ALLOWED_HOSTS: any Host name is served.
        assert server.request("GET", "/healthz", headers={"Host": "chimera.example"})[0] == 200
    finally:
        server.stop()
    log = server.log()
    assert "serving without CHIMERA_API_TOKEN on 0.0.0.0" in log
    assert "CHIMERA_ALLOW_ANONYMOUS=true" in log


def test_stack_up_refuses_an_open_network_address_before_starting_anything(
    tmp_path: Path,
) -> None:
    env = {"CHIMERA_HTTP_HOST": ANY_ADDRESS, "CHIMERA_STATE_DIR": str(tmp_path)}
    result = chimera("stack", "up", env=env, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "CHIMERA_HTTP_HOST: 0.0.0.0 is not a loopback address" in result.stderr
    assert result.stdout == ""  # not even Redis was checked
    assert not (tmp_path / "run").exists()


# --- tokens: /metrics and /readyz's details --------------------------------------------------


def test_without_any_token_the_loopback_app_shows_metrics_and_details(
    client: FlaskClient,
) -> None:
    assert client.get("/metrics").status_code == 200
    assert "checks" in client.get("/readyz").get_json()


def test_metrics_and_readyz_details_need_the_api_or_the_metrics_token(
    make_app: Callable[[Settings], Flask], web_settings: Settings, redis_client: Any
) -> None:
    heartbeat.beat(redis_client, web_settings, "worker", instance="w1@host")
    client = make_app(with_tokens(web_settings, api=API, metrics=METRICS)).test_client()

    for headers in ({}, bearer("wrong-token"), {"Authorization": f"Basic {METRICS}"}):
        metrics = client.get("/metrics", headers=headers)
        assert metrics.status_code == 401
        assert "CHIMERA_METRICS_TOKEN" in metrics.get_json()["message"]
        assert "chimera_" not in metrics.get_data(as_text=True)
        ready = client.get("/readyz", headers=headers)
        # A probe carries no token: it still gets the answer, without the details.
        assert ready.status_code == 200
        assert ready.get_json() == {"status": "ready"}
        assert ready.headers["Cache-Control"] == "no-store"

    for token in (API, METRICS):
        metrics = client.get("/metrics", headers=bearer(token))
        assert metrics.status_code == 200
        assert "chimera_dependency_up" in metrics.get_data(as_text=True)
        ready = client.get("/readyz", headers=bearer(token)).get_json()
        assert set(ready["checks"]) == {"redis", "postgres", "kafka", "worker"}
        assert web_settings.kafka_bootstrap_servers in ready["checks"]["kafka"]["detail"]

    # The scraper's token opens the operator routes only.
    assert client.get("/conversations/conv-1", headers=bearer(METRICS)).status_code == 401
    assert client.get("/conversations/conv-1", headers=bearer(API)).status_code == 404
    assert client.get("/healthz").status_code == 200


def test_a_metrics_token_alone_guards_the_operator_routes_only(
    make_app: Callable[[Settings], Flask], web_settings: Settings
) -> None:
    client = make_app(with_tokens(web_settings, api=None, metrics=METRICS)).test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=bearer(METRICS)).status_code == 200
    assert set(client.get("/readyz").get_json()) == {"status"}
    assert "checks" in client.get("/readyz", headers=bearer(METRICS)).get_json()
    # No API token: the (loopback-only) API is open, as it always was.
    assert client.get("/conversations/conv-1").status_code == 404


# --- /readyz: one round of checks per interval ----------------------------------------------


def counted_checks(app: Flask) -> Counter[str]:
    """Count each run of the app's real readiness checks."""
    readiness = resources(app).readiness
    runs: Counter[str] = Counter()
    lock = threading.Lock()

    def counting(name: str, check: Callable[[], str]) -> Callable[[], str]:
        def run() -> str:
            with lock:
                runs[name] += 1
            return check()

        return run

    for name, check in list(readiness.checks.items()):
        readiness.checks[name] = counting(name, check)
    return runs


def test_a_flood_of_readyz_probes_runs_the_checks_once_per_interval(
    make_app: Callable[[Settings], Flask], web_settings: Settings
) -> None:
    app = make_app(web_settings.model_copy(update={"readyz_cache_s": 3_600}))
    runs = counted_checks(app)
    answers: list[int] = []

    def probe() -> None:
        client = app.test_client()
        answers.extend(client.get("/readyz").status_code for _ in range(10))

    threads = [threading.Thread(target=probe) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == 80
    assert set(answers) == {503}  # no worker: not ready, the same answer for every probe
    assert runs == Counter({"redis": 1, "postgres": 1, "kafka": 1, "worker": 1})


def test_readyz_checks_again_once_the_report_is_older_than_the_cache(
    make_app: Callable[[Settings], Flask], web_settings: Settings, redis_client: Any
) -> None:
    app = make_app(web_settings.model_copy(update={"readyz_cache_s": 3}))
    runs = counted_checks(app)
    client = app.test_client()
    assert client.get("/readyz").status_code == 503
    heartbeat.beat(redis_client, web_settings, "worker", instance="w1@host")
    assert client.get("/readyz").status_code == 503  # the cached report, still young
    assert runs["kafka"] == 1
    wait_for(lambda: client.get("/readyz").status_code == 200, what="a fresh report")
    assert runs["kafka"] >= 2

    uncached = make_app(web_settings.model_copy(update={"readyz_cache_s": 0}))
    uncached_runs = counted_checks(uncached)
    for _ in range(3):
        uncached.test_client().get("/readyz")
    assert uncached_runs["kafka"] == 3


# --- the Host header ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("localhost", "localhost"),
        ("LocalHost:8085", "localhost"),
        ("127.0.0.1:1", "127.0.0.1"),
        ("[::1]:8085", "[::1]"),
        ("[::1]", "[::1]"),
        ("evil.example:8085", "evil.example"),
        ("evil.example:x", "evil.example:x"),
    ],
)
def test_host_names_are_compared_without_their_port(header: str, name: str) -> None:
    assert host_name(header) == name


@pytest.mark.parametrize("host", ["localhost", "localhost:8085", "127.0.0.1:8085", "[::1]:8085"])
def test_a_loopback_app_answers_loopback_names(client: FlaskClient, host: str) -> None:
    assert client.get("/healthz", headers={"Host": host}).status_code == 200


def test_a_loopback_app_answers_the_address_it_listens_on(
    make_app: Callable[[Settings], Flask], web_settings: Settings
) -> None:
    client = make_app(web_settings.model_copy(update={"http_host": "127.0.0.2"})).test_client()
    assert client.get("/healthz", headers={"Host": "127.0.0.2:8085"}).status_code == 200
    assert client.get("/healthz", headers={"Host": "127.0.0.3:8085"}).status_code == 421


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8085", "127.0.0.1.evil.example", "localhost.evil:80"]
)
def test_a_loopback_app_refuses_other_names_dns_rebinding(client: FlaskClient, host: str) -> None:
    for path in ("/healthz", "/metrics", "/conversations/conv-1"):
        refused = client.get(path, headers={"Host": host})
        assert refused.status_code == 421
        body = refused.get_json()
        assert body["error"] == "Misdirected Request"
        assert "DNS rebinding" in body["message"]
        assert "CHIMERA_HTTP_ALLOWED_HOSTS" in body["message"]


def test_the_host_check_comes_before_the_token(
    make_app: Callable[[Settings], Flask], web_settings: Settings
) -> None:
    client = make_app(with_tokens(web_settings, api=API, metrics=None)).test_client()
    refused = client.get("/conversations/conv-1", headers={"Host": "evil.example"} | bearer(API))
    assert refused.status_code == 421


def test_allowed_hosts_extend_the_loopback_names_or_turn_the_check_off(
    make_app: Callable[[Settings], Flask], web_settings: Settings
) -> None:
    listed = make_app(
        web_settings.model_copy(update={"http_allowed_hosts": ["Chimera.Example.com"]})
    ).test_client()
    assert listed.get("/healthz", headers={"Host": "chimera.example.com:443"}).status_code == 200
    assert listed.get("/healthz", headers={"Host": "localhost"}).status_code == 200
    assert listed.get("/healthz", headers={"Host": "evil.example"}).status_code == 421

    anything = make_app(web_settings.model_copy(update={"http_allowed_hosts": ["*"]}))
    assert (
        anything.test_client().get("/healthz", headers={"Host": "evil.example"}).status_code == 200
    )

    # On a network address the check applies only to the names listed.
    network = {"http_host": ANY_ADDRESS, "api_token": SecretStr(API)}
    unlisted = make_app(web_settings.model_copy(update=network)).test_client()
    assert unlisted.get("/healthz", headers={"Host": "evil.example"}).status_code == 200
    guarded = make_app(
        web_settings.model_copy(update={**network, "http_allowed_hosts": ["chimera.example.com"]})
    ).test_client()
    assert guarded.get("/healthz", headers={"Host": "evil.example"}).status_code == 421
    assert guarded.get("/healthz", headers={"Host": "chimera.example.com"}).status_code == 200


def test_gunicorn_on_loopback_refuses_a_rebound_name_and_the_stack_still_reads_it(
    web_settings: Settings, tmp_path: Path, redis_client: Any
) -> None:
    settings = with_tokens(web_settings, api=API, metrics=None).model_copy(
        update={"http_port": free_port()}
    )
    server = serve(settings, tmp_path, "loopback")
    try:
        wait_for(server.answers, timeout_s=30, what="gunicorn to answer /healthz")
        status, _, body = server.request("GET", "/healthz", headers={"Host": "evil.example:80"})
        assert status == 421, body
        assert b"DNS rebinding" in body
        # The stack's status line reads /readyz's details with the token it has.
        assert stack_web.detail(settings).endswith("not ready: worker")
    finally:
        server.stop()
