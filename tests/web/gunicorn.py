"""gunicorn serving ``web:create_app()`` the way the stack serves it, for tests."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from chimera.settings import Settings, to_env
from chimera.stack.web import gunicorn_argv
from tests.conftest import PROJECT_ROOT


class Server:
    """``gunicorn ... 'web:create_app()'`` with the test's settings in its environment."""

    def __init__(self, settings: Settings, log_path: Path, metrics_dir: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.metrics_dir = metrics_dir
        metrics_dir.mkdir(parents=True, exist_ok=True)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CHIMERA_", "KAFKA_", "REDIS_", "PROMETHEUS_"))
        }
        with open(log_path, "wb") as log_file:
            self.proc = subprocess.Popen(
                gunicorn_argv(settings),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=PROJECT_ROOT,
                env=env | to_env(settings) | {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
                start_new_session=True,
            )

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.settings.http_port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def get_json(self, path: str) -> tuple[int, Any]:
        status, _, body = self.request("GET", path)
        return status, json.loads(body)

    def answers(self) -> bool:
        assert self.proc.poll() is None, f"gunicorn exited:\n{self.log()}"
        with contextlib.suppress(OSError):
            return self.request("GET", "/healthz")[0] == 200
        return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
