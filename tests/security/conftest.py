"""Fixtures of the security tests: the web app's (``make_app``, ``web_settings``) and
logging configured the way an entry point configures it."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chimera import redaction
from chimera.logs import configure_logging
from chimera.settings import Settings
from tests.web.conftest import make_app, web_settings

__all__ = ["make_app", "refusing_provider", "service_logs", "web_settings"]

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


class _RefusingProvider(BaseHTTPRequestHandler):
    """An LLM API that refuses every key and quotes the credentials it was sent: bare, as
    OpenAI's 401 does (only a redactor that knows the value can mask that: no header name
    or scheme shows), then with their header names."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        sent = {
            k: v
            for k, v in self.headers.items()
            if k.lower() in ("authorization", "x-api-key", "x-goog-api-key")
        }
        bare = " ".join(v.removeprefix("Bearer ") for v in sent.values())
        message = f"Incorrect API key provided: {bare} (sent {sent} for {self.path})"
        body = json.dumps(
            {
                "type": "error",
                "error": {
                    "type": "authentication_error",
                    "code": 401,
                    "status": "UNAUTHENTICATED",
                    "message": message,
                },
            }
        ).encode()
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def refusing_provider() -> Iterator[str]:
    """The base URL of a real HTTP server answering like ``_RefusingProvider``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RefusingProvider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)
