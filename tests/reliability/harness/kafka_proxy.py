"""A Kafka broker reachable only through a TCP proxy that can cut or delay its traffic.

Kafka clients connect to the bootstrap address once, then to whatever address the
broker advertises in its metadata.  So the broker here is a Tansu of the test's
own that listens on one port and advertises the proxy's: every byte a client
exchanges with it passes through ``KafkaProxy``.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from pathlib import Path

from chimera.kafka.broker import broker_binary, broker_env
from tests.helpers import free_port


class KafkaProxy:
    """Forwards ``127.0.0.1:port`` to ``upstream``; ``cut`` drops and refuses, ``delay`` slows."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.delay_s = 0.0
        self._refusing = False
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._closed = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", self.port), backlog=64)
        self._listener.settimeout(0.2)
        self.accepted = 0
        self._thread = threading.Thread(target=self._accept, name="kafka-proxy", daemon=True)
        self._thread.start()

    # --- faults --------------------------------------------------------------------------------

    def cut(self) -> None:
        """Drop every open connection and refuse new ones until ``restore``."""
        with self._lock:
            self._refusing = True
            conns, self._conns = self._conns, set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def delay(self, seconds: float) -> None:
        """Hold every chunk this long before passing it on (both directions)."""
        self.delay_s = seconds

    def restore(self) -> None:
        self.delay_s = 0.0
        with self._lock:
            self._refusing = False

    def close(self) -> None:
        self._closed.set()
        self.cut()
        self._listener.close()
        self._thread.join(5)

    # --- forwarding ----------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                refusing = self._refusing
            if refusing:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                client.close()
                continue
            self.accepted += 1
            for sock in (client, upstream):
                sock.settimeout(None)
            with self._lock:
                self._conns |= {client, upstream}
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                if self.delay_s:
                    time.sleep(self.delay_s)
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._conns -= {src, dst}


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
