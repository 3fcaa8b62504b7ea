#!/usr/bin/env bash
# Make sure the machine's Redis and PostgreSQL answer; start them if they are
# installed but stopped (the commands of this machine kind), else say what to do.
set -euo pipefail

REDIS_HOST=${REDIS_HOST:-127.0.0.1}
REDIS_PORT=${REDIS_PORT:-6379}
PG_HOST=${PG_HOST:-127.0.0.1}
PG_PORT=${PG_PORT:-5432}

answers() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for() {  # name host port
  for _ in $(seq 1 50); do answers "$2" "$3" && return 0; sleep 0.2; done
  echo "error: $1 did not come up on $2:$3" >&2
  return 1
}

if answers "$REDIS_HOST" "$REDIS_PORT"; then
  echo "redis     ok  $REDIS_HOST:$REDIS_PORT"
elif command -v redis-server >/dev/null; then
  echo "redis     starting on $REDIS_PORT"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for redis "$REDIS_HOST" "$REDIS_PORT"
else
  echo "error: Redis does not answer on $REDIS_HOST:$REDIS_PORT and redis-server is not installed" >&2
  echo "       install it (apt-get install redis-server) or set REDIS_HOST/REDIS_PORT" >&2
  exit 1
fi

if answers "$PG_HOST" "$PG_PORT"; then
  echo "postgres  ok  $PG_HOST:$PG_PORT"
elif command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
  echo "postgres  starting"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  wait_for postgres "$PG_HOST" "$PG_PORT"
else
  echo "error: PostgreSQL does not answer on $PG_HOST:$PG_PORT and no local cluster is installed" >&2
  echo "       install it (apt-get install postgresql) or point DATABASE_URL at a server" >&2
  exit 1
fi
