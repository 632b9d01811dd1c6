#!/usr/bin/env bash
# `make demo`: from a fresh checkout to a running Tiers with demo data.
#
# Creates .venv, installs, writes the demo's defaults to .env (kept across runs:
# the key-encryption key must not change under the keys it protects), migrates,
# seeds, and serves on 127.0.0.1:$PORT until Ctrl-C or SIGTERM, which stop
# everything this script started. DATABASE_URL and REDIS_URL are used when set;
# with no REDIS_URL, tasks and scheduled jobs run in-process.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${PORT:-8000}
PY=.venv/bin/python
make --no-print-directory install
say() { printf '\033[1mdemo:\033[0m %s\n' "$*"; }


env_value() { if [ -f .env ]; then sed -n "s/^$1=//p" .env | tail -n 1; fi; }
secret_key=$(env_value SECRET_KEY)
kek=$(env_value TIERS_KEK)
[ -n "$secret_key" ] || secret_key=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(50))')
[ -n "$kek" ] || kek=$("$PY" -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')
say "writing the demo's settings to .env (git-ignored; the environment overrides it)"
umask 077
cat > .env <<ENV
# Written by 'make demo'. Real environment variables override these.
DEBUG=false
SECRET_KEY=$secret_key
TIERS_KEK=$kek
ALLOWED_HOSTS=127.0.0.1,localhost
TIERS_BASE_URL=http://127.0.0.1:$PORT
DATABASE_URL=sqlite:///$PWD/var/tiers.sqlite3
REDIS_URL=${REDIS_URL:-}
ENV
umask 022
mkdir -p var

say "compiling translations, collecting static files"
make --no-print-directory messages
"$PY" manage.py collectstatic --noinput -v0
say "migrating the database (${DATABASE_URL:-SQLite file var/tiers.sqlite3})"
"$PY" manage.py migrate --noinput -v0
say "seeding demo data"
"$PY" manage.py seed_demo

pids=()
stop() {
    trap - INT TERM EXIT
    say "stopping"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    exit 0
}
trap stop INT TERM EXIT

if [ -n "${REDIS_URL:-}" ]; then
    say "starting a Celery worker and the scheduler on $REDIS_URL"
    .venv/bin/celery -A broker worker --loglevel=INFO --concurrency=2 & pids+=($!)
    .venv/bin/celery -A broker beat --loglevel=INFO --schedule=var/celerybeat-schedule & pids+=($!)
else
    say "no REDIS_URL: tasks run in-process, scheduled jobs in a scheduler process"
    "$PY" manage.py run_scheduler & pids+=($!)
fi
say "serving on http://127.0.0.1:$PORT (logins in demo-credentials.json; Ctrl-C stops)"
.venv/bin/gunicorn broker.wsgi --bind "127.0.0.1:$PORT" --workers 2 --access-logfile - --no-control-socket & pids+=($!)
wait -n
stop
