"""Fixtures of the security tests: the web app's (``make_app``, ``web_settings``) and
logging configured the way an entry point configures it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest

from chimera import redaction
from chimera.logs import configure_logging
from chimera.settings import Settings
from tests.web.conftest import make_app, web_settings

__all__ = ["make_app", "service_logs", "web_settings"]

#: Client libraries whose DEBUG lines (requests, connections) are read too.
CHATTY = (
    "httpx",
    "httpcore",
    "httpx2",
    "httpcore2",
    "anthropic",
    "openai",
    "google_genai",
    "kafka",
    "kafka.net",
)


@pytest.fixture
def service_logs(
    settings: Settings, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> Iterator[Callable[[Settings], Callable[[], str]]]:
    """Configure logging as an entry point does, for some settings, at DEBUG and with the
    client libraries' own loggers on; returns a reader of everything logged (the stderr
    lines, and what caplog captured after them)."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_levels = {name: logging.getLogger(name).level for name in CHATTY}

    def configure(secret: Settings) -> Callable[[], str]:
        configure_logging(secret.model_copy(update={"log_level": "DEBUG"}))
        for name in CHATTY:
            logging.getLogger(name).setLevel(logging.DEBUG)
        root.addHandler(caplog.handler)  # after ours: it sees the records ours saw
        return lambda: capsys.readouterr().err + caplog.text

    yield configure
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    for name, level in saved_levels.items():
        logging.getLogger(name).setLevel(level)
    logging.captureWarnings(False)
    redaction.install(settings)
