"""gunicorn settings for Tiers in a container: `gunicorn -c deploy/gunicorn.conf.py broker.wsgi:application`.

Every value can be changed from the environment without rebuilding the image; the
variables are listed in docs/operations.md ("Process settings"). The application's own
settings are in broker/settings.py and deploy/.env.example.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

# Sync workers: one request per process, the simplest model and the one Django's ORM
# and the vault's per-process key caches are written for. nginx buffers request bodies
# (uploads), so a slow client does not hold a worker while it sends.
worker_class = "sync"

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"

WORKERS_CAP = 12


def _cpus() -> int:
    """CPUs this container may use: its cgroup v2 quota when one is set, else the CPUs it may run on."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# 2 x CPUs + 1, capped: each worker holds a database connection (CONN_MAX_AGE) and
# roughly 100-150 MB, so the cap protects PostgreSQL's max_connections and the memory limit.
workers = int(os.environ.get("WEB_CONCURRENCY") or min(2 * _cpus() + 1, WORKERS_CAP))

# A sync worker cannot tell the arbiter it is alive while it handles a request, so `timeout`
# is also the longest a request may last before its worker is killed. A grant's records
# stream (GET /api/v1/grants/<id>/records) runs for minutes on a large dataset: 15 minutes by
# default. A worker stuck for that long is a bug, and the price of the generous value is only
# that such a worker is found later. nginx's proxy_read_timeout for the stream is set above it.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "900"))

# On SIGTERM (a rolling update, scale-in) workers finish the request in hand for this long;
# a stream still running after it is cut. Kubernetes' terminationGracePeriodSeconds and
# compose's stop_grace_period are set a little above it.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "120"))

# nginx opens a connection per request to sync workers: no keep-alive to hold.
keepalive = 2

# Each worker is replaced after about this many requests, jittered so that they do not all
# restart together: a slow leak never grows past it.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "200"))

# Addresses whose X-Forwarded-Proto gunicorn believes. Django decides HTTPS itself from
# X-Forwarded-Proto (SECURE_PROXY_SSL_HEADER), and the caller's address from X-Forwarded-For
# (TIERS_TRUSTED_PROXY_HOPS); this only sets wsgi.url_scheme. "*" is right when the web
# containers are reachable only through the proxy (compose's private network, a NetworkPolicy).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Errors to stderr for the container runtime to collect. No gunicorn access log: Tiers writes one
# JSON line per request itself (route name, status, duration, request id; never the path, which
# can carry ids, nor headers or bodies), see docs/observability.md.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "INFO").lower()

# The root filesystem is read-only in Kubernetes: the heartbeat files go to memory, and the
# control socket (by default under $HOME) is not opened.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 (a tmpfs, not a shared /tmp)
control_socket_disable = True

# Workers load the application after the fork: no database connection or cached key is
# shared between processes.
preload_app = False
