"""The Flower component of the local stack: ``celery -A tasks.worker flower``.

Flower loads the workers' own Celery app, so ``celeryconfig`` gives it the same
broker URL and ``broker_transport_options``, ``global_keyprefix`` included.  kombu
applies that prefix to every key and pub/sub channel, so Flower's event receiver,
its remote control (inspect, ``enable_events``) and the queue lengths of its broker
page all meet our prefixed keys, and it sees our workers and queues, and only ours.

Credentials reach Flower as ``FLOWER_BASIC_AUTH`` in its environment (Flower reads
``FLOWER_<OPTION>`` variables as its ``--<option>`` flags), not as ``--basic-auth``
on its command line, where ``ps`` and the stack's pid record would show them.
Flower serves its REST API (``/api/...``) only behind authentication, unless
``FLOWER_UNAUTHENTICATED_API=true`` is exported; its pages and ``/healthcheck``
answer either way.
"""

from __future__ import annotations

import base64
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from chimera.errors import StackError
from chimera.settings import Settings

#: Workers that went offline (e.g. replaced after a crash) leave Flower's list after this.
PURGE_OFFLINE_WORKERS_S = 300
#: The tasks page's columns: the arguments name the work (event id, conversation id and
#: turn index), and our task ids are derived from them too.
TASK_COLUMNS = "name,args,state,retries,received,runtime,worker,uuid"
#: What Flower's log says when its port was taken between our check and its bind.
BIND_FAILED = "Address already in use"
_ANY_ADDRESS = ("0.0.0.0", "::", "")  # noqa: S104 - recognised, not bound


def probe_host(settings: Settings) -> str:
    """The host a local client connects to (a wildcard bind is reached on loopback)."""
    return "127.0.0.1" if settings.flower_host in _ANY_ADDRESS else settings.flower_host


def base_url(settings: Settings) -> str:
    host = probe_host(settings)
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.flower_port}"


def flower_argv(settings: Settings) -> list[str]:
    """The command line: Flower on the settings' address and port, logging at their level."""
    argv = [sys.executable, "-m", "celery", "-A", "tasks.worker", "flower"]
    argv += [f"--address={settings.flower_host}", f"--port={settings.flower_port}"]
    argv += [
        f"--purge_offline_workers={PURGE_OFFLINE_WORKERS_S}",
        f"--tasks_columns={TASK_COLUMNS}",
    ]
    return [*argv, f"--logging={settings.log_level.lower()}"]


def flower_env(settings: Settings, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` with Flower's credentials from the settings, and no others."""
    env = {k: v for k, v in base.items() if k != "FLOWER_BASIC_AUTH"}
    if settings.flower_basic_auth is not None:
        env["FLOWER_BASIC_AUTH"] = settings.flower_basic_auth.get_secret_value()
    return env


def auth_headers(settings: Settings) -> dict[str, str]:
    """The Authorization header Flower asks for, if it asks for one."""
    if settings.flower_basic_auth is None:
        return {}
    token = base64.b64encode(settings.flower_basic_auth.get_secret_value().encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _get(settings: Settings, path: str, timeout_s: float) -> bytes:
    url = f"{base_url(settings)}{path}"
    request = urllib.request.Request(url, headers=auth_headers(settings))  # noqa: S310 (our URL)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as exc:
        hint = " (check CHIMERA_FLOWER_BASIC_AUTH)" if exc.code == 401 else ""
        raise StackError(f"Flower at {url} answers {exc.code}{hint}") from exc
    except OSError as exc:
        raise StackError(f"Flower at {base_url(settings)} does not answer: {exc}") from exc


def is_ready(settings: Settings) -> bool:
    """Flower serves HTTP (``/healthcheck`` needs no credentials)."""
    try:
        return _get(settings, "/healthcheck", timeout_s=1.0) == b"OK"
    except StackError:
        return False


def online_workers(settings: Settings, timeout_s: float = 5.0) -> list[str]:
    """The workers Flower has heard from and thinks alive (what its workers page lists)."""
    try:
        body: Any = json.loads(_get(settings, "/workers?json=1", timeout_s))
    except ValueError as exc:
        raise StackError(f"Flower at {base_url(settings)} sent no JSON: {exc}") from exc
    rows = body.get("data", []) if isinstance(body, dict) else []
    return sorted(str(w["hostname"]) for w in rows if w.get("status") and "hostname" in w)


def detail(settings: Settings) -> str:
    """A status line: the URL, whether it asks for credentials, the workers it sees."""
    if not is_ready(settings):
        raise StackError(f"Flower at {base_url(settings)} does not answer /healthcheck")
    auth = "basic auth" if settings.flower_basic_auth is not None else "no auth"
    workers = online_workers(settings)
    seen = f"{len(workers)} worker{'' if len(workers) == 1 else 's'} online"
    return f"{base_url(settings)} ({auth}), {seen}" + (f": {', '.join(workers)}" if workers else "")
