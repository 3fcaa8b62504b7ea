"""A proxy in front of Postgres that loses COMMITs, or their replies, on demand.

A connection that dies at COMMIT leaves the client not knowing whether its
transaction happened.  Two cases, alternated while armed:

- **reply lost**: the COMMIT reaches the server (the transaction is durable), then
  the connection is cut before the reply; the client sees an error for work that
  was done, and must not do it twice when it retries;
- **commit lost**: the COMMIT never arrives and the connection is cut; the server
  rolls the transaction back, and the client's retry must do all of it.

psycopg2 sends COMMIT as a simple query message of its own, which is what is matched.
"""

from __future__ import annotations

import threading

from tests.reliability.harness.tcp_proxy import Pair, TcpProxy

#: The simple-query message 'Q', length 11, "COMMIT\0".
COMMIT = b"Q\x00\x00\x00\x0bCOMMIT\x00"


class PgCommitCutter(TcpProxy):
    def __init__(self, upstream_port: int) -> None:
        super().__init__(upstream_port)
        self._armed = 0
        self._every = 1
        self._seen = 0
        self._count_lock = threading.Lock()
        self.replies_lost = 0
        self.commits_lost = 0
        self.commits_passed = 0

    def arm(self, count: int, *, every: int = 1) -> None:
        """Cut ``count`` COMMITs, one in every ``every`` (spread over the processes),
        alternating reply lost / commit lost."""
        with self._count_lock:
            self._armed = count
            self._every = every
            self._seen = 0

    def disarm(self) -> None:
        with self._count_lock:
            self._armed = 0

    @property
    def cuts(self) -> int:
        return self.replies_lost + self.commits_lost

    def client_chunk(self, pair: Pair, chunk: bytes) -> bytes | None:
        if COMMIT not in chunk:
            return chunk
        with self._count_lock:
            self._seen += 1
            if self._armed <= 0 or self._seen % self._every:
                self.commits_passed += 1
                return chunk
            self._armed -= 1
            reply_lost = self.cuts % 2 == 0
            if reply_lost:
                self.replies_lost += 1
            else:
                self.commits_lost += 1
        if reply_lost:
            pair.doomed = True  # the server commits; its answer never arrives
            return chunk
        pair.cut()
        return None
