"""``python -m bridges``: run the Kafka bridge until SIGTERM or SIGINT.

Exit status: 0 after a clean stop, 2 for bad configuration, 1 if the bridge
itself failed (transient outages never end it: they are backed off and waited out).

With ``CHIMERA_METRICS_PORT`` set, the bridge serves its own ``/metrics``
(``chimera.metrics_server``); an open network address or a taken port is bad
configuration (status 2), refused before the bridge joins its consumer group.
"""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

from bridges.bridge import Bridge
from chimera import metrics_server, tracing
from chimera.errors import ConfigError
from chimera.logs import configure_logging
from chimera.settings import get_settings

log = logging.getLogger("bridges")


def main() -> int:
    try:
        settings = get_settings()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201 (no logging configured yet)
        return 2
    configure_logging(settings)
    try:
        server = metrics_server.serve(settings, "bridge")
    except ConfigError as exc:
        log.error("%s", exc)  # a refusal, not a failure: no traceback
        return 2
    tracing.setup(settings, "bridge")
    bridge = Bridge(settings)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        bridge.stop(signal.Signals(signum).name)  # sets an event; the loop logs it

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        bridge.run()
    except Exception:
        log.exception("the bridge failed")
        return 1
    finally:
        if server is not None:
            server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
