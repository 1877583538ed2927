#!/usr/bin/env bash
# The multi-machine services on loopback, for integration tests and for trying a shared setup on
# one machine: PostgreSQL (MLflow's backend store and Optuna's shared studies), an S3 endpoint
# (moto's standalone server) and an MLflow tracking server using both, artifacts proxied to S3.
#
#   infra/local/services.sh up       start what is not running, wait until each is healthy
#   infra/local/services.sh status   one line per service; exit 1 when any is down
#   infra/local/services.sh down     stop them (PostgreSQL's data stays for the next `up`)
#   infra/local/services.sh reset    down, then delete the state folder
#
# `up` writes $STATE/env (KEY=VALUE lines) that tests and shells read to find the services:
#   set -a; . .segpipe/services/env; set +a
# The credentials in it are fixed test values that guard nothing but these loopback services.
#
# Settings (environment): SEGPIPE_SERVICES_DIR (state, default .segpipe/services),
# SEGPIPE_VENV (virtualenv with mlflow and moto, i.e. `make install-dev`; default .venv),
# SEGPIPE_PG_PORT (55432), SEGPIPE_S3_PORT (55000), SEGPIPE_MLFLOW_PORT (55001),
# SEGPIPE_SERVICES_TIMEOUT (180 s per service). PostgreSQL comes from Debian's package,
# installed with apt-get when missing. A failed `up` stops what it started.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${SEGPIPE_SERVICES_DIR:-$ROOT/.segpipe/services}"
VENV="${SEGPIPE_VENV:-$ROOT/.venv}"
HOST=127.0.0.1
PG_PORT="${SEGPIPE_PG_PORT:-55432}"
S3_PORT="${SEGPIPE_S3_PORT:-55000}"
MLFLOW_PORT="${SEGPIPE_MLFLOW_PORT:-55001}"
TIMEOUT="${SEGPIPE_SERVICES_TIMEOUT:-180}"
PG_USER=segpipe
PG_PASSWORD=segpipe-local-test
S3_KEY_ID=segpipe-local-test
S3_SECRET=segpipe-local-test
BUCKET=segpipe-artifacts
PY="$VENV/bin/python"

log() { echo "services: $*" >&2; }
die() { log "$*"; exit 1; }

pg_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [[ -n "$dir" && -x "$dir/initdb" ]] && echo "$dir"
}

ensure_postgres_installed() {
  pg_bin >/dev/null && return 0
  [[ "$(id -u)" == 0 ]] || die "PostgreSQL is missing: run 'sudo apt-get install -y postgresql'"
  log "installing PostgreSQL from Debian's package"
  apt-get -o Acquire::Retries=5 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Retries=5 install -y -qq --no-install-recommends postgresql >/dev/null
  pg_bin >/dev/null || die "apt-get installed postgresql but no initdb under /usr/lib/postgresql"
}

# initdb and postgres refuse to run as root; as root, run them as Debian's postgres user.
as_pg_owner() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# As root, PostgreSQL runs as the postgres user, which may not be able to reach a checkout
# inside a private folder (mktemp -d makes 0700 ones): then its data goes under /var/tmp, in
# a folder named after the state folder so down/status/reset find it again.
pg_home() {
  if [[ "$(id -u)" == 0 ]] && id postgres >/dev/null 2>&1 \
    && ! runuser -u postgres -- test -x "$STATE" 2>/dev/null; then
    echo "/var/tmp/segpipe-services-$(printf '%s' "$STATE" | sha256sum | cut -c1-12)"
  else
    echo "$STATE"
  fi
}

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

http_ok() {
  "$PY" - "$1" <<'EOF' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=3) as response:
    sys.exit(0 if response.status == 200 else 1)
EOF
}

wait_for() {  # name, then a command that succeeds once the service is healthy
  local name="$1" deadline=$((SECONDS + TIMEOUT))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || die "$name not healthy after ${TIMEOUT}s; log: $STATE/$name.log"
    if [[ -f "$STATE/$name.pid" ]] && ! pid_alive "$STATE/$name.pid"; then
      tail -n 20 "$STATE/$name.log" >&2 || true
      die "$name exited while starting; log: $STATE/$name.log"
    fi
    sleep 1
  done
}

