"""A Redis server and a Postgres cluster of the test's own, on free ports in temporary folders.

The machine's shared servers are never stopped or wiped: every fault that takes a
dependency away happens to one of these.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from tests.helpers import free_port, wait_for


class PrivateRedis:
    """``redis-server`` on a free port; no persistence unless a restart asks to keep the data."""

    def __init__(self, workdir: Path) -> None:
        if shutil.which("redis-server") is None:
            raise AssertionError("redis-server is required for the reliability tests")
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.dir)]
        argv += ["--dbfilename", "dump.rdb", "--maxmemory-policy", "noeviction"]
        log = open(self.dir / "redis.log", "ab")  # noqa: SIM115 (kept by the child)
        with log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self.ping, timeout_s=20, interval_s=0.05, what="the private redis-server")

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(port=self.port, db=db, socket_timeout=2, socket_connect_timeout=2)

    def ping(self) -> bool:
        client = self.client()
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: whatever was in memory is gone."""
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGCONT)  # a paused server must be able to die
            self.proc.kill()
            self.proc.wait(10)

    def restart(self, down_s: float = 0.0) -> None:
        """Save to disk, stop, stay down ``down_s``, start again with the same data."""
        client = self.client()
        with contextlib.suppress(redis.ConnectionError):
            client.shutdown(save=True)
        client.close()
        assert self.proc is not None
        self.proc.wait(20)
        time.sleep(down_s)
        self.start()

    def crash_restart(self, down_s: float = 0.0) -> None:
        """Snapshot, SIGKILL, stay down ``down_s``, start on the snapshot: a crash of a
        server that persists its data (connections are cut, not closed politely)."""
        client = self.client()
        try:
            client.save()
        finally:
            client.close()
        self.kill()
        time.sleep(down_s)
        self.start()

    def restart_empty(self) -> None:
        """Kill and start with nothing: every queue, unacked message, lock and state is lost."""
        self.kill()
        (self.dir / "dump.rdb").unlink(missing_ok=True)
        self.start()

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's bin folder (Debian's layout)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if not found:
        on_path = shutil.which("initdb")
        if on_path is None:
            raise AssertionError("initdb is required for the reliability tests")
        return Path(on_path).parent
    return Path(found[-1]).parent


class PrivatePostgres:
    """A cluster made with initdb and run with pg_ctl; trust auth, migrated ``chimera`` database.

    initdb refuses to run as root, so as root the cluster belongs to ``postgres``.
    """

    def __init__(self) -> None:
        self.bin = postgres_bin()
        # Not under pytest's tmp_path: that is private to root, and the server may not be.
        self.dir = Path(tempfile.mkdtemp(prefix="chimera-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/chimera"

    def _run(self, tool: str, *args: str) -> None:
        argv = [*self._as, str(self.bin / tool), *args]
        done = subprocess.run(argv, capture_output=True, cwd=self.dir, check=False)
        assert done.returncode == 0, f"{tool} failed: {done.stdout!r} {done.stderr!r}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        options += " -c max_connections=200"
        log = str(self.dir / "log")
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "-t", "60", "start"
        )
        wait_for(self.ready, timeout_s=60, interval_s=0.1, what="the private Postgres")

    def ready(self) -> bool:
        argv = [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)]
        return subprocess.run(argv, capture_output=True, check=False).returncode == 0

    def migrate(self, project_root: Path) -> None:
        """Create and migrate the database the way operators do: ``chimera db upgrade``."""
        env = os.environ | {"DATABASE_URL": self.url}
        done = subprocess.run(
            [sys.executable, "-m", "chimera", "db", "upgrade"],
            capture_output=True,
            cwd=project_root,
            env=env,
            check=False,
        )
        assert done.returncode == 0, f"db upgrade failed: {done.stdout!r} {done.stderr!r}"

    def stop(self, mode: str = "fast") -> None:
        """``fast`` disconnects every client at once; ``immediate`` is a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def close(self) -> None:
        with contextlib.suppress(AssertionError):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
