"""Prometheus metrics, defined once.  Labels stay low-cardinality (no ids).

A ``provider``/``model`` label holds a configured value only: a model the catalog
(``chimera.llm.catalog``) does not list is counted as ``other``, so no event's text
ever becomes a series.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LLM_CALLS = Counter(
    "chimera_llm_calls_total",
    "LLM call attempts by outcome.",
    ["provider", "model", "status", "error_class"],
)
LLM_LATENCY = Histogram(
    "chimera_llm_call_seconds",
    "LLM call latency (successful and failed attempts).",
    ["provider", "model"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128),
)
LLM_TOKENS = Counter("chimera_llm_tokens_total", "Tokens used.", ["provider", "model", "direction"])
LLM_COST = Counter("chimera_llm_cost_usd_total", "Cost in USD.", ["provider", "model"])
RATE_LIMIT_WAIT = Histogram(
    "chimera_llm_rate_limit_wait_seconds",
    "Time callers waited for the fleet-wide limiter.",
    ["provider", "model"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60),
)
RATE_LIMITED = Counter(
    "chimera_llm_rate_limited_total",
    "Calls turned away by the limiter after waiting the maximum.",
    ["provider", "model"],
)
BREAKER_STATE = Gauge(
    "chimera_llm_breaker_open",
    "1 while this process last saw the provider/model breaker open, else 0.",
    ["provider", "model"],
)
CONVERSATIONS_RUNNING = Gauge(
    "chimera_conversations_running",
    "Conversations admitted and running, fleet-wide, as this process last saw it.",
)
CONVERSATIONS_WAITING = Gauge(
    "chimera_conversations_waiting_admission",
    "Conversations waiting for admission (CHIMERA_MAX_RUNNING_CONVERSATIONS), fleet-wide, "
    "as this process last saw it.",
)
ACCOUNTING_FAILURES = Counter(
    "chimera_llm_accounting_failures_total",
    "llm_calls rows that could not be written (the call itself went through).",
)

# --- HTTP (the web process) ---------------------------------------------------------
HTTP_REQUESTS = Counter(
    "chimera_http_requests_total",
    "HTTP requests served, by endpoint (the route's name, 'unmatched' for none) and status.",
    ["endpoint", "status"],
)
HTTP_LATENCY = Histogram(
    "chimera_http_request_seconds",
    "HTTP request latency, by endpoint.",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120),
)

# --- Fleet collector (chimera.fleet_metrics) -------------------------------------------
FLEET_SCRAPE_ERRORS = Counter(
    "chimera_fleet_scrape_errors_total",
    "Failed reads of a shared store for the fleet-wide metrics.",
    ["dependency"],
)

# --- Worker recovery (tasks.recovery) --------------------------------------------------
MESSAGES_RESTORED = Counter(
    "chimera_worker_messages_restored_total",
    "Messages a dead worker held, put back in the queue by this worker's sweep.",
)
