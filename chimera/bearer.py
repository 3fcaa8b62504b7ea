"""Bearer tokens: which a kind of listener accepts, and whether a request carries one.

The one home of the check: the web app (``web.auth``) and every process's own metrics
listener (``chimera.metrics_server``) ask it.  ``/metrics`` anywhere is an *operator*
route: ``CHIMERA_API_TOKEN`` or ``CHIMERA_METRICS_TOKEN`` opens it, so a scraper needs
no API token.  An empty tuple of accepted tokens means the route is open (the
loopback-only case: ``chimera.exposure`` and ``chimera.metrics_server`` refuse a network
address without a token).
"""

from __future__ import annotations

import hmac

from pydantic import SecretStr

from chimera.exposure import has_secret
from chimera.settings import Settings

#: What a refused request is told to send (the settings that hold operator tokens).
OPERATOR_TOKENS = "CHIMERA_API_TOKEN or CHIMERA_METRICS_TOKEN"


def secrets_of(*values: SecretStr | None) -> tuple[bytes, ...]:
    """The set ones among ``values``, as bytes to compare."""
    return tuple(v.get_secret_value().encode() for v in values if has_secret(v))


def api_tokens(settings: Settings) -> tuple[bytes, ...]:
    """What opens data and spend routes: the API token alone."""
    return secrets_of(settings.api_token)


def operator_tokens(settings: Settings) -> tuple[bytes, ...]:
    """What opens operator routes (``/metrics``): the API token or the metrics token."""
    return secrets_of(settings.api_token, settings.metrics_token)


def presents(authorization: str | None, accepted: tuple[bytes, ...]) -> bool:
    """True when no token is required, or ``authorization`` (an ``Authorization``
    header's value) is ``Bearer <one of accepted>``."""
    if not accepted:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    presented = given.strip().encode()
    # Every token compared, in constant time: which one matched (or how nearly) stays hidden.
    matches = [hmac.compare_digest(presented, token) for token in accepted]
    return any(matches)
