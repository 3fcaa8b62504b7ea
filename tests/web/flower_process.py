"""Flower as the stack runs it, for tests: ``celery -A tasks.worker flower`` in a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chimera.settings import Settings, to_env
from chimera.stack.flower import auth_headers, base_url, flower_argv, flower_env, is_ready
from tests.conftest import PROJECT_ROOT
from tests.helpers import free_port, wait_for


class FlowerProcess:
    """Flower with the given settings (broker, key prefix, queue, port, credentials)."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.url = base_url(settings)
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CHIMERA_", "KAFKA_", "REDIS_", "FLOWER_"))
        }
        with open(log_path, "wb") as log_file:
            self.proc = subprocess.Popen(
                flower_argv(settings),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=PROJECT_ROOT,
                env=flower_env(settings, inherited | to_env(settings)),
                start_new_session=True,
            )

    def get(self, path: str, *, auth: bool = True) -> tuple[int, bytes]:
        """GET ``path``: (status, body); an error status is an answer too."""
        headers = auth_headers(self.settings) if auth else {}
        request = urllib.request.Request(f"{self.url}{path}", headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return int(response.status), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def get_json(self, path: str) -> Any:
        status, body = self.get(path)
        assert status == 200, f"GET {path}: {status} {body[:200]!r}\n{self.log()}"
        return json.loads(body)

    def answers(self) -> bool:
        assert self.proc.poll() is None, f"Flower exited:\n{self.log()}"
        return is_ready(self.settings)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture(name="serve_flower")
def serve_flower_fixture(tmp_path: Path) -> Iterator[Callable[..., FlowerProcess]]:
    """``serve_flower(settings, **update)``: Flower on a free port for ``settings`` (and
    ``update``), waited until it answers; killed after the test.  Import this function
    into a test module to use the fixture there."""
    started: list[FlowerProcess] = []

    def start(settings: Settings, **update: Any) -> FlowerProcess:
        scoped = settings.model_copy(update={"flower_port": free_port(), **update})
        flower = FlowerProcess(scoped, tmp_path / f"flower-{len(started)}.log")
        started.append(flower)
        wait_for(flower.answers, timeout_s=30, interval_s=0.1, what="Flower to answer")
        return flower

    yield start
    for flower in started:
        flower.kill()
