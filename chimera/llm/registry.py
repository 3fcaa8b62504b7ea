"""Building the LLM layer from the settings (once per process)."""

from __future__ import annotations

from typing import Any

import redis
from sqlalchemy import Engine

from chimera.llm.accounting import Accountant
from chimera.llm.anthropic import AnthropicProvider
from chimera.llm.base import Provider
from chimera.llm.breaker import CircuitBreaker
from chimera.llm.catalog import catalog_for
from chimera.llm.client import LLMClient
from chimera.llm.google import GoogleProvider
from chimera.llm.limiter import RateLimiter
from chimera.llm.openai_compat import OpenAIProvider
from chimera.llm.pricing import PriceTable
from chimera.models.participants import route_of
from chimera.settings import Settings

ADAPTERS: dict[str, Any] = {
    "anthropic": AnthropicProvider,
    "google": GoogleProvider,
    "openai": OpenAIProvider,
}


def build_providers(settings: Settings) -> dict[str, Provider]:
    """An adapter for each provider with a key or a base URL (the others are not used), and
    one for each CHIMERA_OPENAI_ENDPOINTS entry, under ``openai:<name>``."""
    providers: dict[str, Provider] = {}
    for name in settings.configured_providers:
        api_key, base_url = settings.provider_settings(name)
        providers[name] = ADAPTERS[name](
            api_key=api_key,
            base_url=base_url,
            timeout_s=settings.llm_timeout_s,
            connect_timeout_s=settings.llm_connect_timeout_s,
            max_retries=settings.llm_sdk_max_retries,
        )
    # Each named OpenAI-compatible endpoint: the same adapter, its own client, keyed by route.
    for endpoint, config in settings.openai_endpoints.items():
        name = route_of("openai", endpoint)
        providers[name] = OpenAIProvider(
            api_key=config.key(),
            base_url=config.base_url,
            timeout_s=settings.llm_timeout_s,
            connect_timeout_s=settings.llm_connect_timeout_s,
            max_retries=settings.llm_sdk_max_retries,
            name=name,
        )
    return providers


def build_client(
    settings: Settings,
    *,
    redis_client: redis.Redis,
    engine: Engine,
    providers: dict[str, Provider] | None = None,
) -> LLMClient:
    catalog = catalog_for(settings)
    return LLMClient(
        providers if providers is not None else build_providers(settings),
        redis_client=redis_client,
        limiter=RateLimiter(redis_client, settings),
        breaker=CircuitBreaker(redis_client, settings),
        accountant=Accountant(
            engine,
            PriceTable.load(settings.price_table_path),
            catalog=catalog,
            flush_interval_s=settings.accounting_flush_ms / 1000,
        ),
        catalog=catalog,
        max_wait_s=settings.llm_max_wait_s,
    )
