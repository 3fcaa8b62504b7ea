"""The web component of the local stack: gunicorn serving ``web:create_app()``.

gthread workers: the synchronous "analyze now" endpoint waits on I/O (LLM calls),
so threads serve concurrent requests cheaply.  ``web/gunicorn_conf.py`` gives the
workers one prometheus_client multiprocess directory, so ``/metrics`` sums them,
and binds ``CHIMERA_HTTP_HOST:CHIMERA_HTTP_PORT`` itself: the command line names no
address, so the one in the settings is the one the app's access checks judge
(``chimera.exposure``).
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from chimera.errors import StackError
from chimera.exposure import has_secret
from chimera.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
GUNICORN_CONF = PROJECT_ROOT / "web" / "gunicorn_conf.py"
#: Seconds gunicorn gives in-flight requests on SIGTERM (below the stack's stop timeout).
GRACEFUL_TIMEOUT_S = 30
_ANY_ADDRESS = ("0.0.0.0", "::", "")  # noqa: S104 - recognised, not bound


def base_url(settings: Settings) -> str:
    """Where a local client reaches the app (a wildcard bind is reached on loopback)."""
    host = "127.0.0.1" if settings.http_host in _ANY_ADDRESS else settings.http_host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.http_port}"


def is_any_address(host: str) -> bool:
    """Whether listening on ``host`` means every address of the machine."""
    return host in _ANY_ADDRESS


def probe_host(settings: Settings) -> str:
    """The host to test for a busy port."""
    return "127.0.0.1" if is_any_address(settings.http_host) else settings.http_host


def gunicorn_argv(settings: Settings) -> list[str]:
    """The command line that serves the app with the settings' workers and threads (and
    address: gunicorn_conf binds CHIMERA_HTTP_HOST:CHIMERA_HTTP_PORT from the environment)."""
    argv = [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF)]
    argv += ["--worker-class", "gthread"]
    argv += ["--workers", str(settings.http_workers), "--threads", str(settings.http_threads)]
    argv += ["--graceful-timeout", str(GRACEFUL_TIMEOUT_S), "--no-control-socket"]
    argv += ["--log-level", settings.log_level.lower()]
    return [*argv, "web:create_app()"]


def fetch_json(
    url: str, timeout_s: float, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """GET ``url``: (status, decoded JSON body); an error status is an answer too."""
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 (our URL)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            return int(response.status), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"null")
        except ValueError:
            return exc.code, None
    except (OSError, ValueError) as exc:
        raise StackError(f"the web app at {url} does not answer: {exc}") from exc


def detail(settings: Settings) -> str:
    """A status line: liveness (raises when the app does not answer) and readiness."""
    url = base_url(settings)
    status, _ = fetch_json(f"{url}/healthz", timeout_s=2.0)
    if status != 200:
        raise StackError(f"the web app at {url} answers /healthz with {status}")
    size = f"{settings.http_workers} workers x {settings.http_threads} threads"
    try:
        ready_status, body = fetch_json(f"{url}/readyz", 5.0, operator_headers(settings))
    except StackError:
        return f"{url} ({size}), /readyz did not answer"
    if ready_status == 200:
        return f"{url} ({size}), ready"
    checks = body.get("checks", {}) if isinstance(body, dict) else {}
    failing = ", ".join(name for name, c in checks.items() if not c.get("ok")) or "?"
    return f"{url} ({size}), not ready: {failing}"


def operator_headers(settings: Settings) -> dict[str, str]:
    """What opens /readyz's details and /metrics: a token of the settings, if any is set."""
    for token in (settings.api_token, settings.metrics_token):
        if has_secret(token):
            return {"Authorization": f"Bearer {token.get_secret_value()}"}
    return {}
