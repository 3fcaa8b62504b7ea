# syntax=docker/dockerfile:1
#
# Chimera: ONE image for every Chimera process (docs/operations.md, "Production: docker-compose").
# docker-compose.yml picks the process with `command:`, the same command lines as the local stack
# (chimera/stack/):
#
#   worker    celery -A tasks.worker worker --loglevel INFO --hostname chimera@%h
#   beat      celery -A tasks.worker beat --loglevel INFO          (exactly one!)
#   bridge    python -m bridges
#   web       gunicorn --config web/gunicorn_conf.py ... 'web:create_app()'  (the CMD;
#             it listens on CHIMERA_HTTP_HOST:CHIMERA_HTTP_PORT, loopback by default)
#   flower    celery -A tasks.worker flower --address=0.0.0.0 --port=5555 ...
#   one-shot  python -m chimera db upgrade | python -m chimera kafka create-topics
#   ray-head  ray start --head --block ...                          (profile "ray")
#
# Build:  docker build -t chimera:local .
# Every setting comes from the environment at run time
# (docs/settings.md); nothing secret is baked in, and .dockerignore keeps .env
# files out of the build context.
#
# Stages: `base` (Python, the app user, the pinned requirements); `sim`, base
# plus the LLM simulator (llmsim/, `python -m llmsim`) for compose's profile
# "sim" only; and `production`, last, so that a plain `docker build` is the
# production image, without the simulator.  The simulator's own image:
#   docker build --target sim -t chimera-llmsim:local .

# Pinned to a patch release and Debian release so rebuilds are reproducible;
# bump it deliberately (and pin a digest, @sha256:..., in a registry
# pipeline).  slim is glibc-based: every pinned dependency installs from a
# manylinux wheel, no compiler needed.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# --- base: what every stage shares ------------------------------------------------
FROM ${PYTHON_IMAGE} AS base

# PYTHONUNBUFFERED         log lines reach `docker logs` at once.
# PYTHONDONTWRITEBYTECODE  the code is read-only for the app user; bytecode is
#                          compiled at build time instead (below).
# PYTHONFAULTHANDLER       a hard crash still dumps Python tracebacks.
# PYTHONPATH=/app          see "Why no `pip install .`" below.
# CHIMERA_STATE_DIR        the one writable place: beat keeps its schedule in
#                          $CHIMERA_STATE_DIR/run.  The default (.chimera under
#                          the working directory) would be in the read-only /app.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONFAULTHANDLER=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    CHIMERA_STATE_DIR=/var/lib/chimera

# Non-root user with a fixed uid/gid, so volume ownership is predictable across
# rebuilds and hosts (Celery also warns when a worker runs as root).  It has a
# real home: Ray and the SDKs keep small files there.  The state directory is
# created here, owned by that user, so a named volume mounted on it starts
# with the right owner.
ARG APP_UID=10001
ARG APP_GID=10001
RUN groupadd --system --gid "${APP_GID}" chimera \
 && useradd --system --uid "${APP_UID}" --gid chimera \
        --home-dir /home/chimera --create-home --shell /usr/sbin/nologin chimera \
 && mkdir -p /var/lib/chimera/run /var/lib/chimera/logs \
 && chown -R chimera:chimera /var/lib/chimera

WORKDIR /app

# Dependencies in their own layer, before the source: editing code does not
# reinstall them.  requirements.txt pins what runs and nothing else: the test
# and lint tools (pytest, hypothesis, ruff, mypy, pytest-celery, docker, ...)
# are in requirements-dev.txt, which the image never installs (size and attack
# surface, for code that never runs here).
#
# RAY_CLIENT_PACKAGES: the Ray Client (RAY_ADDRESS=ray://..., the "ray"
# profile) needs grpcio, which requirements.txt does not pin (Ray's "client"
# extra).  Build with --build-arg RAY_CLIENT_PACKAGES= to leave it out.
#
# `pip check` fails the build if the set is not self-consistent.
ARG RAY_CLIENT_PACKAGES="grpcio==1.85.1"
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt \
 && if [ -n "${RAY_CLIENT_PACKAGES}" ]; then pip install --no-cache-dir ${RAY_CLIENT_PACKAGES}; fi \
 && pip check

