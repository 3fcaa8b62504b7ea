"""How the synchronous endpoint fans the four analyses out: a thread pool (default) or Ray.

Both run the same function on the same job and return the same ``PartResult``s;
only where the call runs differs.  Ray workers are other processes: each builds
its own LLM client (fleet-wide limits and breakers still hold, through Redis)
from the settings it is given in its environment.

Whoever can submit work to a Ray cluster runs code in it and reads what its jobs
were given.  So the job's environment (``actor_env``) carries only what an actor
builds its client from: the key and base URL of each provider the analysis models
use, and the Redis and Postgres URLs of fleet-wide limits and accounting; never the
named OpenAI endpoints (``CHIMERA_OPENAI_ENDPOINTS``, for participants only), the
API, metrics or Ray tokens, Flower's password, Kafka's credentials or another
provider's key.  And a cluster named by ``RAY_ADDRESS`` is used only with Ray's token
authentication (``RAY_AUTH_TOKEN``; ``chimera.exposure.check_ray_settings``).  A
local Ray (no ``RAY_ADDRESS``) runs as this process's user, inherits its environment,
and has token authentication on by default since Ray 2.59.
"""

from __future__ import annotations

import contextvars
import functools
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import SecretStr

from chimera import tracing
from chimera.analysis.inputs import AnalysisInput
from chimera.analysis.prompts import PROMPTS
from chimera.analysis.runner import PartResult, Target, run_with_retries
from chimera.db.engine import make_engine
from chimera.errors import ServiceUnavailable
from chimera.exposure import check_ray_settings, has_secret
from chimera.llm.client import LLMClient
from chimera.llm.registry import build_client
from chimera.logs import configure_logging
from chimera.redis_client import make_redis
from chimera.settings import Settings, env_var_for, load_settings, to_env


@dataclass(frozen=True)
class PartJob:
    """One analysis to run: everything a process needs, nothing it must share."""

    prompt_id: str
    source: AnalysisInput
    target: Target
    run_id: str
    max_tokens: int
    max_retries: int
    timeout_s: float


def execute(llm: LLMClient, job: PartJob) -> PartResult:
    spec = PROMPTS[job.prompt_id]
    return run_with_retries(
        llm,
        spec,
        job.source,
        job.target,
        run_id=job.run_id,
        max_tokens=job.max_tokens,
        max_retries=job.max_retries,
        deadline=time.monotonic() + job.timeout_s,
    )


class Executor(Protocol):
    name: str

    def run(self, jobs: Sequence[PartJob]) -> list[PartResult]: ...

    def close(self) -> None: ...


def _call(fn: Callable[[], PartResult]) -> PartResult:
    return fn()


class ThreadExecutor:
    """The four on threads of this process, sharing its LLM client."""

    name = "threads"

    def __init__(self, llm: LLMClient, *, max_workers: int = 16) -> None:
        self._llm = llm
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="analysis")

    def run(self, jobs: Sequence[PartJob]) -> list[PartResult]:
        # Each job runs in a copy of the caller's context: its spans join the request's trace.
        calls = [
            functools.partial(contextvars.copy_context().run, execute, self._llm, job)
            for job in jobs
        ]
        return list(self._pool.map(_call, calls))

    def close(self) -> None:
        self._pool.shutdown(wait=True)


#: Long-lived Ray actors that run analyses, and how many calls each runs at once (on
#: threads: analyses wait on the network, not the CPU).  Actors keep their LLM client
#: and connections between requests; tasks would start (and import) workers afresh.
RAY_ACTORS = 2
RAY_ACTOR_CONCURRENCY = 32
#: The CPU share an actor holds (Ray's default of 1 would cap actors at the node's cores).
RAY_ACTOR_CPUS = 0.1


#: Secret settings an actor needs whatever the models: the stores behind fleet-wide
#: limits, breakers and accounting.  Every other secret stays out of Ray.
ACTOR_SECRETS = frozenset({"redis_password", "redis_url", "database_url"})
#: Each provider's settings: an actor gets those of the providers it calls only.
PROVIDER_FIELDS = {
    "anthropic": ("anthropic_api_key", "anthropic_base_url"),
    "google": ("google_api_key", "google_gemini_base_url"),
    "openai": ("openai_api_key", "openai_base_url"),
}


def analysis_providers(settings: Settings) -> set[str]:
    """The providers the analysis models use."""
    return {settings.analysis_provider} | {p.provider for p in settings.analysis_models.values()}


