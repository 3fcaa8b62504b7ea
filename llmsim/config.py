"""The simulator's own configuration (it reads no environment and no Chimera settings)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from llmsim.calls import Latency
from llmsim.defects import DefectRates
from llmsim.dialogue import Pacing
from llmsim.faults import FaultSpec
from llmsim.limits import Limits


class SimConfig(BaseModel):
    """Everything the simulator can be told.  Frozen: :meth:`updated` returns a new one."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535, description="0 picks a free port")
    seed: int = 0
    ttft_ms: float = Field(default=0.0, ge=0, description="time to first token")
    ms_per_token: float = Field(default=0.0, ge=0, description="time per output token")
    limits: Limits = Field(default_factory=Limits, description="per-model limits for every model")
    model_limits: dict[str, Limits] = Field(default_factory=dict, description="overrides by model")
    faults: tuple[FaultSpec, ...] = Field(default=(), description="installed at start-up")
    timeout_fault_delay_s: float = Field(default=30.0, ge=0, description="stall of a timeout fault")
    closing_start_turn: int = Field(
        default=6, ge=1, description="conversations may wind down from here"
    )
    closing_certain_turn: int = Field(default=14, ge=1, description="…and always do from here")
    require_auth: bool = True
    max_call_records: int = Field(default=10_000, ge=1)
    record_bodies: bool = Field(
        default=False, description="keep each call's JSON request body in the call log"
    )
    defects: DefectRates = Field(
        default_factory=DefectRates, description="rates of planted dialogue defects"
    )

    #: What ``POST /_sim/config`` may change while running.
    RUNTIME_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {
            "seed",
            "ttft_ms",
            "ms_per_token",
            "limits",
            "model_limits",
            "timeout_fault_delay_s",
            "closing_start_turn",
            "closing_certain_turn",
            "require_auth",
            "record_bodies",
            "defects",
        }
    )

    def limits_for(self, model: str) -> Limits:
        return self.model_limits.get(model, self.limits)

    @property
    def latency(self) -> Latency:
        return Latency(self.ttft_ms / 1000, self.ms_per_token / 1000)

    @property
    def pacing(self) -> Pacing:
        return Pacing(
            self.closing_start_turn, max(self.closing_start_turn, self.closing_certain_turn)
        )

    def updated(self, changes: Mapping[str, Any]) -> SimConfig:
        """A copy with ``changes`` applied; ``limits``, ``defects`` and ``model_limits`` merge key
        by key (``{"model_limits": {"m": null}}`` removes a model's override).  Raises
        ValueError."""
        unknown = set(changes) - self.RUNTIME_FIELDS
        if unknown:
            raise ValueError(
                f"cannot change {sorted(unknown)} at run time; "
                f"can change {sorted(self.RUNTIME_FIELDS)}"
            )
        data = self.model_dump()
        for key, value in changes.items():
            if key in {"limits", "defects"} and isinstance(value, Mapping):
                data[key] = {**data[key], **value}
            elif key == "model_limits" and isinstance(value, Mapping):
                merged = dict(data["model_limits"])
                for model, limits in value.items():
                    if limits is None:
                        merged.pop(model, None)
                    elif isinstance(limits, Mapping):
                        merged[model] = {**merged.get(model, {}), **limits}
                    else:
                        merged[model] = limits
                data["model_limits"] = merged
            else:
                data[key] = value
        return SimConfig.model_validate(data)
