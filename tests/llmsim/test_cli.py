"""``python -m llmsim``: option parsing in-process, and a real foreground server in a subprocess."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from llmsim.cli import sim
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


BAD_ARGUMENTS = [
    ("port a word", ("--port", "http"), "'http' is not a valid integer range"),
    ("port out of range", ("--port", "70000"), "70000 is not in the range 0<=x<=65535"),
    ("fault without rate", ("--fault-rate", "timeout"), "expected KIND=P"),
    ("unknown fault", ("--fault-rate", "gremlins=0.1"), "kind: Input should be"),
    (
        "fault rate over 1",
        ("--fault-rate", "timeout=2"),
        "rate: Input should be less than or equal to 1",
    ),
    ("negative latency", ("--ttft-ms", "-1"), "-1.0 is not in the range x>=0"),
    ("NaN latency", ("--ttft-ms", "nan"), "ttft_ms"),
]


@pytest.mark.parametrize(
    ("argv", "says"), [c[1:] for c in BAD_ARGUMENTS], ids=[c[0] for c in BAD_ARGUMENTS]
)
def test_bad_arguments_exit_2_with_one_line_naming_what_is_wrong(
    argv: tuple[str, ...], says: str
) -> None:
    result = CliRunner().invoke(sim, list(argv), prog_name="llmsim")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert says in errors[0], errors[0]
    assert [line for line in lines if not line.startswith(("Usage:", "Try ", "Error:"))] == []


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_sim/health", timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError):
        return False


def test_serves_in_the_foreground_until_sigterm() -> None:
    port = free_port()
    argv = [sys.executable, "-m", "llmsim", "--port", str(port)]
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