def actor_env(settings: Settings) -> dict[str, str]:
    """The settings an actor is given, as environment variables: the analysis providers'
    keys and base URLs, the Redis and Postgres URLs, and no other secret.  Kafka's
    settings stay out too: actors do not use it, and its TLS files are not on the cluster."""
    used = analysis_providers(settings)
    left_out = {
        field
        for field in Settings.model_fields
        if field.startswith("kafka_")
        or (isinstance(getattr(settings, field), SecretStr) and field not in ACTOR_SECRETS)
    }
    # Named OpenAI endpoints serve conversation participants only (analyses may not name
    # one): their keys stay out.
    left_out.add("openai_endpoints")
    for provider, fields in PROVIDER_FIELDS.items():
        left_out = left_out - set(fields) if provider in used else left_out | set(fields)
    env = to_env(settings)
    for field in left_out:
        env.pop(env_var_for(field), None)
    return env


def _use_token_auth(token: str) -> None:
    """Have Ray authenticate with ``token``.  Ray reads RAY_AUTH_MODE and RAY_AUTH_TOKEN
    from the environment when it is imported; one imported earlier re-reads them the way
    ``ray.init`` does when it turns token authentication on for a new cluster."""
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = token
    if "ray._raylet" in sys.modules:
        from ray._raylet import (  # type: ignore[attr-defined]  # noqa: PLC0415 - untyped
            AuthenticationTokenLoader,
            Config,
        )

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()


class RayExecutor:
    """The four on Ray actors: a local Ray started on first use, or the cluster at
    ``RAY_ADDRESS`` (with ``RAY_AUTH_TOKEN``)."""

    name = "ray"
    _lock = threading.Lock()

    def __init__(self, settings: Settings) -> None:
        check_ray_settings(settings)
        self._settings = settings
        self._actors: list[Any] = []
        self._next = 0

    def _connect(self) -> list[Any]:
        with self._lock:
            if self._actors:
                return self._actors
            token = self._settings.ray_auth_token
            if has_secret(token):
                _use_token_auth(token.get_secret_value())
            import ray  # noqa: PLC0415 - heavy: loaded only when Ray is chosen

            if not ray.is_initialized():
                try:
                    ray.init(
                        address=self._settings.ray_address,
                        include_dashboard=False,
                        log_to_driver=False,
                        configure_logging=False,
                        runtime_env={"env_vars": actor_env(self._settings)},
                    )
                except (ConnectionError, RuntimeError) as exc:
                    raise ServiceUnavailable(f"cannot reach Ray: {exc}") from exc
            actor = ray.remote(AnalysisActor).options(
                num_cpus=RAY_ACTOR_CPUS, max_concurrency=RAY_ACTOR_CONCURRENCY
            )
            self._actors = [actor.remote() for _ in range(RAY_ACTORS)]
            return self._actors

    def run(self, jobs: Sequence[PartJob]) -> list[PartResult]:
        import ray  # noqa: PLC0415 - heavy: loaded only when Ray is chosen

        actors = self._connect()
        refs = []
        traceparent = tracing.traceparent()
        for job in jobs:
            refs.append(actors[self._next % len(actors)].run.remote(job, traceparent))
            self._next += 1
        try:
            return [PartResult.from_dict(d) for d in ray.get(refs)]
        except ray.exceptions.RayError as exc:
            raise ServiceUnavailable(f"a Ray analysis failed: {exc}") from exc

    def close(self) -> None:
        import ray  # noqa: PLC0415 - heavy: loaded only when Ray is chosen

        for actor in self._actors:
            ray.kill(actor)
        self._actors = []


class AnalysisActor:
    """A Ray actor's LLM client, built once from the environment Ray gives it.  It logs
    as every entry point does (``configure_logging``): its secrets masked, quoted input
    clipped to the settings' bound."""

    def __init__(self) -> None:
        settings = load_settings()
        configure_logging(settings)
        tracing.setup(settings, "ray")
        self._llm = build_client(
            settings, redis_client=make_redis(settings), engine=make_engine(settings)
        )

    def run(self, job: PartJob, traceparent: str | None = None) -> dict[str, Any]:
        with tracing.continuing(traceparent):
            result = execute(self._llm, job)
        self._llm.accountant.flush(5.0)  # its llm_calls rows are written before it answers
        return result.to_dict()


def make_executor(settings: Settings, llm: LLMClient) -> Executor:
    if settings.analyze_executor == "ray":
        return RayExecutor(settings)
    return ThreadExecutor(llm)
