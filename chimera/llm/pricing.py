"""The versioned price table (``chimera/data/prices.json`` or CHIMERA_PRICE_TABLE_PATH)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from chimera.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_TABLE = Path(__file__).resolve().parents[1] / "data" / "prices.json"
_MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class Price:
    input_per_mtok: Decimal
    output_per_mtok: Decimal


class PriceTable:
    """USD per million tokens, by ``provider/model`` (or ``openai:<endpoint>/model``); unknown
    models cost 0 (logged once)."""

    def __init__(self, version: str, prices: dict[str, Price]) -> None:
        self.version = version
        self._prices = prices
        self._warned: set[str] = set()

    @classmethod
    def load(cls, path: Path | None = None) -> PriceTable:
        path = path or DEFAULT_TABLE
        try:
            raw = json.loads(path.read_text())
            prices = {
                name: Price(Decimal(str(p["input"])), Decimal(str(p["output"])))
                for name, p in raw["models"].items()
            }
            return cls(str(raw["version"]), prices)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"CHIMERA_PRICE_TABLE_PATH: cannot read {path}: {exc}") from exc

    def models_of(self, provider: str) -> frozenset[str]:
        """The models the table prices for ``provider``."""
        prefix = f"{provider}/"
        return frozenset(k.removeprefix(prefix) for k in self._prices if k.startswith(prefix))

    def cost(self, provider: str, model: str, input_tokens: int, output_tokens: int) -> Decimal:
        """USD of a call; ``provider`` may be a route (``openai:<endpoint>``), priced by its own
        entry or else at its provider's price for the model."""
        key = f"{provider}/{model}"
        price = self._prices.get(key)
        if price is None and ":" in provider:
            price = self._prices.get(f"{provider.partition(':')[0]}/{model}")
        if price is None:
            if key not in self._warned:
                self._warned.add(key)
                log.warning(
                    "no price for %s in price table %s; cost counted as 0", key, self.version
                )
            return Decimal(0)
        return (
            price.input_per_mtok * input_tokens + price.output_per_mtok * output_tokens
        ) / _MILLION
