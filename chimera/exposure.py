"""Who can reach the web app (its address, the Host names it answers to), and which Ray
cluster analyses may be sent to.

Without ``CHIMERA_API_TOKEN`` every route is open (stored data, LLM spend), so the app
listens on loopback only.  A non-loopback ``CHIMERA_HTTP_HOST`` without a token is
refused at start-up, unless ``CHIMERA_ALLOW_ANONYMOUS=true`` says that an open API on
the network is intended; then every process that serves it logs a warning.  Both
``web.create_app`` and gunicorn's master (``web/gunicorn_conf.py``) call
``check_bind``, and gunicorn binds the settings' address (``bind_address``), so the
address judged here is the one that is really bound.

Loopback alone does not stop a browser: a page on any site the operator visits can
make the browser call a name of the attacker's that resolves to 127.0.0.1 (DNS
rebinding), and the browser then sends that name as the ``Host``.  ``allowed_hosts``
is what the app accepts as ``Host`` in that case: loopback names and
``CHIMERA_HTTP_ALLOWED_HOSTS``.

Whoever can submit work to a Ray cluster runs code there and reads what its jobs were
given (provider keys, the database URL): ``check_ray_settings`` refuses a cluster named
by ``RAY_ADDRESS`` without Ray's token authentication (``RAY_AUTH_TOKEN``).

This module imports nothing but the settings: gunicorn's master loads it before any
worker exists (see ``web/gunicorn_conf.py`` for why that matters), and refuses there
what ``web.create_app`` would refuse in every worker.
"""

from __future__ import annotations

import ipaddress
from typing import TypeGuard

from pydantic import SecretStr

from chimera.errors import ConfigError
from chimera.settings import Settings

#: ``Host`` names that always reach this machine itself (compared without the port).
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
#: In CHIMERA_HTTP_ALLOWED_HOSTS: accept any Host.
ANY_HOST = "*"
#: RAY_ADDRESS values that start a Ray on this machine; any other names a cluster.
LOCAL_RAY = ("", "local")


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` (a name or an address) serves this machine only."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:  # "", a wildcard spelled otherwise, or a name: not provably local
        return False


def has_secret(value: SecretStr | None) -> TypeGuard[SecretStr]:
    """Whether a secret setting is set to something (an empty value is unset)."""
    return value is not None and bool(value.get_secret_value())


def bind_address(settings: Settings) -> str:
    """``host:port`` as gunicorn takes it (IPv6 hosts in brackets)."""
    host = settings.http_host
    return f"[{host}]:{settings.http_port}" if ":" in host else f"{host}:{settings.http_port}"


def check_bind(settings: Settings) -> str | None:
    """Refuse an open app on a network address (``ConfigError``); when
    ``CHIMERA_ALLOW_ANONYMOUS`` allows one, return the warning to log (else None)."""
    host = settings.http_host
    if is_loopback(host) or has_secret(settings.api_token):
        return None
    if not settings.allow_anonymous:
        raise ConfigError(
            "invalid configuration:\n"
            f"  CHIMERA_HTTP_HOST: {host or '(every address)'} is not a loopback address and "
            "CHIMERA_API_TOKEN is not set, so every route would be open to the network: "
            "set CHIMERA_API_TOKEN (e.g. `openssl rand -hex 32`), keep CHIMERA_HTTP_HOST on "
            "127.0.0.1, or set CHIMERA_ALLOW_ANONYMOUS=true if an open API is intended"
        )
    return (
        f"serving without CHIMERA_API_TOKEN on {host or 'every address'} "
        "(CHIMERA_ALLOW_ANONYMOUS=true): every route, stored data and LLM spend included, "
        "is open to whoever reaches it"
    )


def allowed_hosts(settings: Settings) -> frozenset[str] | None:
    """The ``Host`` names the app answers to, or None for any.

    Checked when the app listens on loopback (where DNS rebinding is the way in) or
    when ``CHIMERA_HTTP_ALLOWED_HOSTS`` lists names; ``["*"]`` turns the check off.
    """
    listed = {host_name(h) for h in settings.http_allowed_hosts if h.strip()}
    if ANY_HOST in listed or (not listed and not is_loopback(settings.http_host)):
        return None
    own = settings.http_host.strip().lower()  # 127.0.0.2, say: local clients name it
    own = f"[{own}]" if ":" in own and not own.startswith("[") else own
    return LOOPBACK_NAMES | listed | ({own} if is_loopback(own) else set())


def host_name(host: str) -> str:
    """A ``Host`` value without its port, lower-cased (``[::1]:8085`` -> ``[::1]``)."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end > 0 else host
    name, sep, port = host.rpartition(":")
    return name if sep and port.isdigit() else host


def check_ray_settings(settings: Settings) -> None:
    """Refuse (``ConfigError``) to send analyses to a Ray cluster without its token."""
    if settings.analyze_executor != "ray":
        return
    address = (settings.ray_address or "").strip()
    if address.lower() in LOCAL_RAY or has_secret(settings.ray_auth_token):
        return
    raise ConfigError(
        "invalid configuration:\n"
        f"  RAY_AUTH_TOKEN: RAY_ADDRESS={address} names a Ray cluster, and a cluster without "
        "token authentication runs whatever anyone who reaches it submits (analyses carry "
        "provider keys and the database URL): start it with RAY_AUTH_MODE=token and set "
        "RAY_AUTH_TOKEN to its token (`ray get-auth-token --generate`), or leave RAY_ADDRESS "
        "unset for a local Ray"
    )
