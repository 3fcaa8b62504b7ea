"""Ray gets only what its analyses need, and a Ray cluster only with its token.

Whoever can submit work to a Ray cluster runs code there and reads what its jobs were
given.  The actors' environment is read from the real processes of a local Ray (via
/proc), and their log files from Ray's session directory; a real head started with
``RAY_AUTH_MODE=token`` shows that the executor authenticates, and that a wrong token
is refused.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from flask import Flask
from pydantic import SecretStr

from chimera.analysis.executors import RayExecutor, actor_env
from chimera.errors import ConfigError
from chimera.exposure import check_ray_settings
from chimera.settings import Settings, env_var_for, load_settings
from tests.conftest import PROJECT_ROOT
from tests.helpers import free_port, wait_for
from tests.security.test_secrets import BODY, MARK, SECRETS, with_secrets
from tests.test_compose import SETTINGS_PREFIXES
from tests.web.gunicorn import Server
from web import create_app

#: Secrets no Ray process may be given (the analyses use anthropic and google).
FORBIDDEN = (
    "api_token",
    "metrics_token",
    "flower_basic_auth",
    "kafka_sasl_password",
    "openai_api_key",
)
#: What an actor builds its LLM client from.
NEEDED = ("anthropic_api_key", "google_api_key")


def analysis_settings(settings: Settings, **update: Any) -> Settings:
    """Every secret set; the analyses on anthropic and google (as the session's settings say)."""
    secret = with_secrets(settings, **update)
    providers = {secret.analysis_provider} | {p.provider for p in secret.analysis_models.values()}
    assert providers == {"anthropic", "google"}
    return secret


def test_the_job_environment_holds_the_analysis_providers_and_the_stores_only(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = analysis_settings(
        settings,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="chimera",
        openai_base_url=f"http://proxy:{MARK}-openai-proxy@127.0.0.1:1/v1",
    )
    env = actor_env(secret)
    for field in NEEDED:
        assert env[env_var_for(field)] == SECRETS[field]
    assert env["DATABASE_URL"] == secret.database_url.get_secret_value()
    assert env["REDIS_PASSWORD"] == SECRETS["redis_password"]
    assert env["ANTHROPIC_BASE_URL"] == secret.anthropic_base_url
    for field in (*FORBIDDEN, "ray_auth_token", "openai_base_url"):
        assert env_var_for(field) not in env, field
    assert not [name for name in env if name.startswith("KAFKA_")]
    leaked = [name for name, value in env.items() if MARK in value]
    assert sorted(leaked) == sorted(env_var_for(f) for f in (*NEEDED, "redis_password"))
    # An actor reads valid settings from it (SASL_SSL without its password would not be).
    for name in [n for n in os.environ if n.startswith(SETTINGS_PREFIXES)]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    rebuilt = load_settings()
    assert rebuilt.kafka_security_protocol == "PLAINTEXT"
    assert rebuilt.api_token is None and rebuilt.openai_api_key is None


@pytest.mark.parametrize("address", ["ray://ray-head:10001", "10.0.0.5:6379", "auto"])
def test_a_ray_cluster_is_refused_without_its_token(settings: Settings, address: str) -> None:
    remote = settings.model_copy(update={"analyze_executor": "ray", "ray_address": address})
    for refuse in (check_ray_settings, create_app, RayExecutor):
        with pytest.raises(ConfigError) as refused:
            refuse(remote)
        assert "RAY_AUTH_TOKEN" in str(refused.value)
        assert f"RAY_ADDRESS={address}" in str(refused.value)
    check_ray_settings(remote.model_copy(update={"ray_auth_token": SecretStr("ray-tok-1234")}))


def test_gunicorn_refuses_a_ray_cluster_without_its_token_before_listening(
    settings: Settings, tmp_path: Path
) -> None:
    remote = settings.model_copy(
        update={
            "analyze_executor": "ray",
            "ray_address": "ray://ray-head:10001",
            "http_port": free_port(),
        }
    )
    server = Server(remote, tmp_path / "web.log", tmp_path / "metrics")
    try:
        assert server.proc.wait(60) == 2, server.log()
    finally:
        server.stop()
    assert "RAY_AUTH_TOKEN: RAY_ADDRESS=ray://ray-head:10001 names a Ray cluster" in server.log()
    assert "Listening at" not in server.log()


@pytest.mark.parametrize("address", [None, "", "local"])
def test_a_local_ray_needs_no_token(settings: Settings, address: str | None) -> None:
    check_ray_settings(
        settings.model_copy(update={"analyze_executor": "ray", "ray_address": address})
    )


# --- a real local Ray -----------------------------------------------------------------------


def actor_processes(redis_key_prefix: str) -> list[psutil.Process]:
    """This test's actor processes (other sessions may run Ray too: told by their prefix)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if "ray::AnalysisActor" not in " ".join(proc.info["cmdline"] or []):
                continue
            if proc.environ().get("CHIMERA_REDIS_KEY_PREFIX") == redis_key_prefix:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def stderr_log(proc: psutil.Process) -> str:
    """What the process wrote to stderr: Ray points it at a file in its session directory."""
    path = Path(os.readlink(f"/proc/{proc.pid}/fd/2"))
    assert path.is_file(), path
    return path.read_text(errors="replace")


def test_ray_actors_get_no_other_secret_and_log_none(
    web_settings: Settings, db: Any, refusing_provider: str
) -> None:
    ray = pytest.importorskip("ray")
    secret = analysis_settings(
        web_settings,
        redis_password=None,  # the session's Redis has none
        anthropic_base_url=refusing_provider,
        google_gemini_base_url=refusing_provider,
        analyze_executor="ray",
        ray_auth_token=None,  # a local Ray: it makes its own token
    )
    app: Flask = create_app(secret)
    try:
        token = {"Authorization": f"Bearer {SECRETS['api_token']}"}
        answer = app.test_client().post("/orchestrator/analyze", json=BODY, headers=token)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        assert answer.json is not None and answer.json["status"] == "failed"  # every key refused
        actors = actor_processes(secret.redis_key_prefix)
        assert len(actors) == 2
        logs = []
        for actor in actors:
            env = actor.environ()
            for field in FORBIDDEN:
                value = SECRETS[field]
                assert not [k for k, v in env.items() if value in v], f"{field} reached Ray"
            for field in NEEDED:
                assert env[env_var_for(field)] == SECRETS[field]
            logs.append(
                wait_for(lambda a=actor: stderr_log(a) if "failed" in stderr_log(a) else None)
            )
    finally:
        app.extensions["chimera.analyzer.close"]()
        ray.shutdown()
    written = "\n".join(logs)
    # Each analysis logged its failure, quoting the provider's answer with the key masked.
    for kind in ("summary", "argument", "implication_sentiment", "logic_bias"):
        assert f"analysis {kind} of" in written
    assert "Incorrect API key provided: ***" in written
    assert MARK not in written


# --- a Ray head with token authentication ----------------------------------------------------


_CONNECT = """
import sys
from chimera.analysis.executors import RayExecutor
from chimera.errors import ServiceUnavailable
from chimera.settings import load_settings

executor = RayExecutor(load_settings())
try:
    executor._connect()
except ServiceUnavailable as exc:
    print(f"refused: {exc}")
    sys.exit(3)
import ray
print("connected", ray.cluster_resources().get("CPU"))
"""


@pytest.fixture
def ray_head() -> Iterator[tuple[str, str]]:
    """A Ray head on this machine with token authentication: (address, token).

    Stopped by the ids of its own processes: ``ray stop`` would stop every Ray of the
    machine, other sessions' included."""
    ray_cli = shutil.which("ray", path=str(Path(sys.executable).parent))
    if ray_cli is None:
        pytest.skip("no ray command in this environment")
    token = "ray-head-token-" + os.urandom(8).hex()
    port = free_port()
    temp_dir = tempfile.mkdtemp(prefix="ray-")  # short: Ray's socket paths must fit 107 chars
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "RAY_USAGE_STATS_ENABLED": "0"}
    argv = [ray_cli, "start", "--head", "--block", f"--port={port}", "--num-cpus=1"]
    argv += ["--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp_dir}"]
    head = subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: port_open(port), timeout_s=120, what="the Ray head's GCS port")
        yield f"127.0.0.1:{port}", token
    finally:
        family = [psutil.Process(head.pid), *psutil.Process(head.pid).children(recursive=True)]
        family += [
            p
            for p in psutil.process_iter(["cmdline"])
            if temp_dir in " ".join(p.info["cmdline"] or [])
        ]
        for proc in {p.pid: p for p in family}.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        head.wait(30)
        shutil.rmtree(temp_dir, ignore_errors=True)


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def connect(address: str, token: str | None) -> subprocess.CompletedProcess[str]:
    """A web process's RayExecutor connecting to ``address`` (its own process: one Ray per
    process), with RAY_AUTH_TOKEN as the settings read it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env |= {"CHIMERA_ANALYZE_EXECUTOR": "ray", "RAY_ADDRESS": address}
    if token is not None:
        env["RAY_AUTH_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-c", _CONNECT],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_the_executor_authenticates_to_a_ray_head_with_its_token(ray_head: tuple[str, str]) -> None:
    address, token = ray_head
    accepted = connect(address, token)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "connected 1.0" in accepted.stdout
    refused = connect(address, "wrong-token-" + os.urandom(4).hex())
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "refused: cannot reach Ray" in refused.stdout
    assert "Authentication token is missing or incorrect" in refused.stderr
