"""What a browser shows: Flower's workers page and the web app's /readyz, loaded by
headless Chromium (Debian's ``chromium``; ``scripts/ensure-browser.sh`` installs it)."""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chimera.settings import Settings
from chimera.stack.checks import run_canary
from chimera.stack.flower import online_workers
from tests.helpers import free_port, wait_for
from tests.web import test_server
from tests.web.flower_process import FlowerProcess, serve_flower_fixture  # noqa: F401
from tests.web.test_server import Server

CHROMIUM = Path("/usr/bin/chromium")
#: test_server's gunicorn fixture, known here as ``serve_web``.
serve_web = test_server.serve


@pytest.fixture
def browser(tmp_path: Path) -> Callable[..., str]:
    """``browser(url)``: the DOM of ``url`` once its scripts ran, from headless Chromium."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: run scripts/ensure-browser.sh to install Chromium "
            "(CI runs it before the tests)",
            pytrace=False,
        )
    profiles = iter(range(1_000))

    def dump_dom(url: str, *, budget_ms: int = 5_000) -> str:
        argv = [str(CHROMIUM), "--headless=new", "--no-sandbox", "--disable-gpu"]
        argv += [f"--user-data-dir={tmp_path / f'chromium-{next(profiles)}'}"]
        # Virtual time runs the page's timers (Flower's refresh) without waiting for them.
        argv += [f"--virtual-time-budget={budget_ms}", "--dump-dom", url]
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
        try:
            out, err = proc.communicate(timeout=30)
        finally:
            # The browser's helpers share its session; none may outlive it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        assert proc.returncode == 0, f"chromium exited {proc.returncode}:\n{err.decode()[-2000:]}"
        return out.decode()

    return dump_dom


def json_shown(dom: str) -> Any:
    """The JSON document a browser shows as text (Chromium wraps it in a <pre>)."""
    match = re.search(r"<pre[^>]*>(.*?)</pre>", dom, re.S)
    assert match, dom[:2000]
    return json.loads(html.unescape(match.group(1)))


@pytest.mark.subprocess_worker
def test_a_browser_sees_the_worker_in_flower_and_a_ready_api(
    browser: Callable[..., str],
    serve_flower: Callable[..., FlowerProcess],
    serve_web: Callable[[Settings], Server],
    worker_process: Callable[..., Any],
    kafka_broker: Settings,
    db: Any,
) -> None:
    worker = worker_process(env={"CHIMERA_CELERY_TASK_EVENTS": "true"})
    name = run_canary(worker.settings, timeout_s=10)["worker"]
    flower = serve_flower(worker.settings)  # no credentials, as the local stack runs it
    wait_for(
        lambda: name in online_workers(flower.settings),
        timeout_s=15,
        interval_s=0.2,
        what=f"Flower to hear from {name}",
    )
    web = serve_web(worker.settings.model_copy(update={"http_port": free_port()}))

    page = browser(f"{flower.url}/workers")
    row = re.search(r'<tr[^>]*>\s*<td><a class="worker-name-link"[^>]*title="([^"]+)"', page)
    assert row and row.group(1) == name, page[-4000:]
    assert "Online" in page[row.end() : page.index("</tr>", row.end())]
    # The page's own script counted it: its scripts ran against Flower's live data.
    assert re.search(r'id="workers-online">1<', page), page[:4000]

    run_canary(worker.settings, timeout_s=10)  # a fresh report for /readyz
    ready = json_shown(browser(f"http://127.0.0.1:{web.settings.http_port}/readyz", budget_ms=1))
    assert ready["status"] == "ready", ready
    assert {"redis", "postgres", "kafka", "worker"} <= set(ready["checks"])
    assert all(check["ok"] for check in ready["checks"].values()), ready
    assert name in ready["checks"]["worker"]["detail"]
