"""The Host-header check: a loopback app answers loopback names only (DNS rebinding).

A browser that loads a page of ``evil.example`` and then has that name resolve to
127.0.0.1 sends ``Host: evil.example:8085`` to the app on this machine; same-origin
rules see one origin and let the page read the answers.  Refusing every Host but
the loopback names and ``CHIMERA_HTTP_ALLOWED_HOSTS`` closes that way in
(``chimera.exposure.allowed_hosts`` says when the check applies).  A request
without a Host header (HTTP/1.0) is no browser's, and passes.

The refusal is ``421 Misdirected Request``: this server is not the one the name is
for.
"""

from __future__ import annotations

from flask import Flask, request
from werkzeug.exceptions import MisdirectedRequest

from chimera.exposure import allowed_hosts, host_name
from chimera.settings import Settings
from chimera.untrusted import clip, printable

#: Characters of a refused Host quoted in the answer.
_QUOTED = 100


def init_app(app: Flask, settings: Settings) -> None:
    allowed = allowed_hosts(settings)
    if allowed is None:
        return
    names = ", ".join(sorted(allowed))

    @app.before_request
    def check_host() -> None:
        given = request.headers.get("Host")
        if given is None or host_name(given) in allowed:
            return
        raise MisdirectedRequest(
            f"this server answers to {names} only, not to Host {clip(printable(given), _QUOTED)!r}"
            " (a name that merely resolves to it is refused: DNS rebinding); "
            "add the name to CHIMERA_HTTP_ALLOWED_HOSTS if it is yours"
        )
