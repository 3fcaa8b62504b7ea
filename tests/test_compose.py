"""The production-like stack: docker-compose.yml, the Dockerfile and .env.example.

No Docker engine is needed: the files are parsed and checked against the local
stack's command lines (``chimera.stack``), the CLI, the settings and Flower.  Where a
Docker client with the Compose plugin is installed, ``docker compose config`` checks
the file as Compose itself reads it (it needs no engine).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from flower.command import is_flower_envvar
from pydantic import AliasChoices, SecretStr

from chimera import heartbeat, metrics_server
from chimera.cli.commands import cli
from chimera.errors import ConfigError
from chimera.exposure import check_bind, check_ray_settings
from chimera.redis_client import make_redis
from chimera.settings import Settings, env_var_for, load_settings
from chimera.stack import starters
from chimera.stack import web as stack_web
from llmsim.cli import sim as llmsim_command
from tests.chimera.test_cli import chimera
from tests.conftest import delete_keys

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
REQUIREMENTS = ROOT / "requirements.txt"
DEV_REQUIREMENTS = ROOT / "requirements-dev.txt"
#: Tools that test or lint the code: in requirements-dev.txt, never in the image.
TEST_TOOLS = ("pytest", "pytest-celery", "pytest-timeout", "hypothesis", "ruff", "mypy", "docker")

COMPOSE_TEXT = COMPOSE_FILE.read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, Any] = COMPOSE["services"]

INFRA = ("kafka", "redis", "postgres")
ONE_SHOTS = ("migrate", "kafka-topics")
#: The processes that need the schema, the topics and every store.
APP = ("worker", "beat", "bridge", "web")
OPTIONAL = {"ray-head": "ray", "sim": "sim"}
#: The services of the Chimera image (the simulator has an image of its own).
CHIMERA = (*ONE_SHOTS, *APP, "flower", "ray-head")
LONG_RUNNING = (*INFRA, *APP, "flower", *OPTIONAL)
#: Where a container listens (compared, never bound here).
ANY_ADDRESS = "0.0.0.0"  # noqa: S104
#: Variables a deployment must set; Compose refuses to start without them.
REQUIRED = ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "CHIMERA_API_TOKEN", "CHIMERA_FLOWER_BASIC_AUTH")
PROVIDER_KEYS = ("ANTHROPIC_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY")
KAFKA_SECURITY = (
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SSL_CAFILE",
    "KAFKA_SSL_CERTFILE",
    "KAFKA_SSL_KEYFILE",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
)
#: What conftest clears before the session: settings variables of any spelling.
SETTINGS_PREFIXES = (
    "CHIMERA_",
    "KAFKA_",
    "REDIS_",
    "ANTHROPIC_",
    "OPENAI_",
    "GOOGLE_",
    "GEMINI_",
    "DATABASE_URL",
    "RAY_ADDRESS",
    "OTEL_",
    "MAX_CONVERSATION_TURNS",
    "CONVERSATION_TIMEOUT_SECONDS",
    "RATE_LIMIT_REQUESTS_PER_MINUTE",
)


# --- .env.example -------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvEntry:
    name: str
    value: str
    commented: bool  # "# NAME=value": optional, documented but not set
    comment: str  # the line above it


_ASSIGNMENT = re.compile(r"^(#\s?)?([A-Z][A-Z0-9_]*)=(.*)$")


def env_entries() -> list[EnvEntry]:
    entries = []
    previous = ""
    for raw in ENV_EXAMPLE.read_text().splitlines():
        line = raw.strip()
        match = _ASSIGNMENT.match(line)
        if match:
            value = match.group(3)
            if len(value) >= 2 and value[0] == value[-1] == "'":
                value = value[1:-1]
            entries.append(EnvEntry(match.group(2), value, bool(match.group(1)), previous))
        previous = line
    return entries


def env_example() -> dict[str, str]:
    """The variables .env.example sets (its uncommented lines), as Compose reads them."""
    return {e.name: e.value for e in env_entries() if not e.commented}


# --- Compose interpolation ------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^${}]*))?\}")


class MissingVariable(Exception):
    pass


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """``value`` with Compose's ``${NAME}``, ``${NAME:-default}``, ``${NAME:?error}``
    and ``$$`` resolved from ``env`` (in strings, lists and mapping values)."""
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        name, operator, argument = match.groups()
        current = env.get(name)
        if operator is None:
            return current or ""
        missing = current is None or (operator.startswith(":") and current == "")
        if operator.endswith("-"):
            return argument if missing else str(current)
        if operator.endswith("?"):
            if missing:
                raise MissingVariable(f"{name}: {argument}")
            return str(current)
        return "" if missing else argument  # ":+"

    text = value.replace("$$", "\0")
    while (resolved := _VARIABLE.sub(one, text)) != text:
        text = resolved  # inner defaults first: ${A:-${B}}
    return text.replace("\0", "$")


def compose_variables() -> set[str]:
    """Every variable docker-compose.yml interpolates (``$$`` is the container's own)."""
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", COMPOSE_TEXT.replace("$$", "")))


def command(service: str, env: Mapping[str, str] | None = None) -> list[str]:
    return [str(a) for a in interpolate(SERVICES[service]["command"], env or {})]


def normalized(argv: list[str]) -> list[str]:
    """An argv as a container runs it: ``python -m X`` is ``X``, paths relative to
    the repository (the image's /app), ``-c`` spelled ``--config``."""
    if len(argv) > 2 and Path(argv[0]).name.startswith("python") and argv[1] == "-m":
        argv = argv[2:]
    out = []
    for arg in argv:
        if arg == "-c":
            out.append("--config")
        elif Path(arg).is_absolute() and Path(arg).is_relative_to(ROOT):
            out.append(str(Path(arg).relative_to(ROOT)))
        else:
            out.append(arg)
    return out


def option(argv: list[str], name: str) -> str:
    for i, arg in enumerate(argv):
        if arg == name:
            return argv[i + 1]
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{name} not in {argv}")


def without_option(argv: list[str], name: str) -> list[str]:
    i = argv.index(name)
    return argv[:i] + argv[i + 2 :]


def settings_defaults(*fields: str) -> dict[str, Any]:
    return {f: Settings.model_fields[f].default for f in fields}


def cli_context(args: list[str]) -> click.Context:
    """Parse ``python -m chimera ARGS`` the way the CLI does, without running it."""
    group: click.Command = cli
    ctx = click.Context(cli, info_name="chimera")
    while isinstance(group, click.Group):
        name, args = args[0], args[1:]
        found = group.get_command(ctx, name)
        assert found is not None, f"`chimera ... {name}` is not a command"
        group = found
    return group.make_context(group.name, list(args), parent=ctx)


# --- Services -------------------------------------------------------------------------------------


def test_every_service_of_the_stack_is_defined() -> None:
    assert set(SERVICES) == {*INFRA, *ONE_SHOTS, *APP, "flower", *OPTIONAL}
    for name, profile in OPTIONAL.items():
        assert SERVICES[name]["profiles"] == [profile]
    for name in set(SERVICES) - set(OPTIONAL):
        assert "profiles" not in SERVICES[name], f"{name} must start with a plain `up`"


def test_every_chimera_process_runs_the_one_image() -> None:
    images = {SERVICES[name]["image"] for name in CHIMERA}
    assert len(images) == 1
    for name in CHIMERA:
        assert SERVICES[name]["build"] == {"context": ".", "dockerfile": "Dockerfile"}
        assert SERVICES[name]["init"] is True


def test_the_stores_are_not_published_and_keep_their_data() -> None:
    mounts = {
        "kafka": "/var/lib/kafka/data",
        "redis": "/data",
        "postgres": "/var/lib/postgresql/data",
    }
    for name, target in mounts.items():
        service = SERVICES[name]
        assert "ports" not in service, f"{name} is for the stack's network only"
        volumes = [v.split(":") for v in service["volumes"]]
        assert [target] == [t for source, t in volumes if source in COMPOSE["volumes"]]
    assert "ports" not in SERVICES["ray-head"], "Ray has no authentication"


def test_kafka_is_a_single_kraft_node_whose_topics_are_created_by_a_job() -> None:
    kafka = SERVICES["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert interpolate(env["CLUSTER_ID"], env_example())
    assert "env_file" not in kafka, "the image would turn client KAFKA_* into broker properties"
    context = cli_context(command("kafka-topics")[3:])
    assert context.command.name == "create-topics"
    bootstrap = interpolate(SERVICES["kafka-topics"]["environment"], env_example())
    assert bootstrap["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"


def test_redis_keeps_an_append_only_file_and_never_evicts() -> None:
    argv = command("redis", env_example())
    assert argv[0] == "redis-server"
    assert option(argv, "--appendonly") == "yes"
    assert option(argv, "--appendfsync") == "everysec"
    assert option(argv, "--maxmemory-policy") == "noeviction"
    assert option(argv, "--maxmemory") == env_example()["REDIS_MAXMEMORY"]
    assert option(argv, "--requirepass") == env_example()["REDIS_PASSWORD"]
    assert "redis-cli ping" in " ".join(SERVICES["redis"]["healthcheck"]["test"])


# --- Commands: the local stack's ----------------------------------------------------------


def test_the_worker_runs_the_local_stack_command_on_threads() -> None:
    settings = Settings(**settings_defaults("log_level"))
    expected = normalized(starters.celery_argv(settings, "worker"))
    actual = normalized(command("worker"))
    # Only the node name differs: the stack's names its pid, a container its hostname.
    assert without_option(actual, "--hostname") == without_option(expected, "--hostname")
    node = option(actual, "--hostname")
    assert node.endswith("@%h")
    ping = " ".join(SERVICES["worker"]["healthcheck"]["test"])
    assert "inspect ping" in ping
    assert f'--destination "{node.removesuffix("%h")}$${{HOSTNAME}}"' in ping
    pool = interpolate(SERVICES["worker"]["environment"]["CHIMERA_CELERY_POOL"], {})
    assert pool == "threads" == Settings.model_fields["celery_pool"].default
    assert importlib.util.find_spec(option(actual, "-A")) is not None


def test_beat_runs_the_local_stack_command() -> None:
    settings = Settings(**settings_defaults("log_level"))
    assert normalized(command("beat")) == normalized(starters.celery_argv(settings, "beat"))
    assert SERVICES["beat"]["deploy"]["replicas"] == 1
    state_dir = SERVICES["beat"]["environment"]["CHIMERA_STATE_DIR"]
    assert [f"beat-state:{state_dir}"] == SERVICES["beat"]["volumes"]


def test_the_web_app_runs_the_local_stack_command() -> None:
    fields = settings_defaults("http_workers", "http_threads", "log_level")
    settings = Settings(http_host=ANY_ADDRESS, http_port=8085, **fields)
    expected = normalized(stack_web.gunicorn_argv(settings))
    for env in ({}, env_example()):
        actual = normalized(command("web", env))
        # gunicorn reads its log level in any case; the settings spell it in capitals.
        assert option(actual, "--log-level").lower() == option(expected, "--log-level")
        assert without_option(actual, "--log-level") == without_option(expected, "--log-level")
    assert (ROOT / option(expected, "--config")).is_file()
    # The settings the app reads agree with its command line.
    web = SERVICES["web"]
    for name, flag in (
        ("CHIMERA_HTTP_WORKERS", "--workers"),
        ("CHIMERA_HTTP_THREADS", "--threads"),
    ):
        assert web["environment"][name] == option(web["command"], flag)
    assert web["environment"]["CHIMERA_HTTP_PORT"] == "8085"
    assert web["ports"] == ["${PUBLISH_ADDR:-127.0.0.1}:${PUBLISH_WEB_PORT:-8085}:8085"]
    assert "http://127.0.0.1:8085/healthz" in " ".join(web["healthcheck"]["test"])


def test_the_web_app_listens_where_its_settings_say_and_only_with_a_token() -> None:
    web = SERVICES["web"]
    # gunicorn_conf binds CHIMERA_HTTP_HOST:CHIMERA_HTTP_PORT: no command line names another.
    assert not any(a.startswith("--bind") or a == "-b" for a in command("web"))
    assert not any(a.startswith("--bind") for a in stack_web.gunicorn_argv(Settings()))
    assert web["environment"]["CHIMERA_HTTP_HOST"] == ANY_ADDRESS
    assert web["environment"]["CHIMERA_API_TOKEN"].startswith("${CHIMERA_API_TOKEN:?")
    # What the settings make of it: every interface, so a token (the app refuses it otherwise).
    with pytest.raises(ConfigError, match="CHIMERA_API_TOKEN"):
        check_bind(Settings(http_host=ANY_ADDRESS))
    assert check_bind(Settings(http_host=ANY_ADDRESS, api_token="s3cret-token")) is None


@pytest.mark.parametrize(("service", "port"), [("worker", 9461), ("bridge", 9462)])
def test_each_process_serves_its_metrics_on_the_network_only_with_a_token(
    service: str, port: int
) -> None:
    definition = SERVICES[service]
    env = definition["environment"]
    # Reachable by a scraper on the stack's network, never published on the host.
    assert "ports" not in definition, f"{service}'s /metrics is for the stack's network only"
    assert definition["expose"] == [str(port)]
    assert (env["CHIMERA_METRICS_HOST"], env["CHIMERA_METRICS_PORT"]) == (ANY_ADDRESS, str(port))
    assert env["CHIMERA_API_TOKEN"].startswith("${CHIMERA_API_TOKEN:?")
    # What the process makes of it: every interface, so a token (refused at start otherwise).
    listening = Settings(metrics_host=ANY_ADDRESS, metrics_port=port)
    with pytest.raises(ConfigError, match="CHIMERA_METRICS_HOST"):
        metrics_server.check_bind(listening)
    metrics_server.check_bind(listening.model_copy(update={"api_token": SecretStr("s3cret")}))


def test_the_bridge_runs_the_documented_command() -> None:
    # The stack starts `sys.executable -m bridges` (chimera/stack/starters.py).
    assert command("bridge") == ["python", "-m", "bridges"]
    assert importlib.util.find_spec("bridges.__main__") is not None


def flower_logging_lowered(argv: list[str]) -> list[str]:
    # Flower reads its log level in any case; the settings spell it in capitals.
    return [a.lower() if a.startswith("--logging=") else a for a in argv]


def test_flower_runs_the_local_stack_command_with_auth_from_the_settings() -> None:
    flower = SERVICES["flower"]
    argv = command("flower")
    assert argv[:4] == ["celery", "-A", "tasks.worker", "flower"]
    assert (option(argv, "--address"), option(argv, "--port")) == (ANY_ADDRESS, "5555")
    # Flower 2.2 reads FLOWER_<OPTION> as --<option>: this is --basic-auth.
    auth = flower["environment"]["FLOWER_BASIC_AUTH"]
    assert auth.startswith("${CHIMERA_FLOWER_BASIC_AUTH:?")
    assert env_var_for("flower_basic_auth") == "CHIMERA_FLOWER_BASIC_AUTH"
    for name in flower["environment"]:
        if name.startswith("FLOWER_"):
            assert is_flower_envvar(name), f"Flower does not read {name}"
    assert not any("auth" in a for a in argv), "credentials stay off the command line"
    if importlib.util.find_spec("chimera.stack.flower") is not None:  # the stack runs Flower
        stack_flower = importlib.import_module("chimera.stack.flower")
        settings = Settings(
            flower_host=ANY_ADDRESS,
            flower_port=5555,
            flower_basic_auth="admin:secret",
            **settings_defaults("log_level"),
        )
        expected = normalized(stack_flower.flower_argv(settings))
        assert flower_logging_lowered(argv) == flower_logging_lowered(expected)
        assert "FLOWER_BASIC_AUTH" in stack_flower.flower_env(settings, {})
    assert flower["ports"] == ["${PUBLISH_ADDR:-127.0.0.1}:${PUBLISH_FLOWER_PORT:-5555}:5555"]
    assert "http://127.0.0.1:5555/healthcheck" in " ".join(flower["healthcheck"]["test"])


def test_the_one_shot_jobs_are_chimera_commands() -> None:
    assert command("migrate") == ["python", "-m", "chimera", "db", "upgrade"]
    assert cli_context(command("migrate")[3:]).params == {"revision": "head"}
    assert command("kafka-topics") == ["python", "-m", "chimera", "kafka", "create-topics"]
    assert "sim" not in cli.commands, "the simulator is llmsim's, not a chimera command"


def llmsim_params(argv: list[str]) -> dict[str, Any]:
    """``python -m llmsim ARGS`` parsed the way its CLI does, without running it."""
    assert argv[1:3] == ["-m", "llmsim"], argv
    return llmsim_command.make_context("llmsim", argv[3:]).params


def test_the_simulator_runs_the_local_stack_command_from_its_own_image() -> None:
    sim = SERVICES["sim"]
    assert sim["build"] == {"context": ".", "dockerfile": "Dockerfile", "target": "sim"}
    assert sim["image"] != SERVICES["web"]["image"]
    # It reads no Chimera setting: no .env, no secret.
    assert "env_file" not in sim and "environment" not in sim
    argv = command("sim")
    assert argv[0] == "python"
    # The stack's command line (chimera/stack/starters.py), bound to every interface.
    pacing = settings_defaults("sim_ttft_ms", "sim_ms_per_token")
    settings = Settings(sim_host=ANY_ADDRESS, sim_port=8089, **pacing)
    assert llmsim_params(argv) == llmsim_params(starters.sim_argv(settings))
    assert llmsim_params(argv)["port"] == 8089
    assert "http://127.0.0.1:8089/_sim/health" in check_code("sim")
    assert importlib.util.find_spec("llmsim.__main__") is not None


def test_the_ray_head_serves_the_web_app_a_ray_client() -> None:
    ray = SERVICES["ray-head"]
    argv = command("ray-head", env_example())
    assert argv[:4] == ["ray", "start", "--head", "--block"]
    port = option(argv, "--ray-client-server-port")
    optional = {e.name: e.value for e in env_entries() if e.commented}
    assert optional["RAY_ADDRESS"] == f"ray://ray-head:{port}"
    assert optional["CHIMERA_ANALYZE_EXECUTOR"] == "ray"
    assert ray["env_file"] == [], "Ray gets the web app's settings with each job"
    assert "ray_client_server" in ray["healthcheck"]["test"]
    # Token authentication, with the token the web app connects with.
    assert ray["environment"]["RAY_AUTH_MODE"] == "token"
    assert ray["environment"]["RAY_AUTH_TOKEN"].startswith("${RAY_AUTH_TOKEN")
    assert env_var_for("ray_auth_token") == "RAY_AUTH_TOKEN"
    assert "RAY_AUTH_TOKEN" in optional
    # The Ray Client needs grpcio, which the image adds.
    assert re.search(r'ARG RAY_CLIENT_PACKAGES="grpcio==[\d.]+"', DOCKERFILE.read_text())


# --- Dependencies, health, restarts -------------------------------------------------------


def conditions(service: str) -> dict[str, str]:
    return {name: dep["condition"] for name, dep in SERVICES[service]["depends_on"].items()}


@pytest.mark.parametrize("service", APP)
def test_app_services_wait_for_the_schema_the_topics_and_healthy_stores(service: str) -> None:
    assert conditions(service) == {
        "redis": "service_healthy",
        "postgres": "service_healthy",
        "kafka": "service_healthy",
        "migrate": "service_completed_successfully",
        "kafka-topics": "service_completed_successfully",
    }


def test_jobs_and_flower_wait_for_what_they_use() -> None:
    assert conditions("migrate") == {"postgres": "service_healthy"}
    assert conditions("kafka-topics") == {"kafka": "service_healthy"}
    assert conditions("flower") == {"redis": "service_healthy"}
    for service in [s for s in SERVICES if "depends_on" in SERVICES[s]]:
        for name, condition in conditions(service).items():
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[name]
            else:
                assert name in ONE_SHOTS


@pytest.mark.parametrize("service", LONG_RUNNING)
def test_long_running_services_restart_and_report_their_health(service: str) -> None:
    spec = SERVICES[service]
    assert spec["restart"] == "unless-stopped"
    check = spec["healthcheck"]
    assert check["test"][0] in ("CMD", "CMD-SHELL")
    assert {"interval", "timeout", "retries", "start_period"} <= set(check)
    assert "memory" in spec["deploy"]["resources"]["limits"]
    assert spec["logging"]["options"]["max-size"]


@pytest.mark.parametrize("service", ONE_SHOTS)
def test_one_shot_jobs_run_once(service: str) -> None:
    assert SERVICES[service]["restart"] == "no"
    assert "healthcheck" not in SERVICES[service]


def check_code(service: str) -> str:
    test = SERVICES[service]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    return str(test[3])


@pytest.fixture
def heartbeat_prefix(settings: Any, redis_server: None) -> Iterator[str]:
    prefix = f"{settings.redis_key_prefix}compose-{os.urandom(3).hex()}:"
    yield prefix
    delete_keys(settings, prefix)


@pytest.mark.parametrize(
    ("service", "instance", "other"),
    [("bridge", f"{socket.gethostname()}:4242", "another-host:4242"), ("beat", "", None)],
)
def test_heartbeat_checks_pass_only_while_their_component_beats(
    service: str, instance: str, other: str | None, heartbeat_prefix: str, settings: Any
) -> None:
    code = check_code(service)
    env = {**os.environ, "CHIMERA_REDIS_KEY_PREFIX": heartbeat_prefix}

    def healthy() -> bool:
        run = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            cwd=ROOT,
            check=False,
            capture_output=True,
            timeout=60,
        )
        return run.returncode == 0

    scoped = settings.model_copy(update={"redis_key_prefix": heartbeat_prefix})
    client = make_redis(scoped)
    try:
        assert not healthy()
        if other is not None:  # a bridge in another container is not this one
            heartbeat.beat(client, scoped, service, instance=other, ttl_s=60)
            assert not healthy()
        heartbeat.beat(client, scoped, service, instance=instance, ttl_s=60)
        assert healthy()
    finally:
        client.close()


def test_the_http_checks_are_valid_python() -> None:
    for service in ("web", "flower", "sim"):
        compile(check_code(service), f"<{service} healthcheck>", "exec")


# --- Configuration: .env.example and the settings ------------------------------------------


def settings_names() -> set[str]:
    """Every variable the settings read: CHIMERA_<field> and the seed's names."""
    names = {env_var_for(field) for field in Settings.model_fields}
    for info in Settings.model_fields.values():
        if isinstance(info.validation_alias, AliasChoices):
            names |= {c for c in info.validation_alias.choices if isinstance(c, str)}
    return names


def test_every_variable_of_the_compose_file_is_in_env_example() -> None:
    named = {e.name for e in env_entries()}
    assert compose_variables() - named == set()


def test_env_example_names_settings_and_compose_variables_only() -> None:
    entries = env_entries()
    names = [e.name for e in entries]
    assert len(names) == len(set(names)), "a variable is listed twice"
    real = settings_names()
    for name in names:
        if name.startswith("CHIMERA_"):
            assert name in real, f"{name} is not a setting"
        elif name not in real:
            # Not a setting: it must be the compose file's own (image, ports, servers).
            assert name in compose_variables(), f"{name} is neither a setting nor used"
        # Every Chimera container gets .env: a FLOWER_* there would be a Flower option.
        assert not name.startswith("FLOWER_")


def test_env_example_explains_every_variable() -> None:
    for entry in env_entries():
        assert entry.comment.startswith("# "), f"{entry.name} has no comment above it"
        assert not _ASSIGNMENT.match(entry.comment), f"{entry.name} has no comment above it"


def test_env_example_has_placeholders_for_secrets_and_leaves_optional_ones_unset() -> None:
    entries = {e.name: e for e in env_entries()}
    for name in REQUIRED:
        assert f"${{{name}:?" in COMPOSE_TEXT, f"compose must refuse to start without {name}"
        assert not entries[name].commented
        assert "change-me" in entries[name].value
    for name in PROVIDER_KEYS:
        assert not entries[name].commented
        assert entries[name].value == ""
    # An empty KAFKA_SSL_CAFILE is not "unset" (it is the path ""): commented out.
    for name in KAFKA_SECURITY:
        assert entries[name].commented
    # Two names of one setting: an empty GOOGLE_API_KEY would hide GEMINI_API_KEY.
    assert "GEMINI_API_KEY" not in entries


@pytest.mark.parametrize("service", [s for s in CHIMERA if s != "ray-head"])
def test_placeholder_secrets_are_refused_by_every_service(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith(SETTINGS_PREFIXES)]:
        monkeypatch.delenv(name)
    for name, value in container_env(service, env_example()).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "REDIS_PASSWORD: still the placeholder change-me" in str(caught.value)
    assert "change-me-redis-password" not in str(caught.value)  # the value is not echoed


def test_the_cli_refuses_placeholder_secrets_naming_the_variable() -> None:
    placeholders = {e.name: e.value for e in env_entries() if "change-me" in e.value}
    for name in ("REDIS_PASSWORD", "CHIMERA_API_TOKEN", "RAY_AUTH_TOKEN"):
        result = chimera("config", env={name: placeholders[name]})
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"{name}: still the placeholder change-me" in result.stderr
        assert placeholders[name] not in result.stdout + result.stderr


def container_env(service: str, env: Mapping[str, str]) -> dict[str, str]:
    """What a Chimera container sees: .env (env_file) under the service's `environment:`."""
    spec = SERVICES[service]
    assert spec["env_file"] == [{"path": ".env", "required": False}]
    return {**env, **{k: str(v) for k, v in interpolate(spec["environment"], env).items()}}


@pytest.mark.parametrize("service", [s for s in CHIMERA if s != "ray-head"])
def test_each_service_reads_valid_settings_with_json_logs(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The operator's own secrets in place of .env.example's placeholders (which every
    # process refuses: test_placeholder_secrets_are_refused_by_every_service).
    dotenv = {k: v.replace("change-me", "s3cret") for k, v in env_example().items()}
    if service == "web":  # the optional Ray lines, uncommented
        ray = {e.name: e.value for e in env_entries() if e.name.startswith("RAY_")}
        dotenv |= {k: v.replace("change-me", "s3cret") for k, v in ray.items()}
        dotenv["CHIMERA_ANALYZE_EXECUTOR"] = "ray"
    for name in [n for n in os.environ if n.startswith(SETTINGS_PREFIXES)]:
        monkeypatch.delenv(name)
    for name, value in container_env(service, dotenv).items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.log_format == "json"
    assert settings.celery_broker_url.startswith("redis://:s3cret-redis-password@redis:6379/")
    assert "@postgres:5432/chimera" in settings.database_url.get_secret_value()
    assert settings.bootstrap_servers == ["kafka:9092"]
    assert str(settings.state_dir) == "/var/lib/chimera"
    assert settings.otel_service_name == f"chimera-{service}"
    if service == "web":
        assert (settings.http_host, settings.http_port) == (ANY_ADDRESS, 8085)
        assert settings.api_token is not None
        assert check_bind(settings) is None  # a network address, with its token
        assert (settings.analyze_executor, settings.ray_address) == ("ray", "ray://ray-head:10001")
        check_ray_settings(settings)  # the remote Ray, with its token
        without = settings.model_copy(update={"ray_auth_token": None})
        with pytest.raises(ConfigError, match="RAY_AUTH_TOKEN"):
            check_ray_settings(without)


# --- Dockerfile -------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def dockerfile_stages() -> dict[str, list[tuple[str, str]]]:
    """The Dockerfile's instructions by build stage (``FROM ... AS name``), each stage's
    starting with its FROM; the global ARGs before the first FROM under ``""``."""
    stages: dict[str, list[tuple[str, str]]] = {"": []}
    name = ""
    for keyword, rest in dockerfile_instructions():
        if keyword == "FROM":
            words = rest.split()
            assert len(words) == 3 and words[1].upper() == "AS", f"unnamed stage: FROM {rest}"
            name = words[2]
            stages[name] = []
        stages[name].append((keyword, rest))
    return stages


def production_instructions() -> list[tuple[str, str]]:
    """What a plain ``docker build`` runs: the last stage, after the stages it is built on."""
    stages = dockerfile_stages()
    chain = [list(stages)[-1]]
    while (parent := stages[chain[0]][0][1].split()[0]) in stages:
        chain.insert(0, parent)
    return stages[""] + [i for name in chain for i in stages[name]]


def test_the_dockerfile_builds_one_slim_non_root_image_that_runs_the_web_app() -> None:
    instructions = production_instructions()
    keywords = [k for k, _ in instructions]
    args = dict(r.split("=", 1) for k, r in instructions if k == "ARG" and "=" in r)
    base = next(r for k, r in instructions if k == "FROM").split()[0]
    base = args.get(base.strip("${}"), base)
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", base), base
    runs = [r for k, r in instructions if k == "RUN"]
    assert any("pip install" in r and "-r requirements.txt" in r for r in runs)
    assert not any("requirements-dev" in r for k, r in instructions), "no test tools"
    copied = " ".join(r for k, r in instructions if k == "COPY")
    for path in (
        "celeryconfig.py",
        "alembic.ini",
        "migrations/",
        "chimera/",
        "tasks/",
        "bridges/",
        "web/",
    ):
        assert path in copied, f"the image lacks {path}"
    user = [r for k, r in instructions if k == "USER"]
    assert len(user) == 1 and user[0].split(":")[0] not in ("root", "0")
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")
    # Compose gives every service its whole command line: no ENTRYPOINT to prepend,
    # and the default CMD is the web service with the default settings.
    assert "ENTRYPOINT" not in keywords
    cmd = json.loads(next(r for k, r in instructions if k == "CMD"))
    assert cmd == command("web")
    env = " ".join(r for k, r in instructions if k == "ENV")
    assert f"CHIMERA_STATE_DIR={SERVICES['beat']['environment']['CHIMERA_STATE_DIR']}" in env
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ".env" in ignored and ".env.*" in ignored


def test_the_simulator_is_in_its_own_build_target_never_in_the_production_image() -> None:
    stages = dockerfile_stages()
    assert list(stages)[-1] == "production", "a plain `docker build` must be production"
    production = production_instructions()
    assert not any("llmsim" in r for k, r in production if k in ("COPY", "ADD", "RUN"))
    sim = stages["sim"]
    assert sim[0] == ("FROM", "base AS sim")
    assert [r for k, r in sim if k in ("COPY", "ADD")] == ["llmsim/ ./llmsim/"]
    user = [r for k, r in sim if k == "USER"]
    assert user == [r for k, r in production if k == "USER"], "the same unprivileged user"
    cmd = json.loads(next(r for k, r in sim if k == "CMD"))
    assert cmd[:3] == ["python", "-m", "llmsim"] and llmsim_params(cmd)["host"] == "127.0.0.1"
    # The build context has llmsim/ for the sim target to copy.
    ignored = [
        line.strip().strip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
    ]
    assert "llmsim" not in ignored
    assert SERVICES["sim"]["build"]["target"] == "sim"


def pins(path: Path) -> dict[str, str]:
    """name -> version of a requirements file's lines (``-r`` includes left out)."""
    out = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "-r ")):
            continue
        name, sep, version = line.partition("==")
        assert sep and re.fullmatch(r"[\w.]+", version), f"{path.name}: {line} is not pinned"
        out[re.sub(r"[-_.]+", "-", name).lower()] = version
    return out


def test_the_image_gets_the_runtime_requirements_and_the_venv_the_test_tools_too() -> None:
    runtime, dev = pins(REQUIREMENTS), pins(DEV_REQUIREMENTS)
    for tool in TEST_TOOLS:
        assert tool not in runtime, f"{tool} would be in the production image"
        assert tool in dev, f"{tool} is not pinned for the tests"
    assert not set(runtime) & set(dev), "a package pinned twice"
    assert "-r requirements.txt" in DEV_REQUIREMENTS.read_text().splitlines()
    # `make venv` (and so `make test`, `make check` and .ci/run) installs everything.
    assert "pip install --quiet -r requirements-dev.txt" in (ROOT / "Makefile").read_text()
    assert "make test" in (ROOT / ".ci" / "run").read_text()


# --- Compose itself -----------------------------------------------------------------------------


def compose_command() -> list[str]:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client")
    probe = subprocess.run(
        [docker, "compose", "version"], check=False, capture_output=True, timeout=60
    )
    if probe.returncode != 0:
        pytest.skip("the docker client has no compose plugin")
    return [docker, "compose", "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE)]


def run_compose(args: list[str], env_file: Path) -> subprocess.CompletedProcess[str]:
    # Only what the client needs: the developer's own variables would win over the file.
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DOCKER_CONFIG")}
    return subprocess.run(
        [*compose_command(), "--env-file", str(env_file), *args],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_docker_compose_reads_the_file(tmp_path: Path) -> None:
    run = run_compose(
        ["--profile", "ray", "--profile", "sim", "config", "--format", "json"], ENV_EXAMPLE
    )
    assert run.returncode == 0, run.stderr
    config = json.loads(run.stdout)
    assert set(config["services"]) == set(SERVICES)
    web = config["services"]["web"]
    assert web["environment"]["DATABASE_URL"] == (
        "postgresql://chimera:change-me-postgres-password@postgres:5432/chimera"
    )
    assert web["command"] == command("web", env_example())
    # Without the secrets Compose refuses to start, naming what is missing.
    empty = tmp_path / "empty.env"
    empty.write_text("")
    refused = run_compose(["config", "--quiet"], empty)
    assert refused.returncode != 0
    assert any(name in refused.stderr for name in REQUIRED), refused.stderr
