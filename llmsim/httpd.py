"""The HTTP transport: a thread-per-connection server built on ``http.server``.

Why the standard library's ``ThreadingHTTPServer`` rather than werkzeug's ``make_server``: the
faults need the raw socket — ``reset`` closes it with SO_LINGER 0 so the client sees a TCP RST,
a stream must be flushed event by event at a controlled pace, and a clean stop has to wake
handlers that sleep (latency, timeout faults) or wait on idle keep-alive connections.  Here
every connection socket and handler thread is tracked, so :meth:`SimHTTPServer.stop` can shut
them down and join them: no leaked threads or sockets.  A thread per connection keeps hundreds
of slow calls in flight at once; the listen backlog is raised to 1024 so a burst of new
connections is not refused.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from llmsim.http_types import Reply, Request, Reset, Response, Stream

log = logging.getLogger("llmsim.httpd")

App = Callable[[Request], Reply]
_MAX_BODY_BYTES = 64 * 1024 * 1024
_REASONS = {529: "Overloaded"}


class SimHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() joins the handler threads itself, with a timeout
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._workers: set[threading.Thread] = set()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        worker = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name=f"llmsim-conn:{self.server_address[1]}",
            daemon=True,
        )
        with self._lock:
            self._connections.add(request)
            self._workers.add(worker)
        worker.start()

    def _serve_connection(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            if not self.stopping.is_set():
                log.exception("connection from %s failed", client_address)
        finally:
            self.shutdown_request(request)
            with self._lock:
                self._connections.discard(request)
                self._workers.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.error("error serving %s: %r", client_address, sys.exc_info()[1])

    def sleep(self, seconds: float) -> bool:
        """Wait, unless the server stops first; True when the full time passed."""
        return seconds <= 0 or not self.stopping.wait(seconds)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop accepting, wake sleeping handlers, drop open connections, join every thread."""
        self.stopping.set()
        self.shutdown()
        with self._lock:
            connections = list(self._connections)
            workers = list(self._workers)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for worker in workers:
            worker.join(timeout_s)
            if worker.is_alive():
                log.warning("a simulator connection thread did not stop within %.1f s", timeout_s)
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the body waits for
    # the client's delayed ACK of the headers: ~40 ms added to every keep-alive call.
    disable_nagle_algorithm = True
    server: SimHTTPServer

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """The app logs one line per call; the per-request access log would only repeat it."""

    def _handle(self) -> None:
        try:
            body = self._read_body()
        except ValueError as exc:
            self.send_error(400, str(exc))
            return
        request = Request.build(self.command, self.path, dict(self.headers.items()), body)
        reply = self.server.app(request)
        try:
            self._send(reply)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            # The client went away (e.g. it timed out first): nothing left to tell it.
            self.close_connection = True

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        if length < 0 or length > _MAX_BODY_BYTES:
            raise ValueError(f"request body of {length} bytes is not accepted")
        return self.rfile.read(length) if length else b""

    def _send(self, reply: Reply) -> None:
        if isinstance(reply, Reset):
            self._reset()
            return
        if not self.server.sleep(reply.delay_s):
            self.close_connection = True
            return
        self.send_response(reply.status, _REASONS.get(reply.status))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if isinstance(reply, Response):
            self.send_header("content-length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
            return
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        self._stream(reply)

    def _stream(self, reply: Stream) -> None:
        for pause, data in reply.events:
            if not self.server.sleep(pause):
                self.close_connection = True
                return
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout turns close() into a TCP RST: the client sees
        # "connection reset by peer", not a clean end of stream.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True
