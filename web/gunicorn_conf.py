"""gunicorn hooks for the web app, loaded by path::

    gunicorn -c web/gunicorn_conf.py --worker-class gthread ... 'web:create_app()'

With several workers each process counts its own requests and LLM calls.
prometheus_client's multiprocess mode has every worker keep its values in files
in one directory, and ``/metrics`` (answered by any worker) sums them.  The
directory must be chosen before a worker imports prometheus_client, so the master
sets it here when it starts and empties it (values left by an earlier run would
be added in).  This file is loaded by path rather than as ``web.gunicorn_conf``
because importing the ``web`` package in the master would import
prometheus_client before the directory is set.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

#: prometheus_client's own variable.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_created: list[Path] = []


def on_starting(server: Any) -> None:
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


def post_fork(server: Any, worker: Any) -> None:
    """Each worker logs the way every chimera entry point does."""
    # Imported here, in the worker: nothing chimera may load in the master (see above).
    import logging  # noqa: PLC0415

    from chimera.logs import configure_logging  # noqa: PLC0415
    from chimera.redaction import RedactingFilter  # noqa: PLC0415
    from chimera.settings import get_settings  # noqa: PLC0415

    configure_logging(get_settings())
    # gunicorn's loggers keep their own handlers: mask what they write too (a query
    # string with a key in it, say).
    for name in ("gunicorn.error", "gunicorn.access"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(RedactingFilter())


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges (its counters stay in the sums)."""
    from prometheus_client import multiprocess  # noqa: PLC0415 - after on_starting set the dir

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    for path in _created:
        shutil.rmtree(path, ignore_errors=True)
