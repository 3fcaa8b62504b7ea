# syntax=docker/dockerfile:1
#
# Chimera: ONE image for every process (DESIGN.md "Layout").  docker-compose.yml
# picks the process with `command:`:
#
#   worker   celery -A tasks.worker worker --loglevel INFO
#   beat     celery -A tasks.worker beat --loglevel INFO      (exactly one!)
#   flower   celery -A tasks.worker flower --port=5555
#   web      gunicorn --bind 0.0.0.0:8085 'web:create_app()'  (the default CMD)
#   bridge   python -m bridges
#   one-shot python -m chimera db upgrade | python -m chimera kafka create-topics
#
# Build:  docker build -t chimera:local .
# Every setting comes from the environment at run time (DESIGN.md
# "Configuration"); nothing secret is baked into the image, and .dockerignore
# keeps .env files out of the build context.

# Pinned to a patch release and Debian release so rebuilds are reproducible;
# bump it deliberately (and pin a digest, @sha256:..., in a real registry
# pipeline).  "slim" is glibc-based, so every pinned dependency installs from
# a manylinux wheel: no compiler in the image.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="chimera" \
      org.opencontainers.image.description="Orchestration service for LLM-generated data (Celery workers, beat, Kafka bridge, Flask web, Flower)"

# PYTHONUNBUFFERED      logs reach `docker logs` at once, not when a buffer fills.
# PYTHONDONTWRITEBYTECODE  the code is root-owned and read-only for the app user;
#                       bytecode is compiled once at build time (below) instead.
# PYTHONFAULTHANDLER    a hard crash (segfault, abort) still dumps Python tracebacks.
# PYTHONPATH=/app       see "Why no `pip install .`" below.
# CHIMERA_STATE_DIR     the one writable place: beat keeps its schedule file in
#                       $CHIMERA_STATE_DIR/run (celeryconfig.beat_schedule_filename).
#                       The default (.chimera, relative to the cwd) would land in
#                       the read-only /app.  Compose mounts a volume here for beat.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONFAULTHANDLER=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    CHIMERA_STATE_DIR=/var/lib/chimera

# Non-root user with a fixed uid/gid, so volume ownership is predictable across
# rebuilds and hosts.  (Celery also warns when a worker runs as root.)  It gets
# a real, writable home: some tools keep small files there (gunicorn's control
# socket unless --no-control-socket, SDK caches).
# The state dir is created here, owned by that user, so a named volume mounted
# on it is initialised with the right owner on first use.
ARG APP_UID=10001
ARG APP_GID=10001
RUN groupadd --system --gid "${APP_GID}" chimera \
 && useradd --system --uid "${APP_UID}" --gid chimera \
        --home-dir /home/chimera --create-home --shell /usr/sbin/nologin chimera \
 && mkdir -p /var/lib/chimera/run /var/lib/chimera/logs \
 && chown -R chimera:chimera /var/lib/chimera

WORKDIR /app

# Dependencies in their own layer, before the source: editing code does not
# reinstall ~90 packages.  requirements.txt is the full pinned freeze.
# NOTE: it also pins the test and lint tools (pytest, hypothesis, ruff, mypy,
# pytest-celery, docker, ...).  Acceptable for this first image -- they are not
# imported at run time -- but they cost size and attack surface; split a
# runtime-only lock (e.g. requirements-runtime.txt from requirements.in's
# "Runtime" section) when hardening the image.
# `pip check` fails the build if the freeze is not self-consistent.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt \
 && pip check

# Why no `pip install .`: chimera.db.admin finds the Alembic scripts at
# <repo root>/migrations, i.e. beside the `chimera` package.  A regular install
# would put the packages in site-packages, away from migrations/, and
# `python -m chimera db upgrade` would find no migrations.  So the source tree
# is copied to /app exactly as it is laid out in the repository and run from
# there with PYTHONPATH=/app (WORKDIR /app as well, for alembic.ini).  No build
# step, no egg-info, nothing to get out of sync.
#
# Only what runs is copied (an explicit list, not `COPY . .`): tests, benches,
# docs and CI scripts stay out of the image.  Add a new top-level package here
# AND in pyproject.toml's [tool.setuptools.packages.find].
# Files stay owned by root: the app user can read, not modify, its own code.
COPY celeryconfig.py alembic.ini ./
COPY migrations/ ./migrations/
COPY chimera/ ./chimera/
COPY tasks/ ./tasks/
COPY bridges/ ./bridges/
COPY web/ ./web/

# Precompile bytecode (startup time; the tree is read-only at run time), and
# provide the `chimera` console script that `pip install` would have created
# (pyproject: chimera = chimera.cli:main) as a thin shim over `python -m chimera`.
RUN python -m compileall -q -j 0 /app \
 && printf '#!/bin/sh\nexec python -m chimera "$@"\n' > /usr/local/bin/chimera \
 && chmod 0755 /usr/local/bin/chimera

USER chimera:chimera

# 8085: web (Flask via gunicorn).  5555: Flower.  Documentation only; compose
# publishes what it needs.
EXPOSE 8085 5555

# No image-level HEALTHCHECK: one image runs six different processes, and a
# single check would be wrong for most of them (beat and the bridge serve no
# HTTP).  Each service in docker-compose.yml has its own healthcheck.

# Default process: the web app (port 8085, DESIGN.md "HTTP").  Every compose
# service sets its own command.
CMD ["gunicorn", "--bind", "0.0.0.0:8085", "--no-control-socket", "web:create_app()"]