pg_ready() { "$(pg_bin)/pg_isready" -q -h "$HOST" -p "$PG_PORT"; }
s3_ready() { http_ok "http://$HOST:$S3_PORT/moto-api/"; }
mlflow_ready() { http_ok "http://$HOST:$MLFLOW_PORT/health"; }

psql_run() {
  PGPASSWORD="$PG_PASSWORD" "$(pg_bin)/psql" -X -q -v ON_ERROR_STOP=1 -h "$HOST" -p "$PG_PORT" \
    -U "$PG_USER" -d postgres "$@"
}

start_postgres() {
  ensure_postgres_installed
  local bin home
  bin="$(pg_bin)"
  home="$(pg_home)"
  PGDATA="$home/postgres"
  if [[ ! -f "$PGDATA/PG_VERSION" ]]; then
    log "initialising PostgreSQL in $PGDATA"
    mkdir -p "$PGDATA"
    local pwfile="$home/.pgpass-init"
    (umask 077 && printf '%s\n' "$PG_PASSWORD" >"$pwfile")
    if [[ "$(id -u)" == 0 ]]; then
      chown postgres: "$PGDATA" "$pwfile"
    fi
    chmod 700 "$PGDATA"
    as_pg_owner "$bin/initdb" -D "$PGDATA" -U "$PG_USER" --pwfile="$pwfile" \
      --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --no-instructions >/dev/null
    rm -f "$pwfile"
    # TCP on loopback only, no Unix socket (nothing to clash with a system cluster); fsync off
    # because this instance holds throwaway test data and CI disks are slow.
    cat >>"$PGDATA/postgresql.conf" <<EOF
listen_addresses = '$HOST'
port = $PG_PORT
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
EOF
  fi
  if pg_ready; then
    log "postgres already up on $HOST:$PG_PORT"
  else
    log "starting postgres on $HOST:$PG_PORT"
    local logfile="$home/postgres.log"
    if [[ "$(id -u)" == 0 ]]; then
      touch "$logfile" && chown postgres: "$logfile"
    fi
    # -p again: SEGPIPE_PG_PORT may have changed since initdb wrote postgresql.conf.
    as_pg_owner "$bin/pg_ctl" -D "$PGDATA" -l "$logfile" -w -t "$TIMEOUT" -o "-p $PG_PORT" \
      start >/dev/null || die "postgres did not start; log: $logfile"
    wait_for postgres pg_ready
  fi
  local db
  for db in mlflow optuna; do
    if [[ -z "$(psql_run -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]]; then
      psql_run -c "CREATE DATABASE $db"
    fi
  done
}

start_daemon() {  # name, then the command; a new session so `down` can end its whole group
  local name="$1"
  shift
  setsid "$@" >>"$STATE/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/$name.pid"
}

s3_env() {
  export AWS_ACCESS_KEY_ID="$S3_KEY_ID" AWS_SECRET_ACCESS_KEY="$S3_SECRET"
  export AWS_DEFAULT_REGION=us-east-1
  export AWS_ENDPOINT_URL="http://$HOST:$S3_PORT" MLFLOW_S3_ENDPOINT_URL="http://$HOST:$S3_PORT"
}

start_s3() {
  if s3_ready; then
    log "S3 (moto) already up on $HOST:$S3_PORT"
  else
    log "starting S3 (moto) on $HOST:$S3_PORT"
    start_daemon s3 "$VENV/bin/moto_server" -H "$HOST" -p "$S3_PORT"
    wait_for s3 s3_ready
  fi
  (
    s3_env
    "$PY" - "$BUCKET" <<'EOF'
import sys, boto3
s3 = boto3.client("s3")
if sys.argv[1] not in {bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])}:
    s3.create_bucket(Bucket=sys.argv[1])
EOF
  )
}

