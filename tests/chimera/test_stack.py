"""`chimera stack up|status|down` with real processes."""

from __future__ import annotations

import ast
import base64
import itertools
import json
import os
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from chimera.defaults import STACK_METRICS_PORTS
from tests.chimera.test_cli import chimera
from tests.conftest import delete_keys
from tests.helpers import ANY_ADDRESS, free_port, free_port_block, http_get


@pytest.fixture
def stack_env(
    tmp_path: Path, redis_server: None, database: Any, settings: Any
) -> Iterator[dict[str, str]]:
    """A stack of its own: its own broker port, queue, key prefix and state folder."""
    tag = os.urandom(3).hex()
    yield {
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "CHIMERA_STATE_DIR": str(tmp_path / "state"),
        "CHIMERA_CELERY_QUEUE": f"stack-test-{tag}",
        "CHIMERA_REDIS_KEY_PREFIX": f"stack-test-{tag}:",
        "CHIMERA_CELERY_CONCURRENCY": "4",
        "CHIMERA_SIM_PORT": str(free_port()),
        "CHIMERA_HTTP_PORT": str(free_port()),
        "CHIMERA_FLOWER_PORT": str(free_port()),
        "CHIMERA_KAFKA_S3_PORT": str(free_port()),
        # The worker's own /metrics here, the bridge's on the next port.
        "CHIMERA_METRICS_PORT": str(free_port_block(len(STACK_METRICS_PORTS))),
        # No provider configured: the stack must run its own simulator.
        "ANTHROPIC_BASE_URL": "",
        "GOOGLE_GEMINI_BASE_URL": "",
        "OPENAI_BASE_URL": "",
    }
    delete_keys(settings, f"stack-test-{tag}:")


def recorded_pids(state_dir: Path) -> dict[str, int]:
    return {p.stem: json.loads(p.read_text())["pid"] for p in (state_dir / "run").glob("*.json")}