# --- sim: the LLM simulator, for the "sim" profile only ---------------------------
# llmsim imports nothing from chimera (pydantic and click, both pinned above).
FROM base AS sim

LABEL org.opencontainers.image.title="llmsim" \
      org.opencontainers.image.description="LLM simulator (Anthropic, Gemini and OpenAI wire formats) for trying Chimera without API keys"

COPY llmsim/ ./llmsim/
RUN python -m compileall -q -j 0 /app

USER chimera:chimera

# 8089: the simulator, as compose's `sim` service runs it.
EXPOSE 8089

# Loopback unless told otherwise: its admin API (/_sim/) has no authentication.
CMD ["python", "-m", "llmsim", "--host", "127.0.0.1", "--port", "8089"]

# --- production: the last stage, the default target --------------------------------
FROM base AS production

LABEL org.opencontainers.image.title="chimera" \
      org.opencontainers.image.description="Orchestration service for LLM-generated data (Celery worker and beat, Kafka bridge, Flask web, Flower)"

# Why no `pip install .`: chimera.db.admin finds the Alembic scripts at
# <repository root>/migrations, beside the `chimera` package.  An install would
# put the packages in site-packages, away from migrations/.  So the source is
# copied to /app as it is laid out in the repository and run from there with
# PYTHONPATH=/app (and WORKDIR /app, for alembic.ini and web/gunicorn_conf.py).
#
# Only what runs is copied (an explicit list, not `COPY . .`): tests, benches,
# docs, CI scripts and the simulator (llmsim/, the `sim` stage's) stay out.
# Add a new top-level package here AND in pyproject.toml's
# [tool.setuptools.packages.find].  Files stay owned by root:
# the app user reads its code, it cannot change it.
COPY celeryconfig.py alembic.ini ./
COPY migrations/ ./migrations/
COPY chimera/ ./chimera/
COPY tasks/ ./tasks/
COPY bridges/ ./bridges/
COPY web/ ./web/

# Precompile bytecode (start-up time; the tree is read-only at run time), and
# provide the `chimera` console script an install would have created
# (pyproject: chimera = chimera.cli:main) as a shim over `python -m chimera`.
RUN python -m compileall -q -j 0 /app \
 && printf '#!/bin/sh\nexec python -m chimera "$@"\n' > /usr/local/bin/chimera \
 && chmod 0755 /usr/local/bin/chimera

USER chimera:chimera

# 8085: web (gunicorn).  5555: Flower.  Documentation only; compose publishes
# what it needs.
EXPOSE 8085 5555

# No image-level HEALTHCHECK: one image runs many different processes, and one
# check would be wrong for most of them.  Each compose service has its own.
# No ENTRYPOINT: compose's `command:` is the whole command line.

# Default process: the web app, as compose's `web` service runs it with the
# default settings (CHIMERA_HTTP_WORKERS=2, CHIMERA_HTTP_THREADS=8).  No --bind:
# web/gunicorn_conf.py binds CHIMERA_HTTP_HOST:CHIMERA_HTTP_PORT, 127.0.0.1:8085
# unless set.  Closed by default: to serve beyond the container, set
# CHIMERA_HTTP_HOST=0.0.0.0 and CHIMERA_API_TOKEN (as compose does); an address
# other than loopback without a token is refused at start-up.
CMD ["gunicorn", "--config", "web/gunicorn_conf.py", "--worker-class", "gthread", "--workers", "2", "--threads", "8", "--graceful-timeout", "30", "--no-control-socket", "--log-level", "INFO", "web:create_app()"]
