#!/bin/sh
# The Tiers image's entry point: one image, one role per container.
#
#   (no command) | web   gunicorn with deploy/gunicorn.conf.py on 0.0.0.0:$PORT
#   worker [args]        a Celery worker on $CELERY_QUEUE ($CELERY_CONCURRENCY processes)
#   beat [args]          the Celery scheduler: run exactly ONE, wherever Tiers is deployed
#   migrate              apply database migrations, then exit (a one-shot job before a rollout)
#   manage <args>        any manage.py command, e.g. `manage keys_rotate --purpose jws`
#   healthcheck          exit 0 when this container's /healthz answers 200 (Docker HEALTHCHECK)
#   anything else        run as given (e.g. `sh` to look around)
#
# Each role replaces this shell (exec), so it receives SIGTERM itself and stops gracefully:
# gunicorn finishes its requests, a Celery worker its tasks. Variables: docs/operations.md.
set -eu

cd /app

case "${1:-web}" in
web)
    if [ "$#" -gt 0 ]; then shift; fi
    exec gunicorn -c deploy/gunicorn.conf.py "$@" broker.wsgi:application
    ;;
worker)
    shift
    # A worker process is replaced after CELERY_MAX_TASKS_PER_CHILD tasks, so that memory an
    # ingestion or a report leaves behind is returned. No gossip or mingle: Tiers uses neither,
    # and they add broker traffic that grows with the number of workers.
    exec celery -A broker worker \
        --loglevel="${LOG_LEVEL:-INFO}" \
        --queues="${CELERY_QUEUE:-tiers}" \
        --concurrency="${CELERY_CONCURRENCY:-2}" \
        --max-tasks-per-child="${CELERY_MAX_TASKS_PER_CHILD:-200}" \
        --hostname="tiers@%h" \
        --without-gossip --without-mingle \
        "$@"
    ;;
beat)
    shift
    # The schedule file only remembers when each job last ran; losing it makes every job run
    # once at start-up, which they are all built to tolerate (docs/jobs.md). Its directory must
    # be writable: /tmp, an emptyDir in Kubernetes.
    schedule=${CELERY_BEAT_SCHEDULE_FILE:-/tmp/celerybeat-schedule}
    mkdir -p "$(dirname "$schedule")"
    exec celery -A broker beat --loglevel="${LOG_LEVEL:-INFO}" --schedule="$schedule" "$@"
    ;;
migrate)
    shift
    exec python manage.py migrate --noinput "$@"
    ;;
manage)
    shift
    exec python manage.py "$@"
    ;;
healthcheck)
    # Django answers only to ALLOWED_HOSTS, so the probe names the first of them.
    exec python - <<'PY'
import os
import sys
import urllib.request

# A leading dot allows the domain and its subdomains; "*" allows any host.
host = os.environ.get("ALLOWED_HOSTS", "localhost").split(",")[0].strip().lstrip(".")
host = "localhost" if host in ("", "*") else host
url = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz"
request = urllib.request.Request(url, headers={"Host": host})
try:
    with urllib.request.urlopen(request, timeout=3) as response:  # noqa: S310 (a fixed http URL)
        sys.exit(0 if response.status == 200 else 1)
except Exception as exc:
    print(f"healthcheck: {url} (Host: {host}): {exc}", file=sys.stderr)
    sys.exit(1)
PY
    ;;
*)
    exec "$@"
    ;;
esac
