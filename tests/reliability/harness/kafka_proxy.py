"""A Kafka broker reachable only through a TCP proxy that can cut or delay its traffic.

Kafka clients connect to the bootstrap address once, then to whatever address the
broker advertises in its metadata.  So the broker here is a Tansu of the test's
own that listens on one port and advertises the proxy's: every byte a client
exchanges with it passes through ``KafkaProxy``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from chimera.kafka.broker import broker_binary, broker_env
from tests.helpers import free_port
from tests.reliability.harness.tcp_proxy import TcpProxy


class KafkaProxy(TcpProxy):
    """The proxy in front of the test's broker (cut, delay and restore its traffic)."""


class ProxiedBroker:
    """A Tansu broker of the test's own, advertised at its proxy's address."""

    def __init__(self, log_path: Path) -> None:
        self.broker_port = free_port()
        self.proxy = KafkaProxy(self.broker_port)
        listener = f"tcp://127.0.0.1:{self.broker_port}"
        advertised = f"tcp://127.0.0.1:{self.proxy.port}"
        argv = [broker_binary(), "broker", "--listener-url", listener]
        argv += ["--advertised-listener-url", advertised, "--storage-engine", "memory://tansu/"]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=broker_env(),
                start_new_session=True,
            )

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.proxy.port}"

    def close(self) -> None:
        self.proxy.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
