"""Which models Chimera may call: the one answer the codec, the metrics and the docs use.

``CHIMERA_LLM_MODELS`` lists them per provider, and per named OpenAI-compatible endpoint
(``openai:<name>``, CHIMERA_OPENAI_ENDPOINTS).  A provider it leaves out allows the
models the price table (``chimera/data/prices.json`` or ``CHIMERA_PRICE_TABLE_PATH``)
prices for it, so by default nothing is called that would be counted at $0.  The models
the settings themselves name (the default participants, the analysis models) are always
allowed: the operator chose them.
"""

from __future__ import annotations

import functools
from pathlib import Path

from chimera.llm.pricing import PriceTable
from chimera.models.participants import PROVIDERS, ModelCatalog, route_of
from chimera.settings import Settings

_Pairs = tuple[tuple[str, str], ...]


#: The last settings asked about and their catalog: a process asks with one settings
#: object per event, and identity is cheaper than the cache key (held, so never reused).
_last: tuple[Settings, ModelCatalog] | None = None


def catalog_for(settings: Settings) -> ModelCatalog:
    """The models ``settings`` allow, per provider (built once per configuration)."""
    global _last  # noqa: PLW0603 - a one-entry memo; swapping a tuple is atomic
    last = _last
    if last is not None and last[0] is settings:
        return last[1]
    listed = tuple(
        (provider, model) for provider, models in settings.llm_models.items() for model in models
    )
    routes = (*PROVIDERS, *(route_of("openai", e) for e in sorted(settings.openai_endpoints)))
    catalog = _build(
        settings.price_table_path,
        frozenset(settings.llm_models),
        listed,
        named_models(settings),
        routes,
    )
    _last = (settings, catalog)
    return catalog


def named_models(settings: Settings) -> _Pairs:
    """The (provider, model) pairs the settings name for their own use."""
    named = [(p.route, p.model) for p in settings.default_participants]
    named.append((settings.analysis_provider, settings.analysis_model))
    named += [(p.provider, p.model) for p in settings.analysis_models.values()]
    return tuple(named)


@functools.lru_cache(maxsize=16)
def _build(
    price_table_path: Path | None,
    listing: frozenset[str],
    listed: _Pairs,
    named: _Pairs,
    routes: tuple[str, ...],
) -> ModelCatalog:
    prices = PriceTable.load(price_table_path)
    models: dict[str, set[str]] = {
        r: set() if r in listing else set(prices.models_of(r)) for r in routes
    }
    for provider, model in (*listed, *named):
        models.setdefault(provider, set()).add(model)
    return ModelCatalog({p: frozenset(m) for p, m in models.items()})
