"""``chimera sim``: option parsing in-process, and a real foreground server in a subprocess."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from chimera.sim.cli import sim
from tests.helpers import free_port, wait_for

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_the_options() -> None:
    result = CliRunner().invoke(sim, ["--help"])
    assert result.exit_code == 0
    for option in (
        "--host",
        "--port",
        "--seed",
        "--ttft-ms",
        "--ms-per-token",
        "--rpm",
        "--itpm",
        "--otpm",
        "--fault-rate",
    ):
        assert option in result.output


def test_bad_fault_rates_are_rejected() -> None:
    for value in ("server_error", "meteor=0.5", "server_error=2", "server_error=x"):
        result = CliRunner().invoke(sim, ["--fault-rate", value])
        assert result.exit_code == 2, value
        assert "--fault-rate" in result.output


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_sim/health", timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError):
        return False


def test_serves_in_the_foreground_until_sigterm() -> None:
    port = free_port()
    argv = [sys.executable, "-c", "from chimera.sim.cli import sim; sim()", "--port", str(port)]
    argv += ["--seed", "3", "--rpm", "100", "--fault-rate", "server_error=1.0"]
    proc = subprocess.Popen(
        argv, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(
            lambda: proc.poll() is None and _healthy(port),
            timeout_s=30,
            what="the simulator to answer",
        )
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            data=b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}',
            headers={"authorization": "Bearer k", "content-type": "application/json"},
        )
        try:
            urllib.request.urlopen(request, timeout=5)  # noqa: S310
            raise AssertionError("the fault rate of 1.0 should have failed the call")
        except urllib.error.HTTPError as exc:
            assert exc.code == 500
            exc.close()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert f"http://127.0.0.1:{port}" in stderr
    assert "openai /v1/chat/completions model=m status=500 fault=server_error" in stderr
    assert "received SIGTERM" in stderr and "served 1 calls" in stderr
