"""Small helpers shared by the tests."""

from __future__ import annotations

import random
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Every address: what a test binds to be refused or to check a token (a free port).
ANY_ADDRESS = "0.0.0.0"  # noqa: S104 - bound only on a free port, in a test


def http_get(url: str, token: str | None = None) -> tuple[int, str]:
    """``GET url`` (with ``Authorization: Bearer token``): the status and the body."""
    request = urllib.request.Request(url)  # noqa: S310 - a test's own http URL
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_port_block(n: int) -> int:
    """The first of ``n`` consecutive free ports, below the kernel's ephemeral range (where
    outgoing connections take ports at any moment, so a port after a free one may be taken
    before a server binds it)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20_000, 32_000 - n)
        socks = []
        try:
            for port in range(base, base + n):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError(f"no {n} consecutive free ports between 20000 and 32000")


def wait_for(
    condition: Callable[[], T], *, timeout_s: float = 20.0, interval_s: float = 0.05, what: str = ""
) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what or condition}")
        time.sleep(interval_s)
