"""gunicorn hooks for the web app, loaded by path::

    gunicorn -c web/gunicorn_conf.py --worker-class gthread ... 'web:create_app()'

Where it listens: ``bind`` below is ``CHIMERA_HTTP_HOST:CHIMERA_HTTP_PORT``, so the
address the app judges (``chimera.exposure``: loopback unless there is an API token,
and the Host check on loopback) is the address gunicorn really binds.  A ``--bind``
(or ``$PORT``) that differs is refused at start-up, and so is a network address
without ``CHIMERA_API_TOKEN`` (unless ``CHIMERA_ALLOW_ANONYMOUS=true``) or a Ray
cluster without ``RAY_AUTH_TOKEN``: the master exits with status 2 and the reason,
before any socket is opened.

With several workers each process counts its own requests and LLM calls.
prometheus_client's multiprocess mode has every worker keep its values in files
in one directory, and ``/metrics`` (answered by any worker) sums them.  The
directory must be chosen before a worker imports prometheus_client, so the master
sets it here when it starts and empties it (values left by an earlier run would
be added in).  This file is loaded by path rather than as ``web.gunicorn_conf``
because importing the ``web`` package in the master would import
prometheus_client before the directory is set; the master imports only the
settings and ``chimera.exposure``, which do not.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, NoReturn

from chimera.errors import ConfigError
from chimera.exposure import bind_address, check_bind, check_ray_settings
from chimera.settings import Settings, get_settings

#: prometheus_client's own variable.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_created: list[Path] = []


def _refuse(message: str) -> NoReturn:
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    sys.exit(2)


def _settings() -> Settings:
    try:
        return get_settings()
    except ConfigError as exc:
        _refuse(str(exc))


#: gunicorn's setting: where the settings say the app listens.
bind = [bind_address(_settings())]


def on_starting(server: Any) -> None:
    _check_listening(server)
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
    else:
        path = Path(tempfile.mkdtemp(prefix="chimera-web-metrics-"))
        _created.append(path)
    os.environ[MULTIPROC_ENV] = str(path)


def _check_listening(server: Any) -> None:
    """Listen only where the settings say, and only as openly as they allow."""
    settings = _settings()
    expected = [bind_address(settings)]
    if list(server.cfg.bind) != expected:
        _refuse(
            f"gunicorn would listen on {', '.join(server.cfg.bind)}, but CHIMERA_HTTP_HOST and "
            f"CHIMERA_HTTP_PORT say {expected[0]}: set those instead of --bind (the app's "
            "access checks depend on where it listens)"
        )
    try:
        warning = check_bind(settings)
        check_ray_settings(settings)
    except ConfigError as exc:
        _refuse(str(exc))
    if warning is not None:
        server.log.warning(warning)


def post_fork(server: Any, worker: Any) -> None:
    """Each worker logs the way every chimera entry point does."""
    # Imported here, in the worker: nothing that loads prometheus_client may load in
    # the master (see above).
    import logging  # noqa: PLC0415

    from chimera.logs import configure_logging  # noqa: PLC0415
    from chimera.redaction import RedactingFilter  # noqa: PLC0415

    settings = get_settings()
    configure_logging(settings)
    # gunicorn's loggers keep their own handlers: mask and cut what they write too (a
    # query string with a key in it, a request line as long as a request may be).
    for name in ("gunicorn.error", "gunicorn.access"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(RedactingFilter(max_message_chars=settings.max_log_message_chars))


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges (its counters stay in the sums)."""
    from prometheus_client import multiprocess  # noqa: PLC0415 - after on_starting set the dir

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    for path in _created:
        shutil.rmtree(path, ignore_errors=True)
