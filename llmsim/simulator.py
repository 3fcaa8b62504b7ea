"""The Python handle: run the simulator in a background thread and drive it like the admin API.

>>> with Simulator(SimConfig(ttft_ms=200)) as sim:          # doctest: +SKIP
...     client = anthropic.Anthropic(api_key="sim", base_url=sim.base_url)
...     sim.add_fault("rate_limit", count=1, retry_after_s=2)
...     sim.calls().count(provider="anthropic", status=429)
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import threading
from types import TracebackType
from typing import Any

from llmsim.calllog import CallLogSnapshot
from llmsim.config import SimConfig
from llmsim.faults import FaultKind, FaultSpec
from llmsim.httpd import SimHTTPServer
from llmsim.server import SimApp
from llmsim.state import SimState

log = logging.getLogger("llmsim")


class Simulator:
    """An LLM simulator; :meth:`start` binds (port 0: a free one) and serves in a thread."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.state = SimState(config or SimConfig())
        self._server: SimHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Simulator:
        if self._server is not None:
            raise RuntimeError("the simulator is already running")
        config = self.state.config
        self._server = SimHTTPServer((config.host, config.port), SimApp(self.state))
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"llmsim:{self.port}",
            daemon=True,
        )
        self._thread.start()
        log.info("LLM simulator listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and join every thread (idempotent)."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.stop()
        if thread is not None:
            thread.join(5.0)
        log.info("LLM simulator stopped")

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        port: int = self._server.server_address[1]
        return port

    @property
    def base_url(self) -> str:
        """``http://host:port``: the Anthropic and Gemini base URL; OpenAI's is this + ``/v1``."""
        host = self.state.config.host
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(host).is_unspecified:  # listening everywhere: use loopback
                host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    # --- the admin API, in Python ----------------------------------------------------------------

    @property
    def config(self) -> SimConfig:
        return self.state.config

    def configure(self, **changes: Any) -> SimConfig:
        """A partial update, as ``POST /_sim/config``: ``configure(limits={"rpm": 5})``."""
        return self.state.configure(changes)

    def add_fault(
        self,
        kind: FaultKind,
        *,
        count: int | None = None,
        rate: float | None = None,
        provider: str | None = None,
        model: str | None = None,
        retry_after_s: float | None = None,
        delay_s: float | None = None,
        status: int | None = None,
    ) -> FaultSpec:
        """Queue a fault for the next ``count`` calls (default 1) or a ``rate`` of calls."""
        fields = {
            "kind": kind,
            "count": count,
            "rate": rate,
            "provider": provider,
            "model": model,
            "retry_after_s": retry_after_s,
            "delay_s": delay_s,
            "status": status,
        }
        spec = FaultSpec.model_validate({k: v for k, v in fields.items() if v is not None})
        self.state.faults.add(spec)
        return spec

    def clear_faults(self) -> int:
        return self.state.faults.clear()

    def faults(self) -> list[dict[str, Any]]:
        return self.state.faults.active()

    def calls(self, limit: int | None = None) -> CallLogSnapshot:
        return self.state.log.snapshot(limit)

    def reset(self, *, config: bool = False) -> None:
        """Clear the call log, the faults and the rate-limit windows (and with ``config``, undo
        every :meth:`configure` since start)."""
        self.state.reset(config=config)