start_mlflow() {
  if mlflow_ready; then
    log "MLflow already up on $HOST:$MLFLOW_PORT"
    return 0
  fi
  log "starting MLflow on $HOST:$MLFLOW_PORT (first start migrates its database)"
  (
    s3_env
    export PGPASSWORD="$PG_PASSWORD"
    cd "$STATE"
    start_daemon mlflow "$VENV/bin/mlflow" server \
      --backend-store-uri "postgresql+psycopg2://$PG_USER@$HOST:$PG_PORT/mlflow" \
      --artifacts-destination "s3://$BUCKET/mlflow" --serve-artifacts \
      --host "$HOST" --port "$MLFLOW_PORT" --workers 2
  )
  wait_for mlflow mlflow_ready
}

write_env() {
  local tmp="$STATE/env.tmp"
  cat >"$tmp" <<EOF
MLFLOW_TRACKING_URI=http://$HOST:$MLFLOW_PORT
OPTUNA_STORAGE=postgresql+psycopg2://$PG_USER@$HOST:$PG_PORT/optuna
PGPASSWORD=$PG_PASSWORD
SEGPIPE_ARTIFACT_BUCKET=$BUCKET
SEGPIPE_ARTIFACT_PREFIX=mlflow
AWS_ENDPOINT_URL=http://$HOST:$S3_PORT
MLFLOW_S3_ENDPOINT_URL=http://$HOST:$S3_PORT
AWS_ACCESS_KEY_ID=$S3_KEY_ID
AWS_SECRET_ACCESS_KEY=$S3_SECRET
AWS_DEFAULT_REGION=us-east-1
EOF
  mv "$tmp" "$STATE/env"
}

stop_daemon() {
  local name="$1" pidfile="$STATE/$1.pid" pid
  if pid_alive "$pidfile"; then
    pid="$(cat "$pidfile")"
    log "stopping $name (process group $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 20))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.5; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

cmd_up() {
  mkdir -p "$STATE"
  # What every service needs, before any starts.
  local tool
  for tool in python moto_server mlflow; do
    [[ -x "$VENV/bin/$tool" ]] \
      || die "$VENV/bin/$tool missing: run 'make install-dev' (moto is a dev dependency)"
  done
  # A failed `up` stops what this `up` started (not what was already running).
  local was_up=()
  pg_bin >/dev/null && pg_ready && was_up+=(postgres)
  s3_ready && was_up+=(s3)
  mlflow_ready && was_up+=(mlflow)
  trap 'undo_up "${was_up[*]}"' EXIT
  start_postgres
  start_s3
  start_mlflow
  write_env
  trap - EXIT
  log "up; settings in $STATE/env"
}

undo_up() {  # the services that were up before; runs as `up` exits on a failure
  local before=" $1 "
  [[ "$before" == *" mlflow "* ]] || stop_daemon mlflow
  [[ "$before" == *" s3 "* ]] || stop_daemon s3
  [[ "$before" == *" postgres "* ]] || stop_postgres
}

cmd_down() {
  rm -f "$STATE/env"
  stop_daemon mlflow
  stop_daemon s3
  stop_postgres
}

stop_postgres() {
  local pgdata
  pgdata="$(pg_home)/postgres"
  if [[ -f "$pgdata/postmaster.pid" ]] && pg_bin >/dev/null; then
    log "stopping postgres"
    as_pg_owner "$(pg_bin)/pg_ctl" -D "$pgdata" -m fast -w -t 60 stop >/dev/null || true
  fi
}

cmd_status() {
  local down=0
  report() {  # name, address, then the health command
    local name="$1" address="$2"
    shift 2
    if "$@"; then echo "$name: up ($address)"; else echo "$name: down ($address)"; down=1; fi
  }
  if pg_bin >/dev/null; then
    report postgres "$HOST:$PG_PORT" pg_ready
  else
    echo "postgres: not installed"
    down=1
  fi
  report s3 "http://$HOST:$S3_PORT" s3_ready
  report mlflow "http://$HOST:$MLFLOW_PORT" mlflow_ready
  return "$down"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  reset) cmd_down && rm -rf "$(pg_home)" "$STATE" ;;
  *) die "usage: $0 up|down|status|reset" ;;
esac
