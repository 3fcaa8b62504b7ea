"""The local stack's S3 server: where its Kafka broker keeps records.

With ``CHIMERA_KAFKA_STORAGE=s3`` (the default) the stack runs moto's S3 server
(:func:`main`, its own process) on 127.0.0.1, port ``CHIMERA_KAFKA_S3_PORT``,
creates the broker's bucket in it, and starts Tansu with ``s3://<bucket>/`` storage
pointed at it (:func:`chimera.kafka.broker.s3_env`).  A broker restart then keeps
every record and committed offset.

moto has no on-disk store: the objects live in this server's process (bodies over
a few MiB spill to temporary files, which go with it).  So records survive a
restart of the broker, not of this server; ``chimera stack down`` stops both.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import urllib.error
import urllib.request

from chimera import defaults as d
from chimera.errors import StackError
from chimera.settings import Settings

#: The server listens on loopback only: it checks no credentials.
HOST = "127.0.0.1"
BUCKET = d.KAFKA_S3_BUCKET
#: What the server process runs.
MAIN = "from chimera.stack.objectstore import main; main()"


def url(settings: Settings) -> str:
    """The S3 endpoint of the local stack's broker storage."""
    return f"http://{HOST}:{settings.kafka_s3_port}"


def server_argv(port: int) -> list[str]:
    """The S3 server's command line (``-c``, not ``-m``: the package ``chimera.stack``
    imports this module, and ``-m`` would run a second copy of it)."""
    return [sys.executable, "-c", MAIN, "--port", str(port)]


def _request(method: str, target: str, timeout_s: float = 5.0) -> bytes:
    request = urllib.request.Request(target, method=method)  # noqa: S310 - our own http URL
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
        body: bytes = response.read()
        return body


def is_ready(endpoint: str) -> bool:
    """The server at ``endpoint`` answers S3's ListBuckets."""
    try:
        _request("GET", f"{endpoint}/", timeout_s=2.0)
        return True
    except (OSError, urllib.error.URLError):
        return False


def create_bucket(endpoint: str, bucket: str = BUCKET) -> None:
    """Create ``bucket`` at ``endpoint`` (an existing one of ours is fine)."""
    try:
        _request("PUT", f"{endpoint}/{bucket}")
    except urllib.error.HTTPError as exc:
        if exc.code == 409 and b"BucketAlreadyOwnedByYou" in exc.read():
            return
        raise StackError(f"cannot create the S3 bucket {bucket} at {endpoint}: {exc}") from exc
    except OSError as exc:
        raise StackError(f"cannot create the S3 bucket {bucket} at {endpoint}: {exc}") from exc


def object_count(endpoint: str, bucket: str = BUCKET) -> str:
    """How many objects ``bucket`` holds (``"1000+"`` past one listing page)."""
    try:
        body = _request("GET", f"{endpoint}/{bucket}?list-type=2&max-keys=1000").decode()
    except (OSError, urllib.error.URLError) as exc:
        raise StackError(f"the S3 server at {endpoint} does not list {bucket}: {exc}") from exc
    count = re.search(r"<KeyCount>(\d+)</KeyCount>", body)
    truncated = "<IsTruncated>true</IsTruncated>" in body
    return f"{count.group(1) if count else '?'}{'+' if truncated else ''}"


def detail(settings: Settings) -> str:
    """``stack status``'s line: where it serves, and what the bucket holds."""
    endpoint = url(settings)
    if not is_ready(endpoint):
        raise StackError(f"the S3 server at {endpoint} does not answer")
    objects = object_count(endpoint)
    return (
        f"{endpoint}, bucket {BUCKET}: {objects} objects (the broker's records; kept in "
        "this process's memory)"
    )


def main(argv: list[str] | None = None) -> None:
    """Serve moto's S3 on ``HOST:--port`` until terminated, logging no request lines."""
    parser = argparse.ArgumentParser(prog="chimera.stack.objectstore")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    # Only this process loads moto (and Flask): the rest of chimera never needs them, and
    # the production image does not have it (requirements-dev.txt pins it).
    try:
        from moto.moto_server.werkzeug_app import (  # noqa: PLC0415
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
    except ImportError as exc:
        sys.stderr.write(
            f"error: the local stack's S3 server needs moto ({exc}): install "
            "requirements-dev.txt (`make venv`), or set CHIMERA_KAFKA_STORAGE=memory\n"
        )
        raise SystemExit(2) from exc
    from werkzeug.serving import make_server  # noqa: PLC0415

    # One line per request (the broker polls every partition's watermark): noise.
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(HOST, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    logging.getLogger(__name__).warning(
        "S3 server (moto) listening on http://%s:%d", HOST, args.port
    )
    server.serve_forever()
