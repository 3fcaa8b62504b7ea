"""`chimera stack up|status|down` with real processes."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.chimera.test_cli import chimera
from tests.conftest import delete_keys
from tests.helpers import free_port


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
        # No provider configured: the stack must run its own simulator.
        "ANTHROPIC_BASE_URL": "",
        "GOOGLE_GEMINI_BASE_URL": "",
        "OPENAI_BASE_URL": "",
    }
    delete_keys(settings, f"stack-test-{tag}:")


def recorded_pids(state_dir: Path) -> dict[str, int]:
    return {p.stem: json.loads(p.read_text())["pid"] for p in (state_dir / "run").glob("*.json")}


@pytest.mark.subprocess_worker
def test_up_status_down(stack_env: dict[str, str]) -> None:
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
        assert set(pids) == {"sim", "kafka", "worker", "beat", "bridge"}
        assert all(psutil.pid_exists(pid) for pid in pids.values())

        status = chimera("stack", "status", env=stack_env)
        assert status.returncode == 0, status.stdout
        lines = {line.split()[0]: line for line in status.stdout.splitlines()}
        for component in ("redis", "postgres", "sim", "kafka", "worker", "beat", "bridge"):
            assert " ok " in lines[component], status.stdout
        assert "canary ran on" in lines["worker"]
        assert "all topics present" in lines["kafka"]

        # Running `up` again starts nothing new.
        again = chimera("stack", "up", env=stack_env, timeout=180)
        assert again.returncode == 0
        assert recorded_pids(state) == pids
    finally:
        down = chimera("stack", "down", env=stack_env, timeout=120)
    assert down.returncode == 0, down.stderr
    assert "worker    stopped" in down.stdout
    assert "sim       stopped" in down.stdout
    for pid in pids.values():
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert recorded_pids(state) == {}
    after = chimera("stack", "status", env=stack_env)
    assert after.returncode == 1


def test_a_busy_kafka_port_is_a_clear_error(stack_env: dict[str, str]) -> None:
    import socket

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


def test_configured_providers_need_no_simulator(stack_env: dict[str, str]) -> None:
    env = stack_env | {"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1"}
    status = chimera("stack", "status", env=env)
    assert "sim       not used" in status.stdout
    assert "providers: openai" in status.stdout
