#!/usr/bin/env bash
# Make sure the PostgreSQL and Redis that the test suite uses answer.
#
# Reads TEST_DATABASE_URL and TEST_REDIS_URL. A local service that is installed
# but stopped is started; a missing one is installed with apt-get when this
# runs as root on Debian or Ubuntu; otherwise the script stops and says exactly
# what to install. It never touches a remote server.
set -euo pipefail

PY=${PY:-.venv/bin/python}
db_url=${TEST_DATABASE_URL:?TEST_DATABASE_URL is not set}
redis_url=${TEST_REDIS_URL:?TEST_REDIS_URL is not set}

say() { printf 'services: %s\n' "$*"; }
fail() { printf 'services: ERROR: %s\n' "$*" >&2; exit 1; }

read -r db_host db_port < <("$PY" -c 'import sys, urllib.parse as u; p=u.urlsplit(sys.argv[1]); print(p.hostname or "127.0.0.1", p.port or 5432)' "$db_url")
read -r redis_host redis_port < <("$PY" -c 'import sys, urllib.parse as u; p=u.urlsplit(sys.argv[1]); print(p.hostname or "127.0.0.1", p.port or 6379)' "$redis_url")

is_local() { case "$1" in 127.*|localhost|::1) return 0 ;; *) return 1 ;; esac; }
can_install() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }

postgres_answers() {
    "$PY" - "$db_url" <<'PYEOF' 2>/dev/null
import sys, urllib.parse as u
import psycopg
p = u.urlsplit(sys.argv[1])
psycopg.connect(host=p.hostname or "127.0.0.1", port=p.port or 5432, user=p.username or "postgres",
                password=p.password or None, dbname="postgres", connect_timeout=3).close()
PYEOF
}

redis_answers() {
    "$PY" -c 'import sys, redis; redis.Redis.from_url(sys.argv[1], socket_connect_timeout=3).ping()' "$redis_url" 2>/dev/null
}

start_postgres_clusters() {
    # Debian's clusters: start the one that listens on the port the tests use.
    command -v pg_lsclusters >/dev/null || return 0
    pg_lsclusters --no-header | while read -r version name port status _; do
        if [ "$port" = "$db_port" ] && [ "$status" != online ]; then
            say "starting PostgreSQL cluster $version/$name on port $port"
            pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start || true
        fi
    done
}

install_postgres() {
    say "installing PostgreSQL with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    # A cluster this script just installed serves only the local tests: let them
    # connect over loopback as in the default TEST_DATABASE_URL.
    for hba in /etc/postgresql/*/main/pg_hba.conf; do
        grep -q '# tiers-tests' "$hba" || sed -i '1i host all postgres 127.0.0.1/32 trust # tiers-tests\nhost all postgres ::1/128 trust # tiers-tests' "$hba"
    done
    start_postgres_clusters
}

cluster_on_port() {
    command -v pg_lsclusters >/dev/null && pg_lsclusters --no-header | awk -v p="$db_port" '$3 == p {found=1} END {exit !found}'
}

ensure_postgres() {
    postgres_answers && { say "PostgreSQL answers at $db_host:$db_port"; return; }
    is_local "$db_host" || fail "PostgreSQL does not answer at $db_host:$db_port. Start it, or set TEST_DATABASE_URL to a server that answers (user with CREATEDB)."
    if ! command -v pg_ctlcluster >/dev/null && can_install; then
        install_postgres
    fi
    if cluster_on_port; then
        start_postgres_clusters
        for _ in $(seq 1 20); do postgres_answers && { say "PostgreSQL answers at $db_host:$db_port"; return; }; sleep 0.5; done
    fi
    fail "PostgreSQL does not answer at $db_host:$db_port (TEST_DATABASE_URL=$db_url).
  Install and start it: 'apt-get install postgresql' on Debian or Ubuntu, 'brew install postgresql@15' on macOS,
  then allow the user in TEST_DATABASE_URL to connect and create databases, or point TEST_DATABASE_URL at a server that does."
}

ensure_redis() {
    redis_answers && { say "Redis answers at $redis_host:$redis_port"; return; }
    is_local "$redis_host" || fail "Redis does not answer at $redis_host:$redis_port. Start it, or set TEST_REDIS_URL to a server that answers."
    if ! command -v redis-server >/dev/null && can_install; then
        say "installing Redis with apt-get"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    fi
    if command -v redis-server >/dev/null; then
        say "starting Redis on port $redis_port"
        mkdir -p /tmp/tiers-redis
        redis-server --daemonize yes --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
            --dir /tmp/tiers-redis --logfile /tmp/tiers-redis/redis.log || true
    fi
    for _ in $(seq 1 20); do redis_answers && { say "Redis answers at $redis_host:$redis_port"; return; }; sleep 0.5; done
    fail "Redis does not answer at $redis_host:$redis_port (TEST_REDIS_URL=$redis_url).
  Install and start it: 'apt-get install redis-server' on Debian or Ubuntu, 'brew install redis' on macOS."
}

create_database() {
    # makemigrations --check reads the named database; the suite itself creates test_<name>.
    "$PY" - "$db_url" <<'PYEOF'
import sys, urllib.parse as u
import psycopg
from psycopg import sql
p = u.urlsplit(sys.argv[1])
name = p.path.lstrip("/") or "tiers"
with psycopg.connect(host=p.hostname or "127.0.0.1", port=p.port or 5432, user=p.username or "postgres",
                     password=p.password or None, dbname="postgres", autocommit=True) as conn:
    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        print(f"services: created database {name}")
PYEOF
}

ensure_postgres
create_database
ensure_redis
