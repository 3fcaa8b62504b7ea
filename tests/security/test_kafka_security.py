"""Kafka SSL/SASL: one configuration for every client, checked settings, no password shown.

Every producer, consumer and admin client is built in ``chimera/kafka/clients.py`` from
``client_config``.  Here: what that configuration holds for each protocol, what
kafka-python receives from ``make_producer``/``make_consumer``, that no other module
builds a client of its own, and, on the wire, that each entry point (readiness, topic
listing and creation, ``dlq list``, ``kafka topics``, ``stack status``, producers and
consumers) opens its connections with TLS when SASL_SSL is configured: a listener
records whether each connection starts with a TLS ClientHello.
"""

from __future__ import annotations

import ast
import gc
import socket
import subprocess
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chimera.errors import ChimeraError, ConfigError, KafkaUnavailable
from chimera.events import letters
from chimera.kafka import topics
from chimera.kafka.clients import client_config, make_consumer, make_producer
from chimera.readiness import Readiness
from chimera.settings import Settings, load_settings
from chimera.settings_env import describe
from tests.chimera.test_cli import chimera
from tests.conftest import PROJECT_ROOT
from tests.helpers import wait_for

PASSWORD = "kafka-pw-51e0b7"
#: Every class of kafka-python that opens connections.
CLIENT_CLASSES = {"KafkaProducer", "KafkaConsumer", "KafkaAdminClient", "KafkaClient"}


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A self-signed certificate (CA and client certificate at once) and its key."""
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return {"cafile": cert, "certfile": cert, "keyfile": key}


def kafka_settings(**env: Any) -> Settings:
    """Settings read the way a process reads them, with ``env`` on top."""
    return load_settings(**env)


def sasl_ssl(tls_files: dict[str, Path], mechanism: str, **more: Any) -> Settings:
    return kafka_settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="chimera",
        kafka_sasl_password=PASSWORD,
        kafka_ssl_cafile=tls_files["cafile"],
        **more,
    )


# --- the configuration -----------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_ssl_configuration(tls_files: dict[str, Path], mechanism: str) -> None:
    cfg = client_config(sasl_ssl(tls_files, mechanism))
    assert cfg["security_protocol"] == "SASL_SSL"
    assert cfg["sasl_mechanism"] == mechanism
    assert cfg["sasl_plain_username"] == "chimera"
    assert cfg["sasl_plain_password"] == PASSWORD
    assert cfg["ssl_cafile"] == str(tls_files["cafile"])
    assert cfg["ssl_check_hostname"] is True
    assert "ssl_certfile" not in cfg and "ssl_keyfile" not in cfg


def test_ssl_configuration_with_a_client_certificate(tls_files: dict[str, Path]) -> None:
    settings = kafka_settings(
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=tls_files["cafile"],
        kafka_ssl_certfile=tls_files["certfile"],
        kafka_ssl_keyfile=tls_files["keyfile"],
    )
    cfg = client_config(settings)
    assert cfg["security_protocol"] == "SSL"
    assert {k: cfg[k] for k in ("ssl_cafile", "ssl_certfile", "ssl_keyfile")} == {
        f"ssl_{k}": str(v) for k, v in tls_files.items()
    }
    assert not any(k.startswith("sasl_") for k in cfg)


def test_plaintext_configuration_has_no_security_options() -> None:
    cfg = client_config(kafka_settings())
    assert cfg["security_protocol"] == "PLAINTEXT"
    assert not any(k.startswith(("ssl_", "sasl_")) for k in cfg)


def test_kafka_python_receives_the_security_options(tls_files: dict[str, Path]) -> None:
    """The producer and consumer classes themselves hold them (built without a broker:
    with the API version given, kafka-python does not bootstrap in the constructor)."""
    settings = sasl_ssl(
        tls_files,
        "SCRAM-SHA-512",
        kafka_ssl_certfile=tls_files["certfile"],
        kafka_ssl_keyfile=tls_files["keyfile"],
        kafka_bootstrap_servers="kafka.invalid:9093",  # resolves nowhere: no connection
    )
    expected = {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "chimera",
        "sasl_plain_password": PASSWORD,
        "ssl_cafile": str(tls_files["cafile"]),
        "ssl_certfile": str(tls_files["certfile"]),
        "ssl_keyfile": str(tls_files["keyfile"]),
        "ssl_check_hostname": True,
    }
    producer = make_producer(settings, api_version=(2, 8, 0))
    try:
        assert {k: producer.config[k] for k in expected} == expected
    finally:
        producer.close(timeout=1)
    consumer = make_consumer(settings, group_id="g", api_version=(2, 8, 0))
    try:
        assert {k: consumer.config[k] for k in expected} == expected
    finally:
        consumer.close()


def test_no_module_builds_a_kafka_client_of_its_own() -> None:
    """Every client comes from chimera/kafka/clients.py, so every one gets client_config."""
    offenders = []
    for package in ("chimera", "bridges", "tasks", "web", "soak", "bench"):
        for path in (PROJECT_ROOT / package).rglob("*.py"):
            if path == PROJECT_ROOT / "chimera" / "kafka" / "clients.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Call):
                    name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                    if name in CLIENT_CLASSES:
                        offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}")
    assert offenders == []
    # ... and in clients.py, every constructor call is fed by client_config.
    tree = ast.parse((PROJECT_ROOT / "chimera" / "kafka" / "clients.py").read_text())
    for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        calls = [n for n in ast.walk(fn) if isinstance(n, ast.Call)]
        names = {getattr(c.func, "id", None) for c in calls}
        if names & CLIENT_CLASSES:
            assert "client_config" in names, fn.name


# --- settings validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "KAFKA_SASL_MECHANISM"),
        (
            {
                "kafka_security_protocol": "SASL_PLAINTEXT",
                "kafka_sasl_mechanism": "PLAIN",
                "kafka_sasl_password": PASSWORD,
            },
            "KAFKA_SASL_USERNAME",
        ),
        (
            {
                "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_mechanism": "SCRAM-SHA-512",
                "kafka_sasl_username": "chimera",
            },
            "KAFKA_SASL_PASSWORD",
        ),
        (
            {
                "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_mechanism": "OAUTHBEARER",
                "kafka_sasl_username": "chimera",
                "kafka_sasl_password": PASSWORD,
            },
            "KAFKA_SASL_MECHANISM: OAUTHBEARER needs a token provider",
        ),
        ({"kafka_sasl_mechanism": "KERBEROS"}, "KAFKA_SASL_MECHANISM"),
        ({"kafka_security_protocol": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
        ({"kafka_ssl_cafile": "/nonexistent/ca.pem"}, "KAFKA_SSL_CAFILE: no such file"),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_certfile": "/nonexistent/c.pem"},
            "KAFKA_SSL_CERTFILE: no such file",
        ),
    ],
)
def test_bad_combinations_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as info:
        kafka_settings(**env)
    assert named in str(info.value)
    assert PASSWORD not in str(info.value)


def test_tls_files_need_a_tls_protocol_and_a_key_its_certificate(
    tls_files: dict[str, Path],
) -> None:
    with pytest.raises(ConfigError) as info:
        kafka_settings(kafka_ssl_cafile=tls_files["cafile"])
    assert "KAFKA_SECURITY_PROTOCOL: KAFKA_SSL_CAFILE set, but PLAINTEXT" in str(info.value)
    with pytest.raises(ConfigError) as info:
        kafka_settings(kafka_security_protocol="SSL", kafka_ssl_keyfile=tls_files["keyfile"])
    assert "KAFKA_SSL_KEYFILE" in str(info.value) and "KAFKA_SSL_CERTFILE" in str(info.value)


def test_the_sasl_password_is_never_shown(tls_files: dict[str, Path]) -> None:
    settings = sasl_ssl(tls_files, "SCRAM-SHA-512")
    assert PASSWORD not in repr(settings) + str(settings) + str(describe(settings))
    assert describe(settings)["KAFKA_SASL_PASSWORD"] == "***"


# --- on the wire ------------------------------------------------------------------------------------


class TlsSniffer:
    """A TCP listener that notes whether each connection opens with a TLS record
    (a ClientHello: content type 0x16), then hangs up."""

    def __init__(self, host: str = "127.0.0.2") -> None:
        self._sock = socket.create_server((host, 0))
        self.address = f"{host}:{self._sock.getsockname()[1]}"
        self.first_bytes: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    self.first_bytes.append(conn.recv(1))
                except OSError:
                    self.first_bytes.append(b"")

    @property
    def tls(self) -> int:
        return sum(1 for b in self.first_bytes if b == b"\x16")

    @property
    def other(self) -> int:
        return sum(1 for b in self.first_bytes if b and b != b"\x16")

    def close(self) -> None:
        self._sock.close()
        self._thread.join(5)


@pytest.fixture
def sniffer() -> Iterator[TlsSniffer]:
    listener = TlsSniffer()
    yield listener
    listener.close()
    # kafka-python drops (without closing) a TLS socket whose handshake the peer reset;
    # collect them here rather than in whichever test runs next.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def _reaches_with_tls(sniffer: TlsSniffer, attempt: Callable[[], Any]) -> None:
    """``attempt`` fails (nothing speaks Kafka there) after opening TLS connections only."""
    before = sniffer.tls
    with pytest.raises(ChimeraError):
        attempt()
    wait_for(lambda: sniffer.tls > before, timeout_s=5, what="a TLS connection")
    assert sniffer.other == 0, sniffer.first_bytes


def test_every_entry_point_connects_with_tls(
    tls_files: dict[str, Path],
    sniffer: TlsSniffer,
    db: Any,
    redis_server: None,
    service_logs: Callable[[Settings], Callable[[], str]],
) -> None:
    settings = sasl_ssl(
        tls_files,
        "SCRAM-SHA-512",
        kafka_bootstrap_servers=sniffer.address,
        kafka_request_timeout_ms=1_500,
    )
    logged = service_logs(settings)

    def readiness() -> None:
        checks = Readiness(settings, engine=db)
        try:
            report = checks.run()
        finally:
            checks.close()
        assert report.as_dict()["checks"]["kafka"]["ok"] is False
        raise KafkaUnavailable(report.as_dict()["checks"]["kafka"]["error"])

    for attempt in (
        lambda: make_producer(settings),  # the bridge's and the worker's output producer
        lambda: make_consumer(settings, group_id="g").topics(),  # the bridge's consumer
        lambda: topics.list_topics(settings),  # `kafka topics`, `stack status`
        lambda: topics.ensure_topics(settings),  # `stack up`, `kafka create-topics`
        lambda: letters.list_dead_letters(settings, settings.topic_conversation_dlq),
        readiness,  # /readyz
    ):
        _reaches_with_tls(sniffer, attempt)
    text = logged()
    assert PASSWORD not in text


def test_plaintext_is_plaintext_on_the_wire(sniffer: TlsSniffer) -> None:
    """The listener tells the two apart (so the test above can fail)."""
    settings = kafka_settings(
        kafka_bootstrap_servers=sniffer.address, kafka_request_timeout_ms=1_000
    )
    with pytest.raises(KafkaUnavailable):
        topics.list_topics(settings)
    assert sniffer.other > 0 and sniffer.tls == 0


@pytest.mark.parametrize(
    "argv",
    [("kafka", "topics"), ("dlq", "list", "--topic", "conversation.dlq"), ("stack", "status")],
    ids=" ".join,
)
def test_cli_commands_connect_with_tls_and_never_print_the_password(
    tls_files: dict[str, Path], sniffer: TlsSniffer, tmp_path: Path, argv: tuple[str, ...]
) -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": sniffer.address,
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "chimera",
        "KAFKA_SASL_PASSWORD": PASSWORD,
        "KAFKA_SSL_CAFILE": str(tls_files["cafile"]),
        "CHIMERA_KAFKA_REQUEST_TIMEOUT_MS": "1500",
        "CHIMERA_LOG_LEVEL": "DEBUG",
        "CHIMERA_STATE_DIR": str(tmp_path),
    }
    result = chimera(*argv, env=env, timeout=90)
    assert result.returncode != 0, result.stdout
    assert sniffer.tls > 0 and sniffer.other == 0, sniffer.first_bytes
    assert PASSWORD not in result.stdout + result.stderr
