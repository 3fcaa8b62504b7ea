"""A TCP proxy on ``127.0.0.1`` that can cut, delay, freeze or (in subclasses) rewrite traffic.

Each accepted connection gets an upstream connection and two pump threads.  A
subclass sees every chunk through ``client_chunk`` / ``server_chunk`` and may drop
the pair there (``Pair.cut``): how ``PgCommitCutter`` loses a COMMIT or its reply.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

from tests.helpers import free_port


class Pair:
    """One client connection and its upstream connection."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.doomed = False  # cut when the server next speaks

    def cut(self) -> None:
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to ``upstream_port``; ``cut`` drops and refuses, ``delay`` slows,
    ``freeze`` holds (a hung server)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.delay_s = 0.0
        self._refusing = False
        self._thawed = threading.Event()
        self._thawed.set()
        self._lock = threading.Lock()
        self._pairs: set[Pair] = set()
        self._closed = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", self.port), backlog=64)
        self._listener.settimeout(0.2)
        self.accepted = 0
        self._thread = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)
        self._thread.start()

    # --- faults --------------------------------------------------------------------------------

    def cut(self) -> None:
        """Drop every open connection and refuse new ones until ``restore``."""
        with self._lock:
            self._refusing = True
            pairs, self._pairs = self._pairs, set()
        for pair in pairs:
            pair.cut()

    def delay(self, seconds: float) -> None:
        """Hold every chunk this long before passing it on (both directions)."""
        self.delay_s = seconds

    def freeze(self) -> None:
        """Accept connections and bytes but pass nothing on, either way, until ``restore``:
        a server that is up and answers nothing.  Held bytes go on when restored."""
        self._thawed.clear()

    def restore(self) -> None:
        self.delay_s = 0.0
        self._thawed.set()
        with self._lock:
            self._refusing = False

    def close(self) -> None:
        self._closed.set()
        self._thawed.set()
        self.cut()
        self._listener.close()
        self._thread.join(5)

    # --- hooks ---------------------------------------------------------------------------------

    def client_chunk(self, pair: Pair, chunk: bytes) -> bytes | None:
        """What to send upstream for ``chunk`` from the client (None: nothing, pair cut)."""
        return chunk

    def server_chunk(self, pair: Pair, chunk: bytes) -> bytes | None:
        """What to send the client for ``chunk`` from upstream (None: nothing, pair cut)."""
        if pair.doomed:
            pair.cut()
            return None
        return chunk

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
            pair = Pair(client, upstream)
            with self._lock:
                self._pairs.add(pair)
            for src, dst, hook in (
                (client, upstream, self.client_chunk),
                (upstream, client, self.server_chunk),
            ):
                threading.Thread(
                    target=self._pump, args=(pair, src, dst, hook), daemon=True
                ).start()

    def _pump(
        self,
        pair: Pair,
        src: socket.socket,
        dst: socket.socket,
        hook: Callable[[Pair, bytes], bytes | None],
    ) -> None:
        try:
            while chunk := src.recv(65536):
                self._thawed.wait()
                if self.delay_s:
                    time.sleep(self.delay_s)
                out = hook(pair, chunk)
                if out is None:
                    break
                dst.sendall(out)
        except OSError:
            pass
        finally:
            pair.cut()
            with self._lock:
                self._pairs.discard(pair)