def flower_get(url: str, credentials: str) -> Any:
    token = base64.b64encode(credentials.encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


@pytest.mark.subprocess_worker
def test_up_status_down(stack_env: dict[str, str]) -> None:
    credentials = f"ops:{os.urandom(6).hex()}"
    stack_env = stack_env | {"CHIMERA_FLOWER_BASIC_AUTH": credentials}
    state = Path(stack_env["CHIMERA_STATE_DIR"])
    before = chimera("stack", "status", env=stack_env)
    assert before.returncode == 1
    assert "worker    stopped" in before.stdout

    up = chimera("stack", "up", env=stack_env, timeout=180)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "8 topics created" in up.stdout
        assert "no LLM provider is configured, so the simulator stands in" in up.stdout
        pids = recorded_pids(state)
        assert set(pids) == {"sim", "s3", "kafka", "worker", "flower", "beat", "bridge", "web"}
        assert all(psutil.pid_exists(pid) for pid in pids.values())
        # The simulator is its own package, run as a process: chimera never imports it.
        assert psutil.Process(pids["sim"]).cmdline()[1:3] == ["-m", "llmsim"]

        status = chimera("stack", "status", env=stack_env)
        assert status.returncode == 0, status.stdout
        lines = {line.split()[0]: line for line in status.stdout.splitlines()}
        components = ("redis", "postgres", "sim", "s3", "kafka", "worker", "flower", "beat")
        for component in (*components, "bridge", "web"):
            assert " ok " in lines[component], status.stdout
        assert "canary ran on" in lines["worker"]
        assert "all topics present" in lines["kafka"]
        web_url = f"http://127.0.0.1:{stack_env['CHIMERA_HTTP_PORT']}"
        assert f"pid {pids['web']}" in lines["web"]
        assert f"{web_url} (2 workers x 8 threads), ready" in lines["web"], status.stdout

        # The stack's web app sees the stack's worker, Kafka and stores.
        with urllib.request.urlopen(f"{web_url}/readyz", timeout=10) as response:  # noqa: S310
            assert json.loads(response.read())["status"] == "ready"
        with urllib.request.urlopen(f"{web_url}/metrics", timeout=10) as response:  # noqa: S310
            text = response.read().decode()
        assert 'chimera_dependency_up{dependency="kafka"} 1.0' in text
        assert (Path(stack_env["CHIMERA_STATE_DIR"]) / "logs" / "web.log").exists()

        # The worker and the bridge each serve their own /metrics, on their own port.
        base = int(stack_env["CHIMERA_METRICS_PORT"])
        for component, port in (("worker", base), ("bridge", base + 1)):
            url = f"http://127.0.0.1:{port}/metrics"
            assert f"metrics {url}" in lines[component], status.stdout
            status_code, body = http_get(url)
            assert status_code == 200 and "# TYPE chimera_llm_calls_total counter" in body

        # Flower sees the stack's worker and, behind its credentials, its tasks by name.
        flower_url = f"http://127.0.0.1:{stack_env['CHIMERA_FLOWER_PORT']}"
        worker_name = lines["worker"].split("canary ran on ")[1].split()[0]
        assert f"pid {pids['flower']}" in lines["flower"]
        assert f"{flower_url} (basic auth), 1 worker online: {worker_name}" in lines["flower"]
        canaries = flower_get(f"{flower_url}/api/tasks?taskname=chimera.system.canary", credentials)
        assert any(
            t["worker"] == worker_name and ast.literal_eval(t["kwargs"])["source"] == "stack"
            for t in canaries.values()
        ), canaries
        # The worker sends task events from its start; the secret stays off command lines.
        assert "task events: ON" in (state / "logs" / "worker.log").read_text()
        assert (state / "logs" / "flower.log").exists()
        assert credentials not in (state / "run" / "flower.json").read_text()
        assert credentials not in " ".join(psutil.Process(pids["flower"]).cmdline())

        # Running `up` again starts nothing new.
        again = chimera("stack", "up", env=stack_env, timeout=180)
        assert again.returncode == 0
        assert recorded_pids(state) == pids
    finally:
        down = chimera("stack", "down", env=stack_env, timeout=120)
    assert down.returncode == 0, down.stderr
    assert "worker    stopped" in down.stdout
    assert "sim       stopped" in down.stdout
    assert "web       stopped" in down.stdout
    assert "flower    stopped" in down.stdout
    for pid in pids.values():
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert recorded_pids(state) == {}
    after = chimera("stack", "status", env=stack_env)
    assert after.returncode == 1


def test_a_busy_kafka_port_is_a_clear_error(stack_env: dict[str, str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = chimera(
            "stack", "up", env=stack_env | {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}"}
        )
    assert result.returncode == 1
    assert f"127.0.0.1:{port}, but something already listens there" in result.stderr
    assert recorded_pids(Path(stack_env["CHIMERA_STATE_DIR"])) == {}


def test_a_busy_metrics_port_is_a_clear_error(stack_env: dict[str, str], settings: Any) -> None:
    from chimera.errors import PortInUse
    from chimera.stack.starters import start_bridge

    state = Path(stack_env["CHIMERA_STATE_DIR"])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        # The bridge listens on the base port plus one.
        scoped = settings.model_copy(update={"metrics_port": port - 1, "state_dir": state})
        with pytest.raises(PortInUse, match=r"the Kafka bridge's metrics \(CHIMERA_METRICS_PORT\)"):
            start_bridge(scoped)
    assert recorded_pids(state) == {}


def test_stack_up_refuses_an_open_metrics_listener_before_starting_anything(
    tmp_path: Path,
) -> None:
    env = {"CHIMERA_METRICS_HOST": ANY_ADDRESS, "CHIMERA_STATE_DIR": str(tmp_path)}
    result = chimera("stack", "up", env=env, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "CHIMERA_METRICS_HOST: 0.0.0.0 is not a loopback address" in result.stderr
    assert result.stdout == ""  # not even Redis was checked
    assert not (tmp_path / "run").exists()


def test_configured_providers_need_no_simulator(stack_env: dict[str, str]) -> None:
    env = stack_env | {"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1"}
    status = chimera("stack", "status", env=env)
    assert "sim       not used" in status.stdout
    assert "providers: openai" in status.stdout


def test_a_busy_web_port_is_a_clear_error(stack_env: dict[str, str], settings: Any) -> None:
    from chimera.errors import PortInUse
    from chimera.stack.starters import start_web

    state = Path(stack_env["CHIMERA_STATE_DIR"])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        scoped = settings.model_copy(update={"http_port": port, "state_dir": state})
        with pytest.raises(PortInUse, match=f"127.0.0.1:{port}, but something already listens"):
            start_web(scoped)
    assert recorded_pids(state) == {}


def test_the_web_command_line_follows_the_settings(settings: Any) -> None:
    from chimera.exposure import bind_address
    from chimera.stack.web import base_url, gunicorn_argv

    wildcard = "0.0.0.0"  # noqa: S104 - a bind address under test, not bound
    wide = settings.model_copy(
        update={"http_host": wildcard, "http_port": 9191, "http_workers": 3, "http_threads": 5}
    )
    argv = gunicorn_argv(wide)
    assert argv[-1] == "web:create_app()"
    pairs = dict(itertools.pairwise(argv))
    # No --bind: web/gunicorn_conf.py binds the settings' address (CHIMERA_HTTP_HOST/PORT).
    assert "--bind" not in pairs
    assert bind_address(wide) == "0.0.0.0:9191"
    assert pairs["--worker-class"] == "gthread"
    assert (pairs["--workers"], pairs["--threads"]) == ("3", "5")
    assert pairs["--config"].endswith("web/gunicorn_conf.py")
    assert base_url(wide) == "http://127.0.0.1:9191"
    v6 = settings.model_copy(update={"http_host": "::1", "http_port": 9191})
    assert bind_address(v6) == "[::1]:9191"


@pytest.mark.parametrize("listening", [True, False], ids=["listening", "bound"])
# The stack detaches what it starts and drops the Popen; here, in-process, Python notices.
@pytest.mark.filterwarnings("ignore:Exception ignored in. <function Popen.__del__")
def test_a_busy_flower_port_is_a_clear_error(
    stack_env: dict[str, str], settings: Any, listening: bool
) -> None:
    """A listener is found before Flower starts; a socket merely bound there, when Flower
    fails to bind."""
    from chimera.errors import PortInUse
    from chimera.stack.control import down
    from chimera.stack.starters import start_flower

    state = Path(stack_env["CHIMERA_STATE_DIR"])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        if listening:
            busy.listen()
        port = busy.getsockname()[1]
        scoped = settings.model_copy(update={"flower_port": port, "state_dir": state})
        with pytest.raises(
            PortInUse, match=f"127.0.0.1:{port}, but (something already listens|it is in use)"
        ):
            start_flower(scoped)
    down(scoped, echo=lambda _: None)  # as `up` does after a failed start
    assert recorded_pids(state) == {}


def test_the_flower_command_line_follows_the_settings(settings: Any) -> None:
    from pydantic import SecretStr

    from chimera.stack.flower import auth_headers, base_url, flower_argv, flower_env

    wildcard = "0.0.0.0"  # noqa: S104 - a bind address under test, not bound
    wide = settings.model_copy(update={"flower_host": wildcard, "flower_port": 5566})
    argv = flower_argv(wide)
    assert argv[1:6] == ["-m", "celery", "-A", "tasks.worker", "flower"]
    assert {"--address=0.0.0.0", "--port=5566"} <= set(argv)
    assert "--tasks_columns=name,args,state,retries,received,runtime,worker,uuid" in argv
    assert base_url(wide) == "http://127.0.0.1:5566"
    assert base_url(settings.model_copy(update={"flower_host": "::1"})).startswith("http://[::1]:")

    # Without credentials in the settings, none reach Flower, not even inherited ones.
    inherited = {"PATH": "/usr/bin", "FLOWER_BASIC_AUTH": "someone:else"}
    assert flower_env(settings, inherited) == {"PATH": "/usr/bin"}
    assert auth_headers(settings) == {}
    guarded = settings.model_copy(update={"flower_basic_auth": SecretStr("ops:s3cret")})
    assert flower_env(guarded, inherited)["FLOWER_BASIC_AUTH"] == "ops:s3cret"
    assert not any("s3cret" in arg for arg in flower_argv(guarded))
    assert auth_headers(guarded) == {"Authorization": "Basic b3BzOnMzY3JldA=="}
