#!/usr/bin/env bash
# `make serve`: Tiers as in production, without containers, on a given PostgreSQL and Redis.
#
#   DATABASE_URL=postgres://... REDIS_URL=redis://... SECRET_KEY=... TIERS_KEK=... deploy/local.sh
#
# Migrates, then runs gunicorn (WEB_CONCURRENCY workers, default 4) on 127.0.0.1:$PORT
# (default 8000), CELERY_WORKERS Celery workers (default 2, each with CELERY_CONCURRENCY
# processes, default 2) and one celery beat, with DEBUG off and the production settings.
# A worker or beat that dies is started again after a second, as systemd would. Each
# process logs to its own file in TIERS_LOG_DIR (default var/local/log), and the
# process id of each supervised program is kept there in <name>.pid. SIGTERM or SIGINT
# stops every child (workers finish their task first, up to TIERS_STOP_SECONDS, default
# 30, then are killed) and the script exits 0.
#
# Secrets: SECRET_KEY and TIERS_KEK are required. With TIERS_LOCAL_EPHEMERAL=1 the missing
# ones are generated for this run only: keys sealed under an ephemeral TIERS_KEK cannot be
# read by the next run, so use it only with a database made for the run (tests, benchmarks).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
BIN=.venv/bin
say() { printf 'local: %s\n' "$*"; }
fail() { printf 'local: ERROR: %s\n' "$*" >&2; exit 1; }

: "${DATABASE_URL:?local: set DATABASE_URL (postgres://user:password@host:port/name)}"
: "${REDIS_URL:?local: set REDIS_URL (redis://host:port/db)}"
PORT=${PORT:-8000}
BIND_HOST=${BIND_HOST:-127.0.0.1}
WEB_CONCURRENCY=${WEB_CONCURRENCY:-4}
CELERY_WORKERS=${CELERY_WORKERS:-2}
CELERY_CONCURRENCY=${CELERY_CONCURRENCY:-2}
TIERS_LOG_DIR=${TIERS_LOG_DIR:-var/local/log}
TIERS_STOP_SECONDS=${TIERS_STOP_SECONDS:-30}

# Production settings: nothing from a demo's .env, DEBUG off.
export TIERS_ENV_FILE="" DEBUG=false
export ALLOWED_HOSTS=${ALLOWED_HOSTS:-127.0.0.1,localhost}
export TIERS_BASE_URL=${TIERS_BASE_URL:-http://127.0.0.1:$PORT}
if [ "${TIERS_LOCAL_EPHEMERAL:-0}" = 1 ]; then
    if [ -z "${SECRET_KEY:-}" ]; then
        SECRET_KEY=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(50))')
        say "SECRET_KEY: ephemeral, for this run only"
    fi
    if [ -z "${TIERS_KEK:-}" ]; then
        TIERS_KEK=$("$PY" -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')
        say "TIERS_KEK: ephemeral, for this run only (keys it seals die with the run)"
    fi
fi
[ -n "${SECRET_KEY:-}" ] || fail "SECRET_KEY is not set (or set TIERS_LOCAL_EPHEMERAL=1 for a throw-away run)"
[ -n "${TIERS_KEK:-}" ] || fail "TIERS_KEK is not set (or set TIERS_LOCAL_EPHEMERAL=1 for a throw-away run)"
export DATABASE_URL REDIS_URL SECRET_KEY TIERS_KEK

mkdir -p "$TIERS_LOG_DIR"
say "logs in $TIERS_LOG_DIR"
say "migrating"
"$PY" manage.py migrate --noinput -v0 >>"$TIERS_LOG_DIR/migrate.log" 2>&1 || fail "migrate failed; see $TIERS_LOG_DIR/migrate.log"
# Static files: collected when their manifest is missing, or always with TIERS_COLLECTSTATIC=1.
if [ "${TIERS_COLLECTSTATIC:-}" = 1 ] || { [ "${TIERS_COLLECTSTATIC:-}" != 0 ] && [ ! -f staticfiles/staticfiles.json ]; }; then
    say "collecting static files"
    "$PY" manage.py collectstatic --noinput -v0 >>"$TIERS_LOG_DIR/migrate.log" 2>&1 || fail "collectstatic failed"
fi

# Runs a program, starts it again a second after it dies, and stops it on SIGTERM.
supervise() {
    local name=$1 child="" stopping=0
    shift
    trap 'stopping=1; [ -z "$child" ] || kill -TERM "$child" 2>/dev/null || true' TERM
    while [ "$stopping" = 0 ]; do
        "$@" >>"$TIERS_LOG_DIR/$name.log" 2>&1 &
        child=$!
        echo "$child" >"$TIERS_LOG_DIR/$name.pid"
        # wait returns when the child ends or when SIGTERM arrives; then wait for the child itself.
        while kill -0 "$child" 2>/dev/null; do wait "$child" 2>/dev/null || true; done
        if [ "$stopping" = 0 ]; then
            echo "local: $name exited; starting it again in 1 s" >>"$TIERS_LOG_DIR/$name.log"
            sleep 1
        fi
    done
}

pids=()
stop() {
    local code=$1
    trap - INT TERM EXIT
    say "stopping"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    local deadline=$((SECONDS + TIERS_STOP_SECONDS))
    for pid in "${pids[@]}"; do
        while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
    done
    for name in "$TIERS_LOG_DIR"/*.pid; do
        [ -f "$name" ] || continue
        pid=$(cat "$name")
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
        rm -f "$name"
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    say "stopped"
    exit "$code"
}
# SIGTERM or Ctrl-C: a clean stop (0); a failure below: everything stopped, its status kept.
trap 'exit 0' INT TERM
trap 'stop $?' EXIT

for i in $(seq 1 "$CELERY_WORKERS"); do
    supervise "worker-$i" "$BIN/celery" -A broker worker --loglevel=INFO --concurrency="$CELERY_CONCURRENCY" \
        -n "tiers-$i-$PORT@%h" &
    pids+=($!)
done
supervise beat "$BIN/celery" -A broker beat --loglevel=INFO --schedule="$TIERS_LOG_DIR/celerybeat-schedule" &
pids+=($!)
say "$CELERY_WORKERS Celery workers ($CELERY_CONCURRENCY processes each) and beat on $REDIS_URL"

"$BIN/gunicorn" broker.wsgi --bind "$BIND_HOST:$PORT" --workers "$WEB_CONCURRENCY" --no-control-socket \
    --access-logfile "$TIERS_LOG_DIR/access.log" --error-logfile "$TIERS_LOG_DIR/gunicorn.log" \
    --timeout 60 --graceful-timeout 20 >>"$TIERS_LOG_DIR/web.log" 2>&1 &
gunicorn=$!
pids+=("$gunicorn")
echo "$gunicorn" >"$TIERS_LOG_DIR/gunicorn.pid"
for _ in $(seq 1 100); do
    if "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
        "http://127.0.0.1:$PORT/healthz" 2>/dev/null; then
        say "serving on http://$BIND_HOST:$PORT ($WEB_CONCURRENCY gunicorn workers); SIGTERM or Ctrl-C stops"
        break
    fi
    kill -0 "$gunicorn" 2>/dev/null || fail "gunicorn exited; see $TIERS_LOG_DIR/gunicorn.log"
    sleep 0.3
done
while kill -0 "$gunicorn" 2>/dev/null; do wait "$gunicorn" 2>/dev/null || true; done
say "gunicorn exited; see $TIERS_LOG_DIR/gunicorn.log"
exit 1
